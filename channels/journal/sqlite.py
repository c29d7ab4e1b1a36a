"""SQLite journal: every message received and every step taken, in one local file.

URL form: ``sqlite:///var/lib/liaison/journal.sqlite`` (the URL path is the
absolute file path) or ``sqlite:journal.sqlite`` (relative to the working
directory). The file is created with mode 0600, the schema on ``open()``;
with ``read_only=True`` (the reading commands, ``liaison journal``) nothing is
created or written: a journal that does not exist is a ConfigError naming it.

- Received bytes are stored unaltered; identifiers, states and timestamps are
  clear columns for search; bytes and ``detail`` texts are encrypted with
  AES-256-GCM when a 32-byte ``key`` is given (``cipher.py``). Without a key
  everything is stored in clear: fine for tests, not for patient data - the
  demo and the sample configuration pass a key.
- Idempotent on (sending application MSH-3, control id MSH-10), as the port
  says. MSH-4 (sending facility) is stored but not part of the key: HL7 makes
  MSH-10 unique per sending system, and senders fill MSH-4 less consistently
  than MSH-3 (a resend through another interface engine may change it), so
  including it would let a resent message through as new. Facilities sharing
  one application name with separate MSH-10 counters need distinct MSH-3
  values. A resend returns the first key and adds a "duplicate" event to it.
- Durable on return: WAL with ``synchronous=FULL``, so a row is fsynced before
  ``record_received``/``set_state`` return and the ACK that follows holds even
  across a power cut. Group commit (``writer.py``) shares that fsync between
  concurrent writers. Reads use a second connection on their own thread.
- Keys are ULIDs (``keys.py``): sortable by arrival.
- ``sqlite3.OperationalError`` (disk full, locked, I/O) becomes
  ``TransientError("journal unavailable: ...")``; other errors propagate.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from channels.cipher import aad, make_codec
from channels.journal import consents as consent_sql
from channels.journal import documents as document_sql
from channels.journal import stays as stay_sql
from channels.journal.keys import new_key
from channels.journal.schema import LATEST, check_codec, migrate, ts, verify_codec
from channels.journal.writer import GroupCommitWriter, unavailable
from router.errors import ConfigError, TransientError
from router.ports import (Clock, ContentBinding, DmpEntry, RenderedDocument, JournalEvent, MessageRecord, MessageState,
                          Outcome, OutcomeStatus, PatientConsent, ReceivedMessage, Stay)

log = structlog.get_logger(__name__)

_MESSAGE_COLUMNS = ("key, raw, channel, sending_application, sending_facility, control_id, "
                    "message_type, state, received_at, updated_at, ack_code, detail")
_EVENT_COLUMNS = "message_key, at, step, state, detail, document_id, destination"


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def from_url(url: str, key: bytes | None = None, **options: Any) -> SqliteJournal:
    """Build a journal from ``sqlite:///absolute/path`` or ``sqlite:relative/path``."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or not parts.path or parts.query:
        raise ConfigError("engine.journal", f"expected sqlite:///path/to/journal.sqlite, got {url!r}")
    path = parts.path
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return SqliteJournal(path, key=key, **options)


class SqliteJournal:
    """The Journal port on one SQLite file: group-committed writes, threaded reads."""

    def __init__(self, path: str | os.PathLike[str], *, key: bytes | None = None, clock: Clock | None = None,
                 busy_timeout: float = 5.0, max_batch: int = 512, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._codec = make_codec(key)
        self._clock = clock or _SystemClock()
        self._busy_timeout = busy_timeout
        self._max_batch = max_batch
        self._writer: GroupCommitWriter | None = None
        self._last_writer: GroupCommitWriter | None = None     # keeps the counters after close
        self._reader: sqlite3.Connection | None = None
        self._read_thread: ThreadPoolExecutor | None = None

    # -------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Create the file (0600) and schema if needed, check the key, start the writer.

        Read-only: open an existing journal for reading and check the key; create and write nothing.
        """
        if self._writer is not None or self._reader is not None:
            return
        if self.read_only:
            await self._open_read_only()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        writer = GroupCommitWriter(self._connect, self._setup, max_batch=self._max_batch)
        try:
            await writer.start()
        except sqlite3.OperationalError as exc:
            raise unavailable(exc) from exc
        self._read_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-read")
        try:
            self._reader = await self._read(self._open_reader)
        except BaseException:
            await writer.stop()
            raise
        self._writer = self._last_writer = writer
        log.info("journal.open", path=str(self.path), encrypted=self._codec.encrypted)

    async def _open_read_only(self) -> None:
        if not self.path.is_file():
            problem = "is a directory" if self.path.is_dir() else "does not exist"
            raise ConfigError("engine.journal", f"{self.path} {problem}; expected an existing journal (reading "
                                                "commands never create one: check the path, or give -c FILE)")
        self._read_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-read")
        try:
            self._reader = await self._read(self._open_read_only_reader)
        except BaseException:
            self._read_thread.shutdown(wait=False)
            self._read_thread = None
            raise
        log.info("journal.open", path=str(self.path), encrypted=self._codec.encrypted, read_only=True)

    def _open_read_only_reader(self) -> sqlite3.Connection:
        """A ``mode=ro`` connection to a journal whose schema and key this Liaison can read."""
        not_journal = f"{self.path} is not a Liaison journal"
        try:
            reader = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self._busy_timeout,
                                     isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ConfigError("engine.journal", f"{self.path} cannot be opened: {exc}") from exc
        try:
            reader.execute("PRAGMA query_only = ON")
            version = reader.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            settings = dict(reader.execute("SELECT name, value FROM settings"))
        except sqlite3.OperationalError as exc:
            reader.close()
            if "no such table" in str(exc):
                raise ConfigError("engine.journal", f"{not_journal} (no journal schema)") from exc
            raise unavailable(exc) from exc
        except sqlite3.DatabaseError as exc:
            reader.close()
            raise ConfigError("engine.journal", f"{not_journal} ({exc})") from exc
        try:
            if version > LATEST:
                raise ConfigError("engine.journal", f"journal schema v{version} is newer than this Liaison "
                                                    f"(knows up to v{LATEST}): upgrade Liaison")
            verify_codec(settings, self._codec)
        except BaseException:
            reader.close()
            raise
        return reader

    async def close(self) -> None:
        """Commit the writes already queued, then close both connections."""
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.stop()
        if self._reader is not None:
            await self._read(self._reader.close)
            self._reader = None
        if self._read_thread is not None:
            self._read_thread.shutdown(wait=False)
            self._read_thread = None

    async def __aenter__(self) -> SqliteJournal:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def stats(self) -> dict[str, int]:
        """Write counters: operations committed and the transactions they took."""
        writer = self._last_writer
        return {"operations": writer.operations if writer else 0, "commits": writer.commits if writer else 0}

    def _connect(self, check_same_thread: bool = True) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                               check_same_thread=check_same_thread)

    def _open_reader(self) -> sqlite3.Connection:
        reader = self._connect(check_same_thread=False)     # used only on the read thread
        reader.execute("PRAGMA query_only = ON")
        return reader

    def _setup(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            log.warning("journal.no_wal", path=str(self.path), journal_mode=mode)
        conn.execute("PRAGMA synchronous = FULL")
        migrate(conn)
        check_codec(conn, self._codec)

    # ----------------------------------------------------------------- writes

    async def record_received(self, message: ReceivedMessage) -> tuple[str, bool]:
        """Store the raw message; on a resend return the first key, ``False``, and log a "duplicate" event."""
        return await self._write(lambda conn: self._insert_message(conn, message, ts(self._clock.now())))

    async def set_state(self, key: str, state: MessageState, *, step: str, detail: str = "",
                        ack_code: str | None = None,
                        only_from: frozenset[MessageState] | None = None) -> bool:
        """Move the message to ``state`` (if its state is in ``only_from``, when given); record the step.

        Raise ``KeyError`` if no message has this key.
        """
        at = ts(self._clock.now())
        allowed = None if only_from is None else [str(s) for s in only_from]

        def update(conn: sqlite3.Connection) -> bool:
            sealed = self._codec.seal_text(detail, aad("messages", key, "detail"))
            sql = ("UPDATE messages SET state = ?, detail = ?, updated_at = ?, ack_code = coalesce(?, ack_code) "
                   "WHERE key = ?")
            params: list = [str(state), sealed, at, ack_code, key]
            if allowed is not None:
                sql += f" AND state IN ({', '.join('?' * len(allowed))})"
                params += allowed
            moved = conn.execute(sql, params).rowcount == 1
            if not moved and (allowed is None or conn.execute(
                    "SELECT 1 FROM messages WHERE key = ?", (key,)).fetchone() is None):
                raise KeyError(f"no message {key!r} in the journal")
            self._insert_event(conn, key, at, step, str(state) if moved else f"{state} (not applied)", detail)
            return moved

        return await self._write(update)

    async def add_event(self, event: JournalEvent) -> None:
        await self._write(lambda conn: self._insert_event(
            conn, event.message_key, ts(event.at), event.step, event.state, event.detail,
            event.document_id, event.destination))

    async def record_outcome(self, outcome: Outcome) -> None:
        """Keep the outcome with the latest ``at`` per (document, destination); append every one as an event."""
        at = ts(outcome.at)

        def upsert(conn: sqlite3.Connection) -> None:
            sealed = self._codec.seal_text(outcome.detail, aad("outcomes", outcome.document_id,
                                                               outcome.destination, "detail"))
            conn.execute(
                "INSERT INTO outcomes (document_id, destination, status, detail, at, message_key) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (document_id, destination) DO UPDATE SET "
                "status = excluded.status, detail = excluded.detail, at = excluded.at, "
                "message_key = excluded.message_key WHERE excluded.at >= outcomes.at",
                (outcome.document_id, outcome.destination, str(outcome.status), sealed, at, outcome.message_key))
            self._insert_event(conn, outcome.message_key, at, "outcome", str(outcome.status), outcome.detail,
                               outcome.document_id, outcome.destination)

        await self._write(upsert)

    async def claim(self, document_id: str, destination: str, *, message_key: str,
                    stale_after: timedelta) -> bool:
        now = self._clock.now()
        at, stale = ts(now), ts(now - stale_after)

        def take(conn: sqlite3.Connection) -> bool:
            sealed = self._codec.seal_text("claimed for sending", aad("outcomes", document_id, destination, "detail"))
            cursor = conn.execute(
                "INSERT INTO outcomes (document_id, destination, status, detail, at, message_key) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (document_id, destination) DO UPDATE SET "
                "status = excluded.status, detail = excluded.detail, at = excluded.at, "
                "message_key = excluded.message_key "
                "WHERE outcomes.status = ? OR (outcomes.status = ? AND outcomes.at < ?) "
                "OR (outcomes.status IN (?, ?) AND outcomes.message_key <> excluded.message_key)",
                (document_id, destination, str(OutcomeStatus.SENDING), sealed, at, message_key,
                 str(OutcomeStatus.RETRYING), str(OutcomeStatus.SENDING), stale,
                 str(OutcomeStatus.FAILED), str(OutcomeStatus.REFUSED)))
            return cursor.rowcount == 1

        return await self._write(take)

    async def renew_claims(self, document_id: str, destinations: Sequence[str], *, message_key: str) -> int:
        """Stamp now on the message's SENDING claims (now read here, before queuing: a final outcome
        written after this renewal always carries a later time, so the renewal never hides it)."""
        if not destinations:
            return 0
        at = ts(self._clock.now())
        marks = ", ".join("?" * len(destinations))
        return await self._write(lambda conn: conn.execute(
            f"UPDATE outcomes SET at = ? WHERE document_id = ? AND status = ? AND message_key = ? "
            f"AND destination IN ({marks})",
            (at, document_id, str(OutcomeStatus.SENDING), message_key, *destinations)).rowcount)

    async def record_stay(self, stay: Stay) -> None:
        """Insert or replace the stay keyed by (facility, encounter); see ``stays.py``."""
        now = ts(self._clock.now())
        await self._write(lambda conn: stay_sql.upsert(conn, self._codec, stay, now))

    async def mark_stay(self, facility: str, encounter: str, *, letter_sent_at: datetime | None = None,
                        alert_raised_at: datetime | None = None, clear_alert: bool = False) -> Stay | None:
        now = ts(self._clock.now())
        return await self._write(lambda conn: stay_sql.mark(
            conn, self._codec, facility, encounter, now, letter_sent_at=letter_sent_at,
            alert_raised_at=alert_raised_at, clear_alert=clear_alert))

    async def record_dmp_consent(self, consent: PatientConsent) -> bool:
        """Keep the patient's consent unless a later message gave one; stamp their stays (``consents.py``)."""
        now = ts(self._clock.now())
        return await self._write(lambda conn: consent_sql.upsert(conn, self._codec, consent, now))

    async def dmp_consent(self, facility: str, ipp: str) -> PatientConsent | None:
        rows = await self._query(consent_sql.select_one(), (facility, ipp))
        return consent_sql.from_row(self._codec, rows[0]) if rows else None

    async def record_document(self, document: RenderedDocument) -> None:
        """Record a rendered document under (facility, source id); see ``documents.py``."""
        now = ts(self._clock.now())
        await self._write(lambda conn: document_sql.upsert(conn, self._codec, document, now))

    async def rendered_document(self, facility: str, source_id: str) -> RenderedDocument | None:
        rows = await self._query(document_sql.select_one(), (facility, source_id))
        return document_sql.from_row(self._codec, rows[0]) if rows else None

    async def record_dmp_entry(self, entry: DmpEntry) -> None:
        now = ts(self._clock.now())
        await self._write(lambda conn: conn.execute(
            "INSERT INTO dmp_entries (document_id, entry_uuid, version, message_key, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (document_id) DO UPDATE SET entry_uuid = excluded.entry_uuid, "
            "version = excluded.version, message_key = excluded.message_key, updated_at = excluded.updated_at",
            (entry.document_id, entry.entry_uuid, entry.version, entry.message_key, now)))

    async def dmp_entry(self, document_id: str) -> DmpEntry | None:
        rows = await self._query("SELECT document_id, entry_uuid, version, message_key FROM dmp_entries "
                                 "WHERE document_id = ?", (document_id,))
        return DmpEntry(rows[0][0], rows[0][1], int(rows[0][2]), rows[0][3]) if rows else None

    async def _write(self, operation: Any) -> Any:
        if self._writer is None:
            raise _closed() if not self.read_only else TransientError(f"journal {self.path} is open read-only")
        return await self._writer.submit(operation)

    def _insert_message(self, conn: sqlite3.Connection, message: ReceivedMessage, now: str) -> tuple[str, bool]:
        key = new_key()
        received_at = ts(message.received_at)
        cursor = conn.execute(
            f"INSERT INTO messages ({_MESSAGE_COLUMNS}, peer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?) "
            "ON CONFLICT (sending_application, control_id) DO NOTHING",
            (key, self._codec.seal_bytes(message.raw, aad("messages", key, "raw")), message.channel,
             message.sending_application, message.sending_facility, message.control_id, message.message_type,
             str(MessageState.RECEIVED), received_at, now,
             self._codec.seal_text("", aad("messages", key, "detail")), message.peer))
        origin = f"{message.channel} from {message.peer}" if message.peer else message.channel
        if cursor.rowcount == 1:
            self._insert_event(conn, key, received_at, "received", str(MessageState.RECEIVED), origin)
            return key, True
        first_key, stored = conn.execute(
            "SELECT key, raw FROM messages WHERE sending_application = ? AND control_id = ?",
            (message.sending_application, message.control_id)).fetchone()
        same = self._codec.open_bytes(stored, aad("messages", first_key, "raw")) == bytes(message.raw)
        content = "identical bytes" if same else f"different bytes ({len(message.raw)} bytes), first copy kept"
        self._insert_event(conn, first_key, now, "duplicate", "duplicate", f"resent on {origin}: {content}")
        return first_key, False

    def _insert_event(self, conn: sqlite3.Connection, message_key: str, at: str, step: str, state: str,
                      detail: str, document_id: str = "", destination: str = "") -> None:
        sealed = self._codec.seal_text(detail, aad("events", message_key, at, step, document_id, destination))
        conn.execute(f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (message_key, at, step, state, sealed, document_id, destination))

    # ------------------------------------------------------------------ reads

    async def message(self, key: str) -> MessageRecord | None:
        rows = await self._query(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE key = ?", (key,))
        return self._message_record(rows[0]) if rows else None

    async def events(self, key: str) -> list[JournalEvent]:
        """The message's timeline, oldest first (ties in insertion order)."""
        rows = await self._query(f"SELECT {_EVENT_COLUMNS} FROM events WHERE message_key = ? ORDER BY at, id", (key,))
        return [self._event(row) for row in rows]

    async def document_events(self, document_id: str) -> list[JournalEvent]:
        """Every event about one document (its outcome history included), oldest first."""
        rows = await self._query(f"SELECT {_EVENT_COLUMNS} FROM events WHERE document_id = ? AND document_id <> '' "
                                 "ORDER BY at, id", (document_id,))
        return [self._event(row) for row in rows]

    async def outcomes(self, document_id: str) -> list[Outcome]:
        """The current outcome per destination of one document, by destination."""
        rows = await self._query("SELECT document_id, destination, status, detail, at, message_key FROM outcomes "
                                 "WHERE document_id = ? ORDER BY destination", (document_id,))
        return [self._outcome(row) for row in rows]

    def _outcome(self, row: tuple) -> Outcome:
        doc, dest, status, detail, at, message_key = row
        return Outcome(document_id=doc, destination=dest, status=OutcomeStatus(status),
                       detail=self._codec.open_text(detail, aad("outcomes", doc, dest, "detail")),
                       at=datetime.fromisoformat(at), message_key=message_key)

    async def stale_claims(self, older_than: datetime, limit: int = 100) -> list[Outcome]:
        rows = await self._query("SELECT document_id, destination, status, detail, at, message_key FROM outcomes "
                                 "WHERE status = ? AND at < ? ORDER BY at LIMIT ?",
                                 (str(OutcomeStatus.SENDING), ts(older_than), limit))
        return [self._outcome(row) for row in rows]

    async def bind_content(self, document_id: str, digest: str, message_key: str) -> ContentBinding:
        at = ts(self._clock.now())

        def bind(conn: sqlite3.Connection) -> tuple:
            conn.execute("INSERT INTO document_contents (document_id, digest, message_key, at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (document_id) DO NOTHING", (document_id, digest, message_key, at))
            return conn.execute("SELECT document_id, digest, message_key, at FROM document_contents "
                                "WHERE document_id = ?", (document_id,)).fetchone()

        doc, bound, key, when = await self._write(bind)
        return ContentBinding(document_id=doc, digest=bound, message_key=key, at=datetime.fromisoformat(when))

    async def search(self, *, state: MessageState | None = None, control_id: str | None = None, limit: int = 100,
                     since: datetime | None = None, until: datetime | None = None, message_type: str | None = None,
                     sending_application: str | None = None,
                     before: tuple[datetime, str] | None = None) -> list[MessageRecord]:
        """Messages matching every filter given, newest first (by ``received_at``, then key).

        ``since`` is inclusive, ``until`` exclusive. ``before`` is a keyset cursor, the
        (``received_at``, ``key``) of the last row of the previous page: only rows after it
        in this order are returned, so a page costs the same however deep it is.
        """
        filters = {"state = ?": None if state is None else str(state), "control_id = ?": control_id,
                   "received_at >= ?": None if since is None else ts(since),
                   "received_at < ?": None if until is None else ts(until), "message_type = ?": message_type,
                   "sending_application = ?": sending_application}
        used = {clause: value for clause, value in filters.items() if value is not None}
        params: list = list(used.values())
        clauses = list(used)
        if before is not None:
            clauses.append("(received_at < ? OR (received_at = ? AND key < ?))")
            params += [ts(before[0]), ts(before[0]), before[1]]
        where = " AND ".join(clauses) or "1"
        rows = await self._query(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {where} "
                                 "ORDER BY received_at DESC, key DESC LIMIT ?", (*params, limit))
        return [self._message_record(row) for row in rows]

    async def stay(self, facility: str, encounter: str) -> Stay | None:
        rows = await self._query(stay_sql.select_one(), (facility, encounter))
        return stay_sql.from_row(self._codec, rows[0]) if rows else None

    async def stays_due(self, now: datetime, limit: int = 100) -> list[Stay]:
        rows = await self._query(stay_sql.select_due(), (ts(now), limit))
        return [stay_sql.from_row(self._codec, row) for row in rows]

    async def _query(self, sql: str, params: tuple) -> list[tuple]:
        reader = self._reader
        if reader is None:
            raise _closed()
        try:
            return await self._read(lambda: reader.execute(sql, params).fetchall())
        except sqlite3.OperationalError as exc:
            raise unavailable(exc) from exc

    async def _read(self, function: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._read_thread, function)

    def _message_record(self, row: tuple) -> MessageRecord:
        key, raw, channel, app, facility, control_id, message_type, state, received, updated, ack, detail = row
        return MessageRecord(
            key=key, raw=self._codec.open_bytes(raw, aad("messages", key, "raw")), channel=channel,
            sending_application=app, sending_facility=facility, control_id=control_id, message_type=message_type,
            state=MessageState(state), received_at=datetime.fromisoformat(received),
            updated_at=datetime.fromisoformat(updated), ack_code=ack,
            detail=self._codec.open_text(detail, aad("messages", key, "detail")))

    def _event(self, row: tuple) -> JournalEvent:
        message_key, at, step, state, detail, document_id, destination = row
        return JournalEvent(message_key=message_key, at=datetime.fromisoformat(at), step=step, state=state,
                            detail=self._codec.open_text(detail, aad("events", message_key, at, step,
                                                                     document_id, destination)),
                            document_id=document_id, destination=destination)


def _closed() -> TransientError:
    return TransientError("journal unavailable: not open")
