"""The ports: one small Protocol per thing the core needs from the outside.

Adapters live in ``channels/`` and translate their library's errors into
``router.errors`` at the boundary. The composition root (``channels/app/engine.py``)
picks adapters from URLs in the configuration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from router.model import DocumentJob, Recipient
from router.readings import (Activity, ActivityCount, EventSample, MetricsSample,  # noqa: F401 - re-exported
                             QueueDepth)
from router.records import (  # noqa: F401 - re-exported: adapters name one module
    MessageState, ReceivedMessage, MessageRecord, JournalEvent, OutcomeStatus, Outcome, ContentBinding,
    StayState, Stay, PatientConsent, RenderedDocument, MailStep, MailRecipient, SentMail, NoticeVerdict,
    NoticeRecord)

if TYPE_CHECKING:
    from router.volets import Volet


# ------------------------------------------------------- single runner

class SingleRunner(Protocol):
    """One runner at a time, among every process sharing the journal, for a named job.

    The watchdog and the whitelist refresh run in every engine; with several servers on
    one journal, each pass must run once, not once per server. The journal's store holds
    the lease (PostgreSQL: a session advisory lock; SQLite: a lock file beside the
    journal), so it is released when its holder ends, a ``kill -9`` included.
    """

    def alone(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Hold the lease ``name`` for the ``async with`` block.

        Yields True when this caller holds it, False when another caller (this process
        or another) holds it now: the caller then skips its pass. Never waits for it.
        """


# --------------------------------------------------------------------- bus

@dataclass(frozen=True)
class Envelope:
    """A message on the bus: opaque body, string headers, and its delivery count."""

    body: bytes
    message_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 0            # how many times it was retried before this delivery


class Delivery(Protocol):
    """One received envelope and the three ways to settle it.

    Only :func:`router.settle.settle` calls these: no stage settles by itself.
    """

    envelope: Envelope

    async def ack(self) -> None:
        """Done: remove it from the queue."""

    async def retry(self, delay: float, reason: str) -> None:
        """Put it back after ``delay`` seconds with ``attempt + 1``, then ack this copy."""

    async def park(self, reason: str) -> None:
        """Move it to the queue's parked (dead-letter) queue with the reason, then ack."""


DeliveryHandler = Callable[[Delivery], Awaitable[None]]


class Subscription(Protocol):
    async def cancel(self) -> None:
        """Stop receiving; deliveries in flight are finished or returned to the queue."""


class Bus(Protocol):
    """Durable queues per stage, publisher confirms, delayed retry, parking."""

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, queue: str, body: bytes, *, message_id: str,
                      headers: Mapping[str, str] | None = None) -> None:
        """Return only once the message is durably stored (publisher confirm)."""

    async def consume(self, queue: str, handler: DeliveryHandler, *, prefetch: int = 16) -> Subscription:
        """Call ``handler`` for each delivery; the handler settles it (through settle())."""

    async def depth(self, queue: str) -> QueueDepth:
        """How many jobs wait in ``queue`` and its parked queue now (counts only; nothing is taken)."""

    async def parked(self, queue: str, limit: int = 100) -> list[Envelope]:
        """The parked envelopes of ``queue`` (with header ``x-park-reason``), oldest first."""

    async def replay(self, queue: str, message_id: str) -> bool:
        """Move one parked envelope back to ``queue`` with its attempt count reset."""


# ----------------------------------------------------------------- journal

class Journal(Protocol):
    """Every message and every step, never silently dropped."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def record_received(self, message: ReceivedMessage) -> tuple[str, bool]:
        """Store the raw message; return (key, is_new).

        Idempotent on (sending application, control id): a resent message
        returns the existing key and ``False``.
        """

    async def set_state(self, key: str, state: MessageState, *, step: str, detail: str = "",
                        ack_code: str | None = None,
                        only_from: frozenset[MessageState] | None = None) -> bool:
        """Move the message to ``state`` and append the step to its timeline.

        With ``only_from``, the state moves only if the current one is among
        them (the step is still recorded): the door marks a message queued
        only while it is still "received", so that it never undoes a worker
        that was faster than the door. Returns whether the state moved.
        Raises ``KeyError`` for an unknown key.
        """

    async def add_event(self, event: JournalEvent) -> None: ...

    async def add_events(self, events: Sequence[JournalEvent]) -> None:
        """Append several events in one write: a stage's steps go with its next durable step, not one commit each."""

    async def record_outcome(self, outcome: Outcome) -> None:
        """Latest outcome per (document, destination) wins; every one is also an event."""

    async def claim(self, document_id: str, destination: str, *, message_key: str,
                    stale_after: timedelta) -> bool:
        """Take the right to send ``document_id`` to ``destination``, once.

        True when there is no outcome yet, or it is RETRYING, or it is a SENDING
        claim not renewed for ``stale_after`` (its worker died), or it is a failure or
        refusal recorded for another message (a re-send tries again); the outcome
        becomes SENDING. False otherwise: another copy of the job is sending it,
        the recipient accepted this document, or this message already settled it.
        This is what keeps two copies of a job from mailing twice.
        """

    async def renew_claims(self, document_id: str, destinations: Sequence[str], *, message_key: str) -> int:
        """Stamp now on the SENDING claims ``message_key`` holds on ``document_id`` for ``destinations``.

        The worker sending them is alive: a claim renewed within its lease is neither taken
        over nor swept. A claim that became final, or that another message holds, is left as
        it is. Returns how many claims were renewed.
        """

    async def reopen_outcome(self, document_id: str, destination: str, *, message_key: str, detail: str) -> bool:
        """An operator's retry: move a FAILED or REFUSED outcome to RETRYING, so the next copy of the job claims it.

        Never an ACCEPTED outcome (no second mail of the same content) nor a SENDING claim; returns
        whether it moved. Journaled on ``message_key``'s timeline.
        """

    async def outcomes(self, document_id: str) -> list[Outcome]: ...

    async def stale_claims(self, older_than: datetime, limit: int = 100) -> list[Outcome]:
        """SENDING claims taken or last renewed before ``older_than`` (their worker may have died), oldest first."""

    async def bind_content(self, document_id: str, digest: str, message_key: str) -> ContentBinding:
        """Bind ``document_id`` to this content unless it is bound already; return the binding in force."""

    async def content_binding(self, document_id: str) -> ContentBinding | None:
        """The binding in force for ``document_id`` (read only), or None: the door's early look at a reused id."""

    async def message(self, key: str) -> MessageRecord | None: ...

    async def events(self, key: str) -> list[JournalEvent]: ...

    async def search(self, *, state: MessageState | None = None, control_id: str | None = None, limit: int = 100,
                     since: datetime | None = None, until: datetime | None = None, message_type: str | None = None,
                     sending_application: str | None = None,
                     before: tuple[datetime, str] | None = None, ipp: str | None = None, ins: str | None = None,
                     document_id: str | None = None, recipient: str | None = None) -> list[MessageRecord]:
        """Messages matching every filter given, newest first (``received_at``, then key, descending).

        ``since`` inclusive, ``until`` exclusive. ``before`` is the keyset cursor: the
        (``received_at``, ``key``) of the previous page's last row; rows after it only.
        ``ipp``, ``ins`` (the received message's PID-3), ``document_id`` (a document it dispatched,
        rendered or had an outcome for; ``root^extension`` or the extension) and ``recipient`` (an
        address it had an outcome for) are found without the journal holding them in clear.
        """

    async def activity(self, now: datetime) -> Activity:
        """Counts of the last hour and day, received per hour, and the oldest message still waiting."""

    async def metrics_sample(self, after_event: int | None, now: datetime, limit: int = 10_000) -> MetricsSample:
        """Events appended after the cursor ``after_event`` (at most ``limit``; None: none, only the cursor)."""

    async def record_stay(self, stay: Stay) -> None:
        """Insert or replace the stay keyed by (facility, encounter); ``updated_at`` is the journal's clock."""

    async def stay(self, facility: str, encounter: str) -> Stay | None: ...

    async def discharges(self, since: datetime, until: datetime, limit: int = 1000) -> list[Stay]:
        """Stays discharged in [``since``, ``until``), in discharge order, whatever their state since."""

    async def stays_due(self, now: datetime, limit: int = 100) -> list[Stay]:
        """Discharged stays whose letter is not sent, whose ``letter_due_at`` has passed and not yet alerted."""

    async def mark_stay(self, facility: str, encounter: str, *, letter_sent_at: datetime | None = None,
                        alert_raised_at: datetime | None = None, clear_alert: bool = False) -> Stay | None:
        """Set the given timestamps (and drop the alert with ``clear_alert``); the stay as it was before.

        Returns None when there is no such stay. The previous value lets the
        caller tell whether an alert was standing (to record "alert_cleared").
        """

    async def record_dmp_consent(self, consent: PatientConsent) -> bool:
        """Keep the patient's latest DMP consent; every stay of that patient (facility, IPP) shows it.

        The stored consent is replaced unless it came from a later message (a greater
        message key): a redelivered older ADT never undoes a newer one. Returns whether
        this consent is now the one in force.
        """

    async def dmp_consent(self, facility: str, ipp: str) -> PatientConsent | None:
        """The patient's DMP consent in force, or None when no ADT gave one."""

    async def record_document(self, document: RenderedDocument) -> None:
        """Keep a rendered document under (facility, source id); a later version replaces the row."""

    async def rendered_document(self, facility: str, source_id: str) -> RenderedDocument | None:
        """The latest document rendered for that source id, or None."""

    async def record_job_content(self, job_id: str, message_key: str, cda: bytes) -> None:
        """Keep the CDA of a job too large for the bus under its job id, durably; a second call keeps the first."""

    async def job_content(self, job_id: str) -> bytes | None:
        """The CDA kept for ``job_id``, or None (never kept, or gone with its message's content)."""

    async def record_dmp_entry(self, entry: DmpEntry) -> None:
        """Keep which DMP entry (entryUUID, version) holds a document now; the latest write wins."""

    async def dmp_entry(self, document_id: str) -> DmpEntry | None:
        """The DMP entry holding ``document_id`` as this engine last left it, or None."""

    async def record_mail(self, mail: SentMail) -> None:
        """Keep a mail about to be sent and its recipients; a mail already kept (same envelope id) stays as it was."""

    async def mark_mail(self, envelope_id: str, address: str, step: MailStep, *, at: datetime,
                        detail: str = "") -> bool:
        """Record that ``step`` was observed for one recipient of a kept mail, once; also an event of its message.

        Returns True only the first time: a step already recorded, DELIVERED after FAILED (or the
        reverse), or an unknown mail or recipient change nothing and return False. That is what
        makes a notice read twice send no second ZAM.
        """

    async def unmark_mail(self, envelope_id: str, address: str, step: MailStep) -> None:
        """Forget a step just marked, when its ZAM could not be queued (the notice is read again later)."""

    async def sent_mail(self, *, envelope_id: str = "", message_id: str = "") -> SentMail | None:
        """The kept mail with this envelope id, or else this Message-ID; None when there is none."""

    async def sent_mails(self, message_key: str) -> list[SentMail]:
        """The mails sent for one message, oldest first."""

    async def record_notice(self, notice: NoticeRecord) -> bool:
        """Keep what was made of a notice read from the mailbox; False when it was kept already (read twice)."""

    async def notices(self, *, limit: int = 100,
                      verdicts: frozenset[NoticeVerdict] | None = None) -> list[NoticeRecord]:
        """Notices read, newest first; only those with one of ``verdicts`` when given."""


# ----------------------------------------------------------- directory

@dataclass(frozen=True)
class Mailbox:
    """One MSSanté mailbox the directory knows for a professional or an organisation."""

    address: str
    kind: str = "PER"              # PER (personal), ORG (organisation), APP (application), CAB (practice)
    identifier: str = ""           # IdNat_PS (8+RPPS, 0+ADELI) of its holder, or the structure id of an ORG/APP
    name: str = ""                 # holder's display name (civility, given name, family name)
    organisation: str = ""         # raison sociale of the structure it is attached to
    structure_id: str = ""         # that structure's id (FINESS, SIRET... as the directory gives it)
    service: str = ""              # service de rattachement
    profession: str = ""           # profession label (e.g. "Médecin")
    postal_code: str = ""
    red_list: bool = False         # liste rouge: never used to send
    source: str = ""               # where it came from (static file, extraction index, FHIR API, and any fallback)


class Directory(Protocol):
    """Who can be reached at which MSSanté address (Annuaire Santé, static overrides)."""

    async def mailboxes(self, identifier: str) -> list[Mailbox]:
        """The mailboxes of an IdNat_PS (8+RPPS, 0+ADELI) or a structure id; empty when unknown.

        A source that cannot answer now raises ``PeerUnavailable``, never an empty list
        (which would read as "nobody has a mailbox"), and the failure is not remembered.
        """


@dataclass(frozen=True)
class AddressVerdict:
    allowed: bool
    reason: str


class AddressCheck(Protocol):
    """Whether an address may receive mail (the MSSanté whitelist of operator domains), and why."""

    def check(self, address: str) -> AddressVerdict:
        """The verdict by the list in force now; ``PeerUnavailable`` when there is no list to judge by."""


# ----------------------------------------------------------- shared record

@dataclass(frozen=True)
class DmpEntry:
    """Which registry entry holds a document in the DMP now: its entryUUID and version.

    A metadata update (masking) makes a new version with a new entryUUID, so a later
    masking change, replacement or deletion must name the current one, not the first.
    """

    document_id: str
    entry_uuid: str
    version: int = 1
    message_key: str = ""


@dataclass(frozen=True)
class DepositReceipt:
    """The registry's answer for the journal, and the entry that now holds the document (None once deleted)."""

    detail: str
    entry: DmpEntry | None = None


class SharedRecord(Protocol):
    """The patient's shared record (DMP / Mon espace santé): one document in, replaced, withdrawn, or re-masked.

    Every call returns a short summary of the registry's answer for the journal, and
    raises ``PeerUnavailable`` for what may succeed later (timeouts, 5xx, busy
    registry) and ``RejectedByPeer`` for a refusal (metadata error, DMP closed,
    patient unknown), with a reason a person can read.
    """

    async def deposit(self, job: DocumentJob, *, replaces: DmpEntry | None = None) -> DepositReceipt:
        """Provide and register the job's CDA (ITI-41); a REPLACE job carries an RPLC to ``replaces``
        (the parent's current entry; when unknown, the parent's first entry)."""

    async def withdraw(self, job: DocumentJob, *, current: DmpEntry | None = None) -> DepositReceipt:
        """Withdraw the document a DELETE job names (its ``current`` entry) from the patient's record."""

    async def update_confidentiality(self, job: DocumentJob, *, current: DmpEntry | None = None) -> DepositReceipt:
        """Change who may see a document the record already holds (MODIF_CONF_CODE=Y), without a new document.

        The entry's confidentiality codes become the job's (the CDA's code, then MASQUE_PS,
        INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS_LEGAUX from its flags); for the DMP an
        ITI-57 metadata update (a new version of the entry, the previous one deprecated).
        """


# ----------------------------------------------------------- mail and acks

class RecipientStatus(StrEnum):
    ACCEPTED = "accepted"          # 2xx
    TEMPORARY = "temporary"        # 4xx: try again later
    REJECTED = "rejected"          # 5xx: failed for this recipient


@dataclass(frozen=True)
class RecipientResult:
    address: str
    status: RecipientStatus
    code: int
    text: str


class Mailer(Protocol):
    """Send one MIME message; return one result per recipient.

    Raises ``PeerUnavailable`` when the whole transaction failed temporarily
    (connection, TLS, 4xx before DATA completed) and ``RejectedByPeer`` when
    the relay refused the whole message for good.
    """

    async def send(self, message: bytes, *, sender: str, recipients: Sequence[str],
                   envelope_id: str = "") -> list[RecipientResult]:
        """``envelope_id``: the ENVID to ask delivery notices under (RFC 3461), when the relay offers DSN."""

    async def close(self) -> None: ...


class MailPackager(Protocol):
    """What goes out over MSSanté for a job: the IHE_XDM.ZIP, and the mail that carries it.

    Handed to the ``deliver.mss`` stage by the composition root, so that the stage
    decides whom to mail and when, and ``mappings`` decides what the mail is.
    """

    def xdm(self, job: DocumentJob, *, submission_time: datetime) -> bytes:
        """The IHE_XDM.ZIP of the job's document."""

    def mail(self, job: DocumentJob, xdm: bytes, *, recipients: Sequence[Recipient],
             audience: str) -> tuple[bytes, str]:
        """The mail (RFC 5322 bytes) for ``recipients``, all of one audience, and its Message-ID."""


class AckSink(Protocol):
    """Business acknowledgements (ZAM) back to the HIS."""

    async def send(self, message: bytes) -> None:
        """Send one HL7 message (ER7 bytes, unframed) and wait for its positive ACK.

        Raises ``RejectedByPeer`` when the HIS refuses it for good (AE), ``PeerUnavailable``
        when it may take it later (AR, down, no ACK in time).
        """


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime: ...


class FrameHandler(Protocol):
    """Inbound port: what a listener (MLLP, AMQP) hands each received frame to.

    Every method receives the peer as ``"host:port"``. The handler decides the
    answer; the listener only frames and sends it.
    """

    async def handle_frame(self, raw: bytes, peer: str) -> bytes:
        """Journal/queue one message and return the ACK to send (unframed bytes)."""

    async def handle_oversize(self, prefix: bytes, size: int, peer: str) -> bytes:
        """A frame over the limit was discarded; return the NACK to send (read the MSH from ``prefix``)."""

    async def handle_truncated(self, partial: bytes, peer: str) -> None:
        """A frame was cut (connection closed, timeout, new frame started): no ACK is possible, journal it."""


# ----------------------------------------------------------- volets

class Volets(Protocol):
    """The CI-SIS volets in force (:class:`router.volets.VoletRegistry`; the list is ``mappings.volets``)."""

    def for_document(self, type_key: str) -> Volet:
        """The volet an MDM whose TXA-2 (first component, upper-case) is ``type_key`` is rendered as."""

    def for_lab_report(self) -> Volet:
        """The volet a laboratory report is rendered as."""

    def for_template_ids(self, template_ids: Iterable[str]) -> list[Volet]:
        """The volets a CDA declaring these templateIds belongs to."""

    def schematrons(self) -> Sequence[str]:
        """Every volet's schematron, once each."""

    def stay_letter_types(self) -> frozenset[str]:
        """The type codes of a stay's lettre de liaison."""


# --------------------------------------------------------------- retention

class JournalRetention(SingleRunner, Protocol):
    """What retention (:mod:`router.retention`) needs of a journal: batched removal, one runner, space back.

    Only messages in a final state whose recipients are all settled are ever touched.
    """

    async def expire_content(self, before: datetime, limit: int) -> int:
        """Empty the content (raw HL7, kept CDA) of up to ``limit`` final messages received before ``before``."""

    async def expire_metadata(self, before: datetime, limit: int) -> int:
        """Remove up to ``limit`` final messages received before ``before``, their timeline and outcomes."""

    async def expirable(self, content_before: datetime | None, metadata_before: datetime | None) -> tuple[int, int]:
        """How many messages would have their content emptied, and be removed, now (a dry run)."""

    async def reclaim_space(self) -> str:
        """Give freed space back where the database can, and say what was done."""
