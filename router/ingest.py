"""The door: one HL7 frame in, one HL7 ACK out — store, then acknowledge.

This is the ingest hot path, so it reads the MSH only (a lazy splitter, no
python-hl7 tree). Order of work for every frame:

1. decode by MSH-18 and read the header; unreadable → AR, journaled;
2. triage what is cheap to know now: message type accepted by this engine,
   a PID segment present, and for PFI documents (ORU/MDM carrying a CDA) the
   routing check, for render-mode MDM a TXA (:mod:`router.mode`); a refusal is an AE/AR with an ERR segment, journaled;
3. journal the raw bytes (idempotent on sending application + MSH-10): a
   resent message gets the ACK it got the first time and is not processed again;
   a PFI document whose CDA id was already sent with other content will be
   answered AE 205 (:mod:`router.reused_id`), and is still queued so that the
   worker answers each recipient with a ZAM;
4. publish to the ``inbound`` queue and wait for the bus's confirmation;
5. only then mark it queued and answer AA.

Everything that needs the full message (the CDA, its schema, the PID/CDA
match, the MetaDMPMSS flags) happens behind the bus, and its outcome reaches
the HIS as ZAM business acknowledgements.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone

import structlog

from router import queues
from router.errors import EngineError, ParseError, TransientError, ValidationError
from router.hl7 import ack as acks
from router.hl7.charset import decode_lenient, encode
from router.hl7.segments import normalise_segments
from router.hl7.msh import MshHeader, Segment, iter_segments, read_header
from router.hl7.runs import Runs, set_runs_aside
from router.identity import searchable_identifiers
from router.mode import is_render_mode
from router.pfi import check_routing
from router.ports import Bus, Journal, MessageState, ReceivedMessage
from router.reused_id import reused_id_refusal

log = structlog.get_logger(__name__)

_ONLY_RECEIVED = frozenset({MessageState.RECEIVED})

#: Message types and triggers the engine takes in: PFI documents, the ADT movements the stay
#: state (lettre de liaison watchdog) needs, and the patient updates that carry DMP consent (ZFA).
ACCEPTED_EVENTS: Mapping[str, frozenset[str]] = {
    "ORU": frozenset({"R01"}),
    "MDM": frozenset({"T02", "T04", "T10", "T11"}),
    "ADT": frozenset({"A01", "A03", "A04", "A08", "A11", "A13", "A28", "A31"}),
}
#: Message types that carry a PFI document, and so must pass the PFI routing check at the door.
PFI_TYPES = frozenset({"ORU", "MDM"})
#: The door's default limit on one MLLP frame (16 MiB): larger frames are answered AR and only their
#: first bytes are journaled. A listener's ``max_frame_bytes`` setting overrides it; the framer, the
#: listener and the configuration take their default from here.
MAX_FRAME_BYTES = 16 * 1024 * 1024


class Ingest:
    """Implements the MLLP listener's FrameHandler for one channel."""

    def __init__(self, journal: Journal, bus: Bus, *, channel: str, default_charset: str = "utf-8",
                 accepted: Mapping[str, frozenset[str]] = ACCEPTED_EVENTS, max_frame_bytes: int = MAX_FRAME_BYTES):
        self.journal = journal
        self.bus = bus
        self.channel = channel
        self.default_charset = default_charset
        self.accepted = accepted
        self.max_frame_bytes = max_frame_bytes
        self._background: set[asyncio.Task] = set()

    async def handle_frame(self, raw: bytes, peer: str) -> bytes:
        text, codec, lossy = decode_lenient(raw, self.default_charset)
        if "\n" in text:
            text = normalise_segments(text)      # the raw bytes stay as received
        text, runs = set_runs_aside(text, in_place=True)     # an embedded CDA's base64 is not split into copies
        try:
            header = read_header(text)
        except ParseError as exc:
            return await self._unreadable(raw, peer, f"unreadable message: {exc}")

        segments = list(iter_segments(text))
        pid = next((segment for segment in segments if segment.id == "PID"), None)
        identifiers = searchable_identifiers(pid) if pid is not None else ()
        refusal = self._triage(header, segments)
        if refusal is None and lossy:
            refusal = EngineError(f"bytes not valid in the declared charset {codec} (MSH-18 {header.charset!r})",
                                  hl7_code="103", hl7_text="Table value not found", hl7_location="MSH^1^18")
        if refusal is not None:
            return await self._refuse(raw, peer, header, codec, refusal, identifiers=identifiers)

        reuse = await self._reused_id(header, segments, runs)
        runs.clear()                             # not held while the message is journaled
        key, is_new = await self.journal.record_received(self._received(raw, peer, header, header.control_id,
                                                                        identifiers))
        if not is_new:
            replay = await self._answer_duplicate(key, header, codec)
            if replay is not None:
                return replay
        if reuse is not None:
            # Journaled with its AE before it is queued, so that a resend of this MSH-10 gets the same answer.
            log.info("ingest.reused_document_id", key=key, control_id=header.control_id, error_code="205")
            await self.journal.set_state(key, MessageState.RECEIVED, step="door", detail=str(reuse),
                                         ack_code="AE", only_from=_ONLY_RECEIVED)
        try:
            headers = {"channel": self.channel, "codec": codec}
            body = raw
            if len(raw) > queues.INLINE_BODY_BYTES:     # the worker reads it from the journal (router/queues.py)
                body, headers[queues.BODY_HEADER] = b"", queues.BODY_IN_JOURNAL
            await self.bus.publish(queues.INBOUND, body, message_id=key, headers=headers)
        except TransientError as exc:
            # Stored but not queued: ask the sender to resend later (AR, original mode).
            # The resend finds the journal row still "received" and publishes it then.
            log.warning("ingest.bus_unavailable", key=key, control_id=header.control_id, error=str(exc))
            await self.journal.set_state(key, MessageState.RECEIVED, step="queue",
                                         detail=f"bus unavailable, AR sent: {exc}", ack_code="AR",
                                         only_from=_ONLY_RECEIVED)
            return self._ack(header, codec, "AR", text="temporarily unable to store the message, resend later",
                             error=exc)
        if reuse is not None:
            # Still queued: the worker reads the recipients and answers each with a ZAM^Z02 N, and parks it.
            self._mark_queued(key, header.control_id, ack_code="AE")
            return self._ack(header, codec, "AE", text=str(reuse), error=reuse)
        self._mark_queued(key, header.control_id)
        return self._ack(header, codec, "AA")

    async def handle_oversize(self, prefix: bytes, size: int, peer: str) -> bytes:
        reason = f"message of {size} bytes exceeds the channel limit of {self.max_frame_bytes} bytes"
        text, codec, _ = decode_lenient(prefix, self.default_charset)
        try:
            header = read_header(text)
        except ParseError:
            return await self._unreadable(prefix, peer, reason + " (first bytes kept; MSH unreadable)")
        refusal = EngineError(reason + "; only the first bytes are kept in the journal",
                              hl7_code="207", hl7_text="Application internal error")
        return await self._refuse(prefix, peer, header, codec, refusal, ack_code="AR")

    async def handle_truncated(self, partial: bytes, peer: str) -> None:
        control = "?"
        try:
            control = read_header(decode_lenient(partial, self.default_charset)[0]).control_id
        except ParseError:
            pass
        reason = (f"truncated frame from {peer}: connection closed or timed out before the end of block "
                  f"({len(partial)} bytes, MSH-10 {control}); no ACK could be sent")
        message = ReceivedMessage(raw=partial, channel=self.channel, sending_application="",
                                  sending_facility="", control_id=_synthetic_id("truncated", control),
                                  message_type="", received_at=_now(), peer=peer)
        key, _ = await self.journal.record_received(message)
        await self.journal.set_state(key, MessageState.REJECTED, step="truncated", detail=reason)
        log.warning("ingest.truncated", key=key, peer=peer, size=len(partial))

    # ------------------------------------------------------------------ helpers

    def _mark_queued(self, key: str, control_id: str, *, ack_code: str = "AA") -> None:
        """Record "queued" without holding the ACK for a third durable write.

        The AA already rests on two durable facts, the journal row and the bus
        confirm. If this write is lost in a crash the row stays "received": a
        resend is published again and the worker, idempotent per message, skips
        it. ``only_from`` keeps it from undoing a worker that was faster.
        """
        task = asyncio.create_task(self.journal.set_state(
            key, MessageState.QUEUED, step="queued", ack_code=ack_code, only_from=_ONLY_RECEIVED))
        self._background.add(task)
        task.add_done_callback(functools.partial(self._background_done, key=key, control_id=control_id))

    def _background_done(self, task: asyncio.Task, *, key: str, control_id: str) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ingest.queued_state_lost", key=key, control_id=control_id, error=str(task.exception()))

    async def drain(self) -> None:
        """Wait for the background journal writes (on shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _reused_id(self, header: MshHeader, segments: list[Segment],
                         runs: Runs) -> ValidationError | None:
        """For a PFI document (the HIS wrote the CDA): its id already sent with other content? See reused_id."""
        if header.message_type not in PFI_TYPES or is_render_mode(segments):
            return None
        return await reused_id_refusal(segments, self.journal, runs)

    def _triage(self, header: MshHeader, segments: list[Segment]) -> EngineError | None:
        triggers = self.accepted.get(header.message_type)
        if triggers is None or header.trigger not in triggers:
            event = f"{header.message_type}^{header.trigger}"
            return EngineError(f"message type {event} is not accepted on channel {self.channel}",
                               hl7_code="200", hl7_text="Unsupported message type", hl7_location="MSH^1^9")
        if not any(segment.id == "PID" for segment in segments):
            return EngineError("required segment PID is missing", hl7_code="100",
                               hl7_text="Segment sequence error", hl7_location="PID^1")
        if header.message_type not in PFI_TYPES:
            return None
        if is_render_mode(segments):
            # Render mode: Liaison writes the CDA; the worker reads the rest of the message.
            if header.message_type == "MDM" and not any(segment.id == "TXA" for segment in segments):
                return EngineError("MDM without TXA: the document cannot be identified", hl7_code="100",
                                   hl7_text="Segment sequence error", hl7_location="TXA^1")
            return None
        try:
            check_routing(segments)
        except ValidationError as exc:
            return exc
        return None

    async def _refuse(self, raw: bytes, peer: str, header: MshHeader, codec: str, error: EngineError,
                      *, ack_code: str | None = None, identifiers: tuple[tuple[str, str], ...] = ()) -> bytes:
        code = ack_code or ("AR" if error.hl7_code == "200" else "AE")
        # Refused messages get a journal id of their own, so that a corrected resend
        # with the same MSH-10 is not mistaken for a duplicate.
        message = self._received(raw, peer, header, _synthetic_id("refused", header.control_id), identifiers)
        key, _ = await self.journal.record_received(message)
        await self.journal.set_state(key, MessageState.REJECTED, step="refused", detail=str(error), ack_code=code)
        # The reason goes to the sender (MSA-3) and the encrypted journal, not to the log:
        # it may quote a field, e.g. a malformed patient address, which holds the INS.
        log.info("ingest.refused", key=key, control_id=header.control_id, ack=code, error_code=error.hl7_code)
        return self._ack(header, codec, code, text=str(error), error=error)

    async def _unreadable(self, raw: bytes, peer: str, reason: str) -> bytes:
        message = ReceivedMessage(raw=raw, channel=self.channel, sending_application="", sending_facility="",
                                  control_id=_synthetic_id("unreadable", "?"), message_type="",
                                  received_at=_now(), peer=peer)
        key, _ = await self.journal.record_received(message)
        await self.journal.set_state(key, MessageState.REJECTED, step="refused", detail=reason, ack_code="AR")
        log.info("ingest.unreadable", key=key, peer=peer, reason=reason)
        return encode(acks.build_minimal_nack(reason, codec=self.default_charset), self.default_charset)

    async def _answer_duplicate(self, key: str, header: MshHeader, codec: str) -> bytes | None:
        """The ACK for a resent message, or None when it must still be queued."""
        record = await self.journal.message(key)
        if record is None or record.state == MessageState.RECEIVED:
            return None
        log.info("ingest.duplicate", key=key, control_id=header.control_id, state=record.state)
        code = record.ack_code or "AA"
        if code == "AR" and record.state != MessageState.REJECTED:
            # Its first answer was "resend later" (the bus failed to confirm the publish), yet the message
            # went on: the publish had reached the queue, only its confirm was lost with a broker node.
            # It is stored and queued, so the resend gets AA; replaying AR would have the HIS resend it
            # for ever. (Found by the fault suite: a RabbitMQ node killed mid-stream.)
            code = "AA"
        return self._ack(header, codec, code,
                         text=f"duplicate of message {key} ({record.state}); not processed again")

    def _received(self, raw: bytes, peer: str, header: MshHeader, control_id: str,
                  identifiers: tuple[tuple[str, str], ...] = ()) -> ReceivedMessage:
        return ReceivedMessage(raw=raw, channel=self.channel, sending_application=header.sending_application,
                               sending_facility=header.sending_facility, control_id=control_id,
                               message_type=f"{header.message_type}^{header.trigger}",
                               received_at=_now(), peer=peer, identifiers=identifiers)

    @staticmethod
    def _ack(header: MshHeader, codec: str, code: str, *, text: str = "", error: EngineError | None = None) -> bytes:
        if error is None:
            return encode(acks.build_ack(header, code, text=text), codec)
        return encode(acks.build_ack(header, code, text=text, error_code=error.hl7_code,
                                     error_text=error.hl7_text, error_location=error.hl7_location), codec)


def _synthetic_id(kind: str, control_id: str) -> str:
    return f"{control_id}#{kind}-{uuid.uuid4().hex[:12]}"


def _now() -> datetime:
    return datetime.now(timezone.utc)
