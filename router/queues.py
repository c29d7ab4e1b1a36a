"""Names of the bus queues, one per pipeline stage."""

INBOUND = "inbound"            # raw HL7 messages accepted at the door
DELIVER_MSS = "deliver.mss"    # DocumentJobs to mail over MSSanté
ACKS_HIS = "acks.his"          # ZAM business acknowledgements to send back to the HIS
DEPOSIT_DMP = "deposit.dmp"    # DocumentJobs to deposit in the DMP (ITI-41)

ALL = (INBOUND, DELIVER_MSS, ACKS_HIS, DEPOSIT_DMP)
