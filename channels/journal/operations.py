"""The journal's messages, timeline, outcomes, claims and content bindings, as operations for every dialect.

Each function returns an operation (``sql.py``): the SQLite and PostgreSQL adapters run the same
statements, seal the same values under the same associated data, and so keep the same rules:

- idempotency on (sending application MSH-3, control id MSH-10): a resend returns the first key and
  adds a "duplicate" event to it (see ``sqlite.py`` for why MSH-4 is not part of the key);
- the latest outcome per (document, destination) wins, and every outcome is also an event;
- a claim is one ``INSERT ... ON CONFLICT ... DO UPDATE ... WHERE``: atomic in both databases, so two
  workers (threads, processes or servers) never both get the right to send the same mail;
- a document id is bound to the first content dispatched under it.

What is sealed with the journal's codec: the received bytes and every free-text ``detail``. What is
stored as keyed digests only (``digests.py``, table ``message_identifiers``): the IPP and INS of the
received message, and document ids and recipient addresses again next to their clear columns, so that
one indexed lookup finds a message by any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from channels.cipher import Codec, aad
from channels.journal.keys import new_key
from channels.journal.sql import Operation, Statement, large_blob, moment, stamp, ts
from router.ports import (ContentBinding, DmpEntry, JournalEvent, MessageRecord, MessageState, Outcome,
                          OutcomeStatus, ReceivedMessage)

#: The columns of a ``messages`` row; its received bytes are in ``message_contents`` (schema v11: an UPDATE
#: of the row no longer rewrites them).
MESSAGE_ROW = ("key, channel, sending_application, sending_facility, control_id, "
               "message_type, state, received_at, updated_at, ack_code, detail")
#: A message as read: the row with its received bytes (NULL once retention emptied them) second.
MESSAGE_COLUMNS = ("key, (SELECT raw FROM message_contents c WHERE c.key = messages.key) AS raw, channel, "
                   "sending_application, sending_facility, control_id, message_type, state, received_at, updated_at, "
                   "ack_code, detail")
EVENT_COLUMNS = "message_key, at, step, state, detail, document_id, destination"
OUTCOME_COLUMNS = "document_id, destination, status, detail, at, message_key"


# ----------------------------------------------------------------- writes

def record_received(codec: Codec, message: ReceivedMessage, now: str,
                    digests: Sequence[bytes] = ()) -> Operation[tuple[str, bool]]:
    """Store the raw message and its identifiers' ``digests``; on a resend return the first key, ``False``,
    and add a "duplicate" event."""
    key = new_key()
    received_at = ts(message.received_at)
    inserted = yield (
        f"INSERT INTO messages ({MESSAGE_ROW}, peer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?) "
        "ON CONFLICT (sending_application, control_id) DO NOTHING",
        (key, message.channel, message.sending_application, message.sending_facility, message.control_id,
         message.message_type, str(MessageState.RECEIVED), received_at, now,
         codec.seal_text("", aad("messages", key, "detail")), message.peer))
    origin = f"{message.channel} from {message.peer}" if message.peer else message.channel
    if inserted.rowcount == 1:
        yield ("INSERT INTO message_contents (key, raw) VALUES (?, ?)",
               (key, large_blob("message_contents", "raw", codec.seal_bytes(message.raw, aad("messages", key, "raw")))))
        yield event(codec, key, received_at, "received", str(MessageState.RECEIVED), origin)
        yield from index(key, digests)
        return key, True
    found = yield ("SELECT m.key, c.raw FROM messages m LEFT JOIN message_contents c ON c.key = m.key "
                   "WHERE m.sending_application = ? AND m.control_id = ?",
                   (message.sending_application, message.control_id))
    first_key, stored = found.rows[0]
    same = stored is not None and codec.open_bytes(stored, aad("messages", first_key, "raw")) == bytes(message.raw)
    content = "identical bytes" if same else f"different bytes ({len(message.raw)} bytes), first copy kept"
    yield event(codec, first_key, now, "duplicate", "duplicate", f"resent on {origin}: {content}")
    return first_key, False


def set_state(codec: Codec, key: str, state: MessageState, *, step: str, detail: str, ack_code: str | None,
              only_from: frozenset[MessageState] | None, at: str) -> Operation[bool]:
    """Move the message to ``state`` (if its state is in ``only_from``, when given); record the step.

    Raise ``KeyError`` if no message has this key.
    """
    allowed = None if only_from is None else [str(s) for s in only_from]
    sealed = codec.seal_text(detail, aad("messages", key, "detail"))
    sql = ("UPDATE messages SET state = ?, detail = ?, updated_at = ?, ack_code = coalesce(?, ack_code) "
           "WHERE key = ?")
    params: list = [str(state), sealed, at, ack_code, key]
    if allowed is not None:
        sql += f" AND state IN ({', '.join('?' * len(allowed))})"
        params += allowed
    moved = (yield sql, params).rowcount == 1
    if not moved and (allowed is None or not (yield "SELECT 1 FROM messages WHERE key = ?", (key,)).rows):
        raise KeyError(f"no message {key!r} in the journal")
    yield event(codec, key, at, step, str(state) if moved else f"{state} (not applied)", detail)
    return moved


def add_event(codec: Codec, item: JournalEvent) -> Operation[None]:
    yield event(codec, item.message_key, ts(item.at), item.step, item.state, item.detail, item.document_id,
                item.destination)


def add_events(codec: Codec, items: Sequence[JournalEvent]) -> Operation[None]:
    for item in items:
        yield from add_event(codec, item)


def event(codec: Codec, message_key: str, at: str, step: str, state: str, detail: str, document_id: str = "",
          destination: str = "") -> Statement:
    """The statement that appends one event to the timeline."""
    sealed = codec.seal_text(detail, aad("events", message_key, at, step, document_id, destination))
    return (f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (message_key, at, step, state, sealed, document_id, destination))


def index(message_key: str, digests: Sequence[bytes]) -> Operation[None]:
    """File the message under these identifier digests (once each), for :func:`search`."""
    if not message_key or not digests:
        return
    rows = ", ".join("(?, ?)" for _ in digests)
    yield (f"INSERT INTO message_identifiers (digest, message_key) VALUES {rows} ON CONFLICT DO NOTHING",
           [value for digest in digests for value in (digest, message_key)])


def record_outcome(codec: Codec, outcome: Outcome, digests: Sequence[bytes] = ()) -> Operation[None]:
    """Keep the outcome with the latest ``at`` per (document, destination); append every one as an event;
    file the message under the ``digests`` of its document id and destination."""
    at = ts(outcome.at)
    sealed = codec.seal_text(outcome.detail, aad("outcomes", outcome.document_id, outcome.destination, "detail"))
    yield (f"INSERT INTO outcomes ({OUTCOME_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
           "ON CONFLICT (document_id, destination) DO UPDATE SET "
           "status = excluded.status, detail = excluded.detail, at = excluded.at, "
           "message_key = excluded.message_key WHERE excluded.at >= outcomes.at",
           (outcome.document_id, outcome.destination, str(outcome.status), sealed, at, outcome.message_key))
    yield event(codec, outcome.message_key, at, "outcome", str(outcome.status), outcome.detail,
                outcome.document_id, outcome.destination)
    yield from index(outcome.message_key, digests)


def claim(codec: Codec, document_id: str, destination: str, *, message_key: str, at: str,
          stale: str) -> Operation[bool]:
    """Take the right to send, in one atomic statement (see ``Journal.claim`` for when it is given)."""
    sealed = codec.seal_text("claimed for sending", aad("outcomes", document_id, destination, "detail"))
    taken = yield (
        f"INSERT INTO outcomes ({OUTCOME_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (document_id, destination) DO UPDATE SET "
        "status = excluded.status, detail = excluded.detail, at = excluded.at, "
        "message_key = excluded.message_key "
        "WHERE outcomes.status = ? OR (outcomes.status = ? AND outcomes.at < ?) "
        "OR (outcomes.status IN (?, ?) AND outcomes.message_key <> excluded.message_key)",
        (document_id, destination, str(OutcomeStatus.SENDING), sealed, at, message_key,
         str(OutcomeStatus.RETRYING), str(OutcomeStatus.SENDING), stale,
         str(OutcomeStatus.FAILED), str(OutcomeStatus.REFUSED)))
    return taken.rowcount == 1


def reopen_outcome(codec: Codec, document_id: str, destination: str, *, message_key: str, detail: str,
                   at: str) -> Operation[bool]:
    """Move a FAILED or REFUSED outcome to RETRYING (an operator's retry), in one guarded statement.

    Never an ACCEPTED one (that content reached the recipient: no second mail), nor a live claim.
    The change is an event on ``message_key``'s timeline. Returns whether it moved.
    """
    sealed = codec.seal_text(detail, aad("outcomes", document_id, destination, "detail"))
    moved = yield ("UPDATE outcomes SET status = ?, detail = ?, at = ? "
                   "WHERE document_id = ? AND destination = ? AND status IN (?, ?)",
                   (str(OutcomeStatus.RETRYING), sealed, at, document_id, destination,
                    str(OutcomeStatus.FAILED), str(OutcomeStatus.REFUSED)))
    if moved.rowcount != 1:
        return False
    yield event(codec, message_key, at, "outcome", str(OutcomeStatus.RETRYING), detail, document_id, destination)
    return True


def renew_claims(document_id: str, destinations: Sequence[str], *, message_key: str, at: str) -> Operation[int]:
    """Stamp ``at`` on the message's SENDING claims of these destinations; how many were renewed.

    ``at`` is read before the write is queued: a final outcome written after this renewal always
    carries a later time, so the renewal never hides it.
    """
    marks = ", ".join("?" * len(destinations))
    renewed = yield (f"UPDATE outcomes SET at = ? WHERE document_id = ? AND status = ? AND message_key = ? "
                     f"AND destination IN ({marks})",
                     (at, document_id, str(OutcomeStatus.SENDING), message_key, *destinations))
    return renewed.rowcount


def bind_content(document_id: str, digest: str, message_key: str, at: str,
                 digests: Sequence[bytes] = ()) -> Operation[ContentBinding]:
    """Bind the document id to this content unless it is bound already; the binding in force.

    The message is filed under the document id's ``digests`` either way (a re-send is found by it too).
    """
    yield from index(message_key, digests)
    yield ("INSERT INTO document_contents (document_id, digest, message_key, at) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (document_id) DO NOTHING", (document_id, digest, message_key, at))
    found = yield ("SELECT document_id, digest, message_key, at FROM document_contents WHERE document_id = ?",
                   (document_id,))
    doc, bound, key, when = found.rows[0]
    return ContentBinding(document_id=doc, digest=bound, message_key=key, at=moment(when))


def content_binding(document_id: str) -> Operation[ContentBinding | None]:
    """The content a document id is bound to, or None when nothing was dispatched under it yet."""
    found = yield ("SELECT document_id, digest, message_key, at FROM document_contents WHERE document_id = ?",
                   (document_id,))
    if not found.rows:
        return None
    doc, bound, key, when = found.rows[0]
    return ContentBinding(document_id=doc, digest=bound, message_key=key, at=moment(when))


def record_dmp_entry(entry: DmpEntry, now: str) -> Operation[None]:
    yield ("INSERT INTO dmp_entries (document_id, entry_uuid, version, message_key, updated_at) "
           "VALUES (?, ?, ?, ?, ?) ON CONFLICT (document_id) DO UPDATE SET entry_uuid = excluded.entry_uuid, "
           "version = excluded.version, message_key = excluded.message_key, updated_at = excluded.updated_at",
           (entry.document_id, entry.entry_uuid, entry.version, entry.message_key, now))


# ------------------------------------------------------------------ reads

def message(codec: Codec, key: str) -> Operation[MessageRecord | None]:
    rows = (yield f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE key = ?", (key,)).rows
    return message_record(codec, rows[0]) if rows else None


def events(codec: Codec, key: str) -> Operation[list[JournalEvent]]:
    """The message's timeline, oldest first (ties in insertion order)."""
    found = yield f"SELECT {EVENT_COLUMNS} FROM events WHERE message_key = ? ORDER BY at, id", (key,)
    return [journal_event(codec, row) for row in found.rows]


def document_events(codec: Codec, document_id: str) -> Operation[list[JournalEvent]]:
    """Every event about one document (its outcome history included), oldest first."""
    found = yield (f"SELECT {EVENT_COLUMNS} FROM events WHERE document_id = ? AND document_id <> '' "
                   "ORDER BY at, id", (document_id,))
    return [journal_event(codec, row) for row in found.rows]


def outcomes(codec: Codec, document_id: str) -> Operation[list[Outcome]]:
    """The current outcome per destination of one document, by destination."""
    found = yield (f"SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE document_id = ? ORDER BY destination",
                   (document_id,))
    return [outcome(codec, row) for row in found.rows]


def stale_claims(codec: Codec, older_than: datetime, limit: int) -> Operation[list[Outcome]]:
    found = yield (f"SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE status = ? AND at < ? ORDER BY at LIMIT ?",
                   (str(OutcomeStatus.SENDING), ts(older_than), limit))
    return [outcome(codec, row) for row in found.rows]


def search(codec: Codec, *, state: MessageState | None, control_id: str | None, limit: int,
           since: datetime | None, message_type: str | None, sending_application: str | None,
           until: datetime | None = None, before: tuple[datetime, str] | None = None,
           digests: Sequence[bytes] = ()) -> Operation[list[MessageRecord]]:
    """Messages matching every filter given, newest first (by ``received_at``, then key).

    ``since`` is inclusive, ``until`` exclusive. ``before`` is a keyset cursor, the
    (``received_at``, ``key``) of the last row of the previous page: only rows after it
    in this order are returned, so a page costs the same however deep it is. ``digests``:
    identifier digests (``digests.py``) the message must be filed under, every one.
    """
    clauses: list[str] = []
    params: list = []
    if state is not None:
        # An enum, written as a constant: PostgreSQL's generic plan for ``state = $1`` cannot tell a
        # rare state (parked) from a common one, and would walk the time index looking for it.
        clauses.append(f"state = '{MessageState(state)}'")
    for clause, value in (("control_id = ?", control_id), ("received_at >= ?", None if since is None else ts(since)),
                          ("received_at < ?", None if until is None else ts(until)),
                          ("message_type = ?", message_type), ("sending_application = ?", sending_application)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    for digest in digests:
        clauses.append("key IN (SELECT message_key FROM message_identifiers WHERE digest = ?)")
        params.append(digest)
    if before is not None:
        # The first clause alone bounds the index range, so a deep page starts at its cursor
        # instead of walking down from the newest row (the OR below is not sargable by itself).
        clauses.append("received_at <= ? AND (received_at < ? OR (received_at = ? AND key < ?))")
        params += [ts(before[0]), ts(before[0]), ts(before[0]), before[1]]
    where = " AND ".join(clauses) or "1 = 1"
    found = yield (f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} "
                   "ORDER BY received_at DESC, key DESC LIMIT ?", (*params, limit))
    return [message_record(codec, row) for row in found.rows]


def dmp_entry(document_id: str) -> Operation[DmpEntry | None]:
    rows = (yield "SELECT document_id, entry_uuid, version, message_key FROM dmp_entries WHERE document_id = ?",
            (document_id,)).rows
    return DmpEntry(rows[0][0], rows[0][1], int(rows[0][2]), rows[0][3]) if rows else None


# ------------------------------------------------------------------- rows

def message_record(codec: Codec, row: tuple) -> MessageRecord:
    key, raw, channel, app, facility, control_id, message_type, state, received, updated, ack, detail = row
    return MessageRecord(
        key=key, raw=codec.open_bytes(raw, aad("messages", key, "raw")) if raw else b"", channel=channel,
        sending_application=app, sending_facility=facility, control_id=control_id, message_type=message_type,
        state=MessageState(state), received_at=moment(received), updated_at=moment(updated), ack_code=ack,
        detail=codec.open_text(detail, aad("messages", key, "detail")))


def journal_event(codec: Codec, row: tuple) -> JournalEvent:
    message_key, at, step, state, detail, document_id, destination = row
    return JournalEvent(message_key=message_key, at=moment(at), step=step, state=state,
                        detail=codec.open_text(detail, aad("events", message_key, stamp(at), step,
                                                           document_id, destination)),
                        document_id=document_id, destination=destination)


def outcome(codec: Codec, row: tuple) -> Outcome:
    doc, dest, status, detail, at, message_key = row
    return Outcome(document_id=doc, destination=dest, status=OutcomeStatus(status),
                   detail=codec.open_text(detail, aad("outcomes", doc, dest, "detail")),
                   at=moment(at), message_key=message_key)
