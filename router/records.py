"""The records the journal port carries: messages, their timeline, outcomes, stays, consents, mails, notices.

They are plain values shared by the core and every journal adapter; the
:class:`router.ports.Journal` protocol says what is done with them.
:mod:`router.ports` re-exports them, so adapters name one module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from router.model import Action, DmpConsent, MessageSource


class MessageState(StrEnum):
    RECEIVED = "received"          # stored, not yet on the bus
    QUEUED = "queued"              # on the bus, AA sent
    REJECTED = "rejected"          # NACKed at the door (AE/AR), kept here
    PROCESSING = "processing"
    DISPATCHED = "dispatched"      # document job(s) handed to delivery
    DELIVERED = "delivered"        # every recipient accepted
    PARTIAL = "partial"            # some recipients failed for good
    FAILED = "failed"              # nothing could be delivered
    PARKED = "parked"              # a stage parked it with a reason
    DISCARDED = "discarded"        # an operator closed it without delivery, with a reason (router.actions)


@dataclass(frozen=True)
class ReceivedMessage:
    """An inbound HL7 message as it arrived, before any processing."""

    raw: bytes                     # exactly the bytes between 0x0B and 0x1C 0x0D
    channel: str
    sending_application: str
    sending_facility: str
    control_id: str
    message_type: str
    received_at: datetime
    peer: str = ""
    #: (kind, value) pairs search finds the message by (``ipp``, ``ins``): patient data, which the
    #: journal keeps only as keyed digests
    identifiers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class MessageRecord:
    key: str
    raw: bytes
    channel: str
    sending_application: str
    sending_facility: str
    control_id: str
    message_type: str
    state: MessageState
    received_at: datetime
    updated_at: datetime
    ack_code: str = ""             # AA/AE/AR sent back at the door
    detail: str = ""


@dataclass(frozen=True)
class JournalEvent:
    message_key: str
    at: datetime
    step: str                      # "received", "queued", "validated", "mail", "zam", ...
    state: str
    detail: str = ""
    document_id: str = ""
    destination: str = ""          # a recipient address, "dmp", "his"


class OutcomeStatus(StrEnum):
    SENDING = "sending"            # claimed by one worker, which is sending now
    ACCEPTED = "accepted"          # the relay took it (250)
    RETRYING = "retrying"          # 4xx, will try again
    FAILED = "failed"              # 5xx or retries spent
    REFUSED = "refused"            # not attempted on purpose (rule, whitelist, flags)


@dataclass(frozen=True)
class Outcome:
    document_id: str
    destination: str
    status: OutcomeStatus
    detail: str
    at: datetime
    message_key: str = ""


@dataclass(frozen=True)
class ContentBinding:
    """Which content a document id stands for: the first content dispatched under it wins.

    A CDA id names one document for ever; a correction is a new document that
    replaces it. So once a document id was dispatched, another content under
    the same id is a HIS fault to refuse, and the same content under a new
    MSH-10 is a re-send to answer without mailing again.
    """

    document_id: str
    digest: str                    # SHA-256 of the CDA bytes, hex
    message_key: str               # the message that first dispatched it
    at: datetime


class StayState(StrEnum):
    ADMITTED = "admitted"          # A01/A04 (or A13: discharge cancelled)
    DISCHARGED = "discharged"      # A03: a lettre de liaison is now due
    CANCELLED = "cancelled"        # A11: the admission never happened


@dataclass(frozen=True)
class Stay:
    """A patient's stay (encounter) as the ADT feed describes it, and its lettre de liaison deadline.

    Keyed by (``facility``, ``encounter``): MSH-4 of the ADT feed (the channel
    name when MSH-4 is empty) and the stay number (PID-18, else PV1-19). The
    INS is patient data: adapters store it encrypted like message details.
    ``message_key`` is the journal message that last changed the stay; the
    watchdog attaches its alert events to it. ``dmp_consent`` is the patient's
    DMP consent in force (the latest ZFA for this facility and IPP, see
    :class:`PatientConsent`): patient data, stored encrypted too.
    """

    facility: str
    encounter: str
    state: StayState
    ipp: str = ""
    ins: str = field(default="", repr=False)
    unit: str = ""
    attending: str = ""            # IdNat_PS (8+RPPS) or the local id as sent
    referring: str = ""
    medecin_traitant: str = ""
    discharge_disposition: str = ""     # PV1-36
    discharge_destination: str = ""     # PV1-37
    admitted_at: datetime | None = None
    discharged_at: datetime | None = None
    letter_due_at: datetime | None = None
    letter_sent_at: datetime | None = None
    alert_raised_at: datetime | None = None
    message_key: str = ""
    updated_at: datetime | None = None  # set by the journal on every write
    dmp_consent: DmpConsent | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PatientConsent:
    """The patient's DMP consent as the ADT feed last gave it: the latest ZFA, per facility and IPP.

    Patient-level, because A28/A31 carry it without an encounter and it outlives any
    one stay. ``message_key`` is the ADT message it came from; journal keys sort by
    arrival, which is what "latest" means. The consent is patient data: adapters
    store it encrypted.
    """

    facility: str                  # MSH-4 of the ADT feed (the channel name when empty), as for stays
    ipp: str
    consent: DmpConsent = field(repr=False)
    message_key: str = ""
    updated_at: datetime | None = None  # set by the journal on every write


@dataclass(frozen=True)
class RenderedDocument:
    """A document render mode produced, as the journal keeps it for its later versions.

    ``source_id`` is the id the HIS knows the document by (TXA-12 for an MDM,
    the filler order number for a lab report); ``facility`` is MSH-4 (the
    channel name when empty), so two sites' ids never collide. The CDA is kept
    (encrypted) because a cancellation re-sends the header it withdraws.
    """

    facility: str
    source_id: str
    document_id: str               # extension under the site's document root
    set_id: str                    # extension under the site's setId root
    version: int
    type_code: str
    action: Action
    message_key: str
    cda: bytes = field(default=b"", repr=False)


class MailStep(StrEnum):
    """What became of one recipient of one mail, as the relay and the notices coming back tell it."""

    RELAYED = "relayed"            # the relay took it (SMTP 250)
    DELIVERED = "delivered"        # a DSN said delivered (Action: delivered, relayed or expanded)
    FAILED = "failed"              # a DSN said failed (Action: failed)
    READ = "read"                  # an MDN said displayed or processed
    ERROR = "error"                # an MDN processed/Error or an ANS error mail: the recipient could not integrate it


@dataclass(frozen=True)
class MailRecipient:
    """One recipient of a sent mail and when each step was observed (None: not observed)."""

    address: str
    identifier: str = ""           # IdNat_PS or INS, as the ZAM names the recipient
    relayed_at: datetime | None = None
    delivered_at: datetime | None = None
    failed_at: datetime | None = None
    read_at: datetime | None = None
    error_at: datetime | None = None
    detail: str = ""               # what the last notice said (status code and text, disposition, error code)


@dataclass(frozen=True)
class SentMail:
    """One mail sent over MSSanté, as the notices coming back are matched to it.

    ``envelope_id`` is the ENVID asked of the relay (RFC 3461) and ``message_id`` the
    mail's Message-ID, which MDNs and error mails quote. ``source`` is the HL7 message it
    answers (the ZAMs are built from its MSH), ``ack_reception``/``ack_lecture`` what the
    HIS asked for.
    """

    envelope_id: str
    message_id: str
    message_key: str
    document_id: str               # the document's id as the HIS knows it
    delivery_key: str              # the key outcomes are kept under (``deliver.delivery_key``)
    source: MessageSource
    ack_reception: bool = False
    ack_lecture: bool = False
    sent_at: datetime | None = None
    recipients: tuple[MailRecipient, ...] = ()


class NoticeVerdict(StrEnum):
    MATCHED = "matched"            # applied to a journaled mail
    DUPLICATE = "duplicate"        # matched, but every step it reports was already recorded
    UNMATCHED = "unmatched"        # a notice that names no mail we sent
    MALFORMED = "malformed"        # not a notice Liaison can read


@dataclass(frozen=True)
class NoticeRecord:
    """A mail read from the structure's mailbox, and what Liaison made of it."""

    notice_id: str                 # its Message-ID, else a digest of its bytes
    kind: str                      # dsn, mdn, error-mail, unknown
    verdict: NoticeVerdict
    at: datetime
    envelope_id: str = ""          # the mail it was matched to, when it was
    message_key: str = ""
    detail: str = ""
