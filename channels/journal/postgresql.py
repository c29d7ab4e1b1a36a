"""PostgreSQL journal: every message received and every step taken, in a database several servers share.

URL form: libpq's, ``postgresql://user@db.example:5432/liaison`` (``postgres://`` too), with libpq's
query parameters (``sslmode=verify-full``, ``options=-csearch_path%3Dliaison``...) and two of this
adapter's: ``pool_max`` (connections per process, default 8) and ``pool_min`` (default 1). The
password is best left out of the URL: libpq reads ``PGPASSWORD`` or ``~/.pgpass``. It is never logged.

- The same statements as the SQLite adapter (``operations.py``, ``stays.py``, ``documents.py``,
  ``consents.py``; ``sql.py`` says how), so the same rules: idempotency on (MSH-3, MSH-10), latest
  outcome wins, one claim per (document, destination). The same encryption at rest: what SQLite
  seals is sealed here with the same codec, key and associated data, in ``bytea`` columns (in clear
  as UTF-8 when there is no key); the identifiers SQLite keeps clear for search are clear here too.
- Several servers: a claim is one ``INSERT ... ON CONFLICT ... DO UPDATE ... WHERE``; a second
  claimer's statement waits for the first one's transaction and then sees its claim, so one mail is
  sent, never two. A message resent to another listener meets the first copy's unique key the same
  way. Migrations at open run under a transaction-level advisory lock.
- Durable on return: a write returns once its transaction committed (with the server's
  ``synchronous_commit``, on by default). Group commit (``pg_writer.py``) shares transactions between
  concurrent writers, on one pool connection at a time; reads use the pool's other connections
  (autocommit, time zone UTC).
- Schema: in the first schema of the connection's ``search_path``, created and upgraded at open by
  the versioned migrations of ``schema.py`` (``migrate=False``: only by ``liaison journal migrate``).
- ``psycopg.OperationalError`` (server down or restarting, connection lost, disk full, pool
  timeout) becomes ``TransientError("journal unavailable: ...")``; other errors propagate.
"""

from __future__ import annotations

import functools
import itertools
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from channels.cipher import Codec, make_codec
from channels.journal import consents as consent_sql
from channels.journal import documents as document_sql
from channels.journal import operations as ops
from channels.journal import stays as stay_sql
from channels.journal.pg_writer import UNAVAILABLE, PgGroupCommit
from channels.journal.schema import POSTGRESQL, codec_check, migration
from channels.journal.sql import Operation, Result, Statement, SystemClock, ts
from channels.journal.writer import unavailable
from router.config_values import redact_url
from router.errors import ConfigError, TransientError
from router.ports import (Clock, ContentBinding, DmpEntry, JournalEvent, MessageRecord, MessageState, Outcome,
                          PatientConsent, ReceivedMessage, RenderedDocument, Stay)

log = structlog.get_logger(__name__)
T = TypeVar("T")

SCHEMES = ("postgresql", "postgres")
_OWN_PARAMETERS = {"pool_min", "pool_max"}
# One advisory lock per schema for migrations: (a constant class, the schema's name hashed).
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(1279870290, hashtext(coalesce(current_schema(), '')))"


def from_url(url: str, key: bytes | None = None, **options: Any) -> PostgresJournal:
    """Build a journal from a ``postgresql://`` URL; ``pool_min`` and ``pool_max`` are read from its query."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError("engine.journal", f"expected postgresql://user@host/database, got {redact_url(url)!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {name: value for name, value in query if name in _OWN_PARAMETERS}
    for name, value in own.items():
        if not value.isdigit() or int(value) < 1:
            raise ConfigError("engine.journal", f"{name} must be a positive integer, got {value!r}")
    libpq = urlunsplit(parts._replace(query=urlencode([(n, v) for n, v in query if n not in _OWN_PARAMETERS])))
    try:
        conninfo_to_dict(libpq)
    except psycopg.ProgrammingError as exc:
        raise ConfigError("engine.journal", f"not a valid PostgreSQL URL ({redact_url(url)}): {exc}") from None
    pool = {f"{name[5:]}_size": int(value) for name, value in own.items()}
    return PostgresJournal(libpq, key=key, **pool, **options)


class ByteaCodec:
    """The journal's codec for ``bytea`` columns: without a key, text is stored as its UTF-8 bytes."""

    def __init__(self, codec: Codec):
        self._codec = codec
        self.name = codec.name
        self.encrypted = codec.encrypted

    def seal_bytes(self, data: bytes, where: bytes) -> bytes:
        return self._codec.seal_bytes(data, where)

    def open_bytes(self, stored: bytes, where: bytes) -> bytes:
        return self._codec.open_bytes(bytes(stored), where)

    def seal_text(self, text: str, where: bytes) -> bytes:
        sealed = self._codec.seal_text(text, where)
        return sealed.encode("utf-8") if isinstance(sealed, str) else sealed

    def open_text(self, stored: bytes, where: bytes) -> str:
        if self.encrypted:
            return self._codec.open_text(bytes(stored), where)
        return bytes(stored).decode("utf-8")


class PostgresJournal:
    """The Journal port on a PostgreSQL database: group-committed writes, pooled reads."""

    def __init__(self, conninfo: str, *, key: bytes | None = None, clock: Clock | None = None,
                 migrate: bool = True, min_size: int = 1, max_size: int = 8, max_batch: int = 512,
                 connect_timeout: float = 10.0, ping_after: float = 2.0):
        self._conninfo = conninfo
        self._codec = ByteaCodec(make_codec(key))
        self._clock = clock or SystemClock()
        self._migrate = migrate
        self._min_size, self._max_size = min_size, max(min_size, max_size)
        self._max_batch = max_batch
        self._connect_timeout = connect_timeout
        self._ping_after = ping_after           # a connection idle this long is checked before it is used
        self._last_use: weakref.WeakKeyDictionary[psycopg.AsyncConnection, float] = weakref.WeakKeyDictionary()
        self._pool: AsyncConnectionPool | None = None
        self._writer: PgGroupCommit | None = None
        self._last_writer: PgGroupCommit | None = None      # keeps the counters after close

    # -------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Create or check the schema and the key (one connection), then open the pool and the writer."""
        if self._writer is not None:
            return
        await self._setup()
        pool = AsyncConnectionPool(self._conninfo, min_size=self._min_size, max_size=self._max_size, open=False,
                                   kwargs=self._connect_kwargs(), configure=_configure, check=self._check,
                                   timeout=self._connect_timeout, name="liaison-journal")
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
        except UNAVAILABLE as exc:
            await pool.close()
            raise unavailable(exc) from exc
        self._pool = pool
        self._writer = self._last_writer = PgGroupCommit(self._transaction, max_batch=self._max_batch)
        self._writer.start()
        where = conninfo_to_dict(self._conninfo)
        log.info("journal.open", backend="postgresql", host=where.get("host", ""), port=where.get("port", ""),
                 database=where.get("dbname", ""), encrypted=self._codec.encrypted)

    async def close(self) -> None:
        """Commit the writes already queued, then close the pool."""
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.stop()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> PostgresJournal:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def migrate(self) -> tuple[int, int]:
        """Create or upgrade the schema without opening the journal; (version found, version now)."""
        return await self._once(lambda: migration(POSTGRESQL, allowed=True))

    def stats(self) -> dict[str, int]:
        """Write counters: operations committed and the transactions they took."""
        writer = self._last_writer
        return {"operations": writer.operations if writer else 0, "commits": writer.commits if writer else 0}

    async def _setup(self) -> None:
        def steps() -> Operation[None]:
            yield from migration(POSTGRESQL, allowed=self._migrate)
            yield from codec_check(self._codec)

        await self._once(steps)

    async def _once(self, make: Callable[[], Operation[T]]) -> T:
        """Run one operation on a connection of its own, in a transaction under the migration lock."""
        try:
            async with await psycopg.AsyncConnection.connect(self._conninfo, **self._connect_kwargs()) as conn:
                async with conn.transaction():
                    await conn.execute(_MIGRATION_LOCK)
                    return await _run(conn, make())
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    async def _check(self, conn: psycopg.AsyncConnection) -> None:
        """Before lending a connection idle for a while, make sure the server still has it (it may have restarted).

        A busy connection is not checked: that would cost a round trip per batch. If the server
        dropped it meanwhile, that batch fails (``TransientError``) and the pool replaces it.
        """
        now, last = time.monotonic(), self._last_use.get(conn)
        self._last_use[conn] = now
        if last is not None and now - last >= self._ping_after:
            await AsyncConnectionPool.check_connection(conn)

    def _connect_kwargs(self) -> dict[str, Any]:
        given = conninfo_to_dict(self._conninfo)
        kwargs: dict[str, Any] = {"autocommit": True, "fallback_application_name": "liaison"}
        if "connect_timeout" not in given:
            kwargs["connect_timeout"] = max(1, round(self._connect_timeout))
        return kwargs

    # ----------------------------------------------------------------- writes

    async def record_received(self, message: ReceivedMessage) -> tuple[str, bool]:
        """Store the raw message; on a resend return the first key, ``False``, and log a "duplicate" event."""
        return await self._write(lambda: ops.record_received(self._codec, message, ts(self._clock.now())))

    async def set_state(self, key: str, state: MessageState, *, step: str, detail: str = "",
                        ack_code: str | None = None,
                        only_from: frozenset[MessageState] | None = None) -> bool:
        """Move the message to ``state`` (if its state is in ``only_from``, when given); record the step.

        Raise ``KeyError`` if no message has this key.
        """
        at = ts(self._clock.now())
        return await self._write(lambda: ops.set_state(self._codec, key, state, step=step, detail=detail,
                                                       ack_code=ack_code, only_from=only_from, at=at))

    async def add_event(self, event: JournalEvent) -> None:
        await self._write(lambda: ops.add_event(self._codec, event))

    async def record_outcome(self, outcome: Outcome) -> None:
        """Keep the outcome with the latest ``at`` per (document, destination); append every one as an event."""
        await self._write(lambda: ops.record_outcome(self._codec, outcome))

    async def claim(self, document_id: str, destination: str, *, message_key: str,
                    stale_after: timedelta) -> bool:
        now = self._clock.now()
        at, stale = ts(now), ts(now - stale_after)
        return await self._write(lambda: ops.claim(self._codec, document_id, destination, message_key=message_key,
                                                   at=at, stale=stale))

    async def bind_content(self, document_id: str, digest: str, message_key: str) -> ContentBinding:
        at = ts(self._clock.now())
        return await self._write(lambda: ops.bind_content(document_id, digest, message_key, at))

    async def record_stay(self, stay: Stay) -> None:
        """Insert or replace the stay keyed by (facility, encounter); see ``stays.py``."""
        now = ts(self._clock.now())
        await self._write(lambda: stay_sql.upsert(self._codec, stay, now))

    async def mark_stay(self, facility: str, encounter: str, *, letter_sent_at: datetime | None = None,
                        alert_raised_at: datetime | None = None, clear_alert: bool = False) -> Stay | None:
        now = ts(self._clock.now())
        return await self._write(lambda: stay_sql.mark(
            self._codec, facility, encounter, now, letter_sent_at=letter_sent_at,
            alert_raised_at=alert_raised_at, clear_alert=clear_alert), alone=True)

    async def record_dmp_consent(self, consent: PatientConsent) -> bool:
        """Keep the patient's consent unless a later message gave one; stamp their stays (``consents.py``)."""
        now = ts(self._clock.now())
        return await self._write(lambda: consent_sql.upsert(self._codec, consent, now), alone=True)

    async def record_document(self, document: RenderedDocument) -> None:
        """Record a rendered document under (facility, source id); see ``documents.py``."""
        now = ts(self._clock.now())
        await self._write(lambda: document_sql.upsert(self._codec, document, now))

    async def record_dmp_entry(self, entry: DmpEntry) -> None:
        now = ts(self._clock.now())
        await self._write(lambda: ops.record_dmp_entry(entry, now))

    async def _write(self, operation: Callable[[], Operation[T]], *, alone: bool = False) -> T:
        if self._writer is None:
            raise _closed()
        return await self._writer.submit(operation, alone=alone)

    async def _transaction(self, writes: list[tuple[Callable[[], Operation[Any]], bool]]) -> list[Any]:
        """Run a batch of new operations in one transaction on one pool connection (for ``PgGroupCommit``).

        In pipeline mode, the operations of a batch advance together: the first statement of each
        goes out in one round trip, then the second of those that have one, and so on, instead of
        one round trip per statement. That is the same as running them one after the other because
        their reads see only what does not change once written (a message's first copy, a content
        binding, that a row exists) and each of their writes is one statement; an operation that
        reads rows it then writes (``mark_stay``, ``record_dmp_consent``) is submitted ``alone``
        and runs by itself, in its place in the batch.
        """
        pool = self._pool
        if pool is None:
            raise _closed()
        results: list[Any] = []
        async with pool.connection() as conn, conn.pipeline() as pipeline, conn.transaction():
            for alone, group in itertools.groupby(writes, key=lambda write: write[1]):
                makes = [make for make, _ in group]
                for together in ([[make] for make in makes] if alone else [makes]):
                    results += await _advance_together(conn, pipeline, [make() for make in together])
        return results

    # ------------------------------------------------------------------ reads

    async def message(self, key: str) -> MessageRecord | None:
        return await self._query(ops.message(self._codec, key))

    async def events(self, key: str) -> list[JournalEvent]:
        """The message's timeline, oldest first (ties in insertion order)."""
        return await self._query(ops.events(self._codec, key))

    async def document_events(self, document_id: str) -> list[JournalEvent]:
        """Every event about one document (its outcome history included), oldest first."""
        return await self._query(ops.document_events(self._codec, document_id))

    async def outcomes(self, document_id: str) -> list[Outcome]:
        """The current outcome per destination of one document, by destination."""
        return await self._query(ops.outcomes(self._codec, document_id))

    async def stale_claims(self, older_than: datetime, limit: int = 100) -> list[Outcome]:
        return await self._query(ops.stale_claims(self._codec, older_than, limit))

    async def search(self, *, state: MessageState | None = None, control_id: str | None = None, limit: int = 100,
                     since: datetime | None = None, message_type: str | None = None,
                     sending_application: str | None = None) -> list[MessageRecord]:
        """Messages matching every filter given, newest first (by ``received_at``)."""
        return await self._query(ops.search(self._codec, state=state, control_id=control_id, limit=limit,
                                            since=since, message_type=message_type,
                                            sending_application=sending_application))

    async def stay(self, facility: str, encounter: str) -> Stay | None:
        return await self._query(stay_sql.stay(self._codec, facility, encounter))

    async def stays_due(self, now: datetime, limit: int = 100) -> list[Stay]:
        return await self._query(stay_sql.due(self._codec, now, limit))

    async def dmp_consent(self, facility: str, ipp: str) -> PatientConsent | None:
        return await self._query(consent_sql.consent_of(self._codec, facility, ipp))

    async def rendered_document(self, facility: str, source_id: str) -> RenderedDocument | None:
        return await self._query(document_sql.rendered(self._codec, facility, source_id))

    async def dmp_entry(self, document_id: str) -> DmpEntry | None:
        return await self._query(ops.dmp_entry(document_id))

    async def _query(self, operation: Operation[T]) -> T:
        pool = self._pool
        if pool is None:
            raise _closed()
        try:
            async with pool.connection() as conn:
                return await _run(conn, operation)
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc


async def _run(conn: psycopg.AsyncConnection, operation: Operation[T]) -> T:
    """Run an operation on a psycopg connection, one statement after the other."""
    try:
        sql, params = next(operation)
        while True:
            cursor = await conn.execute(_placeholders(sql) if params else sql, params or None)
            sql, params = operation.send(await _result(cursor))
    except StopIteration as done:
        return done.value


async def _advance_together(conn: psycopg.AsyncConnection, pipeline: psycopg.AsyncPipeline,
                            operations: list[Operation[Any]]) -> list[Any]:
    """Run operations side by side in pipeline mode: one round trip per step, not per statement."""
    results: list[Any] = [None] * len(operations)
    pending: list[tuple[int, Statement]] = []

    def advance(index: int, result: Result | None) -> None:
        try:
            statement = operations[index].send(result)      # send(None) starts a generator
        except StopIteration as done:
            results[index] = done.value
        else:
            pending.append((index, statement))

    for index in range(len(operations)):
        advance(index, None)
    while pending:
        sent, pending = pending, []
        cursors = []
        for _, (sql, params) in sent:
            cursor = conn.cursor()
            await cursor.execute(_placeholders(sql) if params else sql, params or None)
            cursors.append(cursor)
        await pipeline.sync()
        for (index, _), cursor in zip(sent, cursors):
            advance(index, await _result(cursor))
    return results


async def _result(cursor: psycopg.AsyncCursor) -> Result:
    return Result(cursor.rowcount, await cursor.fetchall() if cursor.description else [])


@functools.lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    """The journal's ``?`` placeholders as psycopg's ``%s`` (its statements hold no ``?`` in literals)."""
    return sql.replace("%", "%%").replace("?", "%s")


async def _configure(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


def _closed() -> TransientError:
    return TransientError("journal unavailable: not open")
