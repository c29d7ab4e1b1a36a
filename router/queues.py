"""Names of the bus queues, one per pipeline stage."""

INBOUND = "inbound"            # raw HL7 messages accepted at the door
DELIVER_MSS = "deliver.mss"    # DocumentJobs to mail over MSSanté
ACKS_HIS = "acks.his"          # ZAM business acknowledgements to send back to the HIS
DEPOSIT_DMP = "deposit.dmp"    # DocumentJobs to deposit in the DMP (ITI-41)

ALL = (INBOUND, DELIVER_MSS, ACKS_HIS, DEPOSIT_DMP)

#: An ``inbound`` message larger than this travels as a reference to its journal row (which the door wrote
#: before publishing): the bus client copies a body several times while framing it — publishing 35 MiB
#: through aiormq peaked at 131 MiB over the body. The envelope then has an empty body and this header.
INLINE_BODY_BYTES = 1 << 20
BODY_HEADER = "body"
BODY_IN_JOURNAL = "journal"
