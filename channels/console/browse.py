"""What the pages and the API both read: search filters, keyset cursors, timelines, parked jobs, release.

Everything here goes through the Journal and Bus ports. A message's raw HL7
and each release are audited in the journal, as events on the message's
timeline (state ``audit``).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from router import queues
from router.ports import Bus, Journal, JournalEvent, MessageRecord, MessageState, Outcome, SentMail
from router.settle import PARK_REASON_HEADER

#: A patient's own MSSanté mailbox is named after their INS: patient data, hidden from viewers.
PATIENT_ADDRESS = re.compile(r"[^\s,;:<>()\[\]\"']+@patient\.mssante\.fr", re.IGNORECASE)
PATIENT_MASK = "(patient)@patient.mssante.fr"
PAGE_SIZE = 50
MAX_PAGE = 500
FILTERS = ("state", "control_id", "type", "sender", "since", "until", "ipp", "ins", "document_id", "recipient")
#: Filters naming a patient: patient data, so only roles that may see patient data may search by them.
PATIENT_FILTERS = ("ipp", "ins")


class BadQuery(ValueError):
    """A filter or cursor the console cannot read; the message says which."""


@dataclass(frozen=True)
class Page:
    records: list[MessageRecord]
    next_cursor: str | None          # pass as ``before`` for the next page; None on the last one


def asks_patient(params: Any) -> bool:
    """Whether the query filters by a patient identifier (``PATIENT_FILTERS``, or a patient's own
    mailbox, which is named after the INS)."""
    return (any(params.get(name) for name in PATIENT_FILTERS)
            or bool(PATIENT_ADDRESS.fullmatch((params.get("recipient") or "").strip())))


async def audit_patient_search(request: Any, found: int) -> None:
    """A search by IPP or INS is audited (user, which identifiers, how many found), never the values."""
    kinds = [name for name in PATIENT_FILTERS if request.query_params.get(name)]
    if kinds:
        await request.app.state.users.audit_async(request.state.user.name, "patient.search", "+".join(kinds),
                                                  f"{found} message(s) on this page")


async def search(journal: Journal, params: Any) -> Page:
    """One page of messages matching the query parameters (``FILTERS``, ``before``, ``limit``).

    IPP, INS, document id and recipient are looked up by the journal's keyed digests
    (``channels/journal/digests.py``); the other filters are columns.
    """
    kwargs: dict[str, Any] = {}
    if params.get("state"):
        try:
            kwargs["state"] = MessageState(params["state"])
        except ValueError as exc:
            raise BadQuery(f"state: one of {', '.join(s.value for s in MessageState)}") from exc
    for name, arg in (("control_id", "control_id"), ("type", "message_type"), ("sender", "sending_application"),
                      ("ipp", "ipp"), ("ins", "ins"), ("document_id", "document_id"), ("recipient", "recipient")):
        if params.get(name):
            kwargs[arg] = params[name]
    for name in ("since", "until"):
        if params.get(name):
            kwargs[name] = _moment(name, params[name])
    limit = _limit(params.get("limit"))
    if params.get("before"):
        kwargs["before"] = decode_cursor(params["before"])
    records = await journal.search(limit=limit + 1, **kwargs)
    more = len(records) > limit
    records = records[:limit]
    return Page(records, encode_cursor(records[-1]) if more else None)


def encode_cursor(record: MessageRecord) -> str:
    text = f"{record.received_at.isoformat()}|{record.key}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, key = text.rsplit("|", 1)
        return datetime.fromisoformat(moment), key
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadQuery("before: not a cursor this console gave") from exc


def _moment(name: str, value: str) -> datetime:
    """An ISO date or date-time; without a zone, UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadQuery(f"{name}: expected an ISO date or date-time, e.g. 2026-12-06T08:00") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _limit(value: str | None) -> int:
    if not value:
        return PAGE_SIZE
    try:
        limit = int(value)
    except ValueError as exc:
        raise BadQuery(f"limit: expected a number from 1 to {MAX_PAGE}") from exc
    if not 1 <= limit <= MAX_PAGE:
        raise BadQuery(f"limit: expected a number from 1 to {MAX_PAGE}")
    return limit


def mask(text: str) -> str:
    """``text`` with every patient mailbox (``<INS>@patient.mssante.fr``) replaced by a placeholder."""
    return PATIENT_ADDRESS.sub(PATIENT_MASK, text)


def masked_record(record: MessageRecord) -> MessageRecord:
    return replace(record, raw=b"", detail=mask(record.detail))


def masked_timeline(found: Timeline) -> Timeline:
    """The timeline as a viewer sees it: no raw message, no patient mailbox, no recipient identifier (an INS)."""
    return Timeline(masked_record(found.record),
                    [replace(e, detail=mask(e.detail), destination=mask(e.destination)) for e in found.events],
                    [replace(o, detail=mask(o.detail), destination=mask(o.destination)) for o in found.outcomes],
                    [replace(m, recipients=tuple(replace(r, address=mask(r.address), detail=mask(r.detail),
                                                         identifier="") for r in m.recipients))
                     for m in found.mails])


def metadata(record: MessageRecord) -> dict[str, Any]:
    """A message without its payload: what every role may see."""
    return {"key": record.key, "received_at": record.received_at.isoformat(),
            "updated_at": record.updated_at.isoformat(), "channel": record.channel,
            "sending_application": record.sending_application, "sending_facility": record.sending_facility,
            "control_id": record.control_id, "message_type": record.message_type, "state": str(record.state),
            "ack_code": record.ack_code, "detail": record.detail}


@dataclass(frozen=True)
class Timeline:
    record: MessageRecord
    events: list[JournalEvent]
    outcomes: list[Outcome]
    mails: list[SentMail] = field(default_factory=list)    # each mail and its recipients' steps (notices)


async def timeline(journal: Journal, key: str) -> Timeline | None:
    record = await journal.message(key)
    if record is None:
        return None
    events = await journal.events(key)
    outcomes: list[Outcome] = []
    for document_id in dict.fromkeys(e.document_id for e in events if e.document_id):
        outcomes += await journal.outcomes(document_id)
    return Timeline(record, events, outcomes, await journal.sent_mails(key))


def event_json(event: JournalEvent) -> dict[str, Any]:
    return {"at": event.at.isoformat(), "step": event.step, "state": event.state, "detail": event.detail,
            "document_id": event.document_id, "destination": event.destination}


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {"document_id": outcome.document_id, "destination": outcome.destination, "status": str(outcome.status),
            "detail": outcome.detail, "at": outcome.at.isoformat()}


def raw_segments(raw: bytes) -> list[str]:
    """The message as received, one segment a line (UTF-8 when it is, else ISO 8859-1)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return [segment for segment in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if segment]


async def audit(journal: Journal, key: str, step: str, detail: str) -> None:
    await journal.add_event(JournalEvent(message_key=key, at=datetime.now(UTC), step=step, state="audit",
                                         detail=detail))


@dataclass(frozen=True)
class Parked:
    queue: str
    message_id: str
    message_key: str
    reason: str
    attempt: int


async def parked(bus: Bus, limit: int = 100, *, masked: bool = False, journal: Journal | None = None) -> list[Parked]:
    """The parked envelopes of every stage queue, queue by queue, oldest first (``masked``: as a viewer sees them).

    With ``journal``, those of a discarded message are left out: an operator closed it.
    """
    found = []
    for queue in queues.ALL:
        for envelope in await bus.parked(queue, limit=limit):
            if journal is not None and await _discarded(journal, envelope):
                continue
            reason = envelope.headers.get(PARK_REASON_HEADER, "")
            found.append(Parked(queue, envelope.message_id,
                                envelope.headers.get("message_key") or envelope.message_id,
                                mask(reason) if masked else reason, envelope.attempt))
    return found


def parked_json(item: Parked) -> dict[str, Any]:
    return {"queue": item.queue, "message_id": item.message_id, "message_key": item.message_key,
            "reason": item.reason, "attempt": item.attempt}


async def _discarded(journal: Journal, envelope) -> bool:
    record = await journal.message(envelope.headers.get("message_key") or envelope.message_id)
    return record is not None and record.state == MessageState.DISCARDED


def mail_json(mail: SentMail) -> dict[str, Any]:
    """A sent mail and, per recipient, when the relay took it and what the notices said."""
    def at(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None
    return {"message_id": mail.message_id, "envelope_id": mail.envelope_id, "document_id": mail.document_id,
            "recipients": [{"address": r.address, "relayed_at": at(r.relayed_at), "delivered_at": at(r.delivered_at),
                            "failed_at": at(r.failed_at), "read_at": at(r.read_at), "error_at": at(r.error_at),
                            "detail": r.detail} for r in mail.recipients]}
