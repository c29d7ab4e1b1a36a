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
- Text PostgreSQL cannot hold: a NUL in an identifier is stored as U+2400 (``_bound``).
- ``psycopg.OperationalError`` (server down or restarting, connection lost, disk full, pool
  timeout) becomes ``TransientError("journal unavailable: ...")``; other errors propagate.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from channels.cipher import Codec, make_codec
from channels.journal.digests import IdentifierDigests
from channels.journal.pg_writer import UNAVAILABLE, PgGroupCommit, Write
from channels.journal.key_check import codec_check
from channels.journal.schema import POSTGRESQL, migration
from channels.journal.sql import LargeBlob, Operation, Result, Statement, SystemClock
from channels.journal.sql_journal import SqlJournal, not_open
from channels.journal.writer import unavailable
from router.config_values import redact_url
from router.errors import ConfigError
from router.ports import Clock

log = structlog.get_logger(__name__)
T = TypeVar("T")

SCHEMES = ("postgresql", "postgres")
_OWN_PARAMETERS = {"pool_min", "pool_max"}
# One advisory lock per schema for migrations: (a constant class, the schema's name hashed).
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(1279870290, hashtext(coalesce(current_schema(), '')))"
# Leases (the SingleRunner port): a session advisory lock of a class of our own, by the schema and the lease's name.
_LEASE = "SELECT pg_try_advisory_lock(1279870291, hashtext(coalesce(current_schema(), '') || '/' || %s))"


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


class PostgresJournal(SqlJournal):
    """The Journal port on a PostgreSQL database: group-committed writes, pooled reads."""

    def __init__(self, conninfo: str, *, key: bytes | None = None, clock: Clock | None = None,
                 migrate: bool = True, min_size: int = 1, max_size: int = 8, max_batch: int = 512,
                 connect_timeout: float = 10.0, ping_after: float = 2.0):
        self._conninfo = conninfo
        self._codec = ByteaCodec(make_codec(key))
        self._digests = IdentifierDigests(key)
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

    async def migrate(self) -> tuple[int, int]:
        """Create or upgrade the schema without opening the journal; (version found, version now)."""
        return await self._once(lambda: migration(POSTGRESQL, allowed=True))

    async def reclaim_space(self) -> str:
        """Nothing to do here: PostgreSQL's (auto)VACUUM makes deleted rows' space reusable, without shrinking files."""
        return "PostgreSQL: the space of removed rows is reused after autovacuum (VACUUM) passes"

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

    @contextlib.asynccontextmanager
    async def alone(self, name: str) -> AsyncIterator[bool]:
        """The SingleRunner port: a session advisory lock on a connection of its own, held for the block.

        Not a pool connection: the lock is the session's, and a pooled session would keep it after the
        block. When this process dies the server ends the session and the lock is free (``leases.py``).
        """
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._connect_kwargs())
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        try:
            try:
                held = (await (await conn.execute(_LEASE, (name,))).fetchone())[0]
            except UNAVAILABLE as exc:
                raise unavailable(exc) from exc
            yield bool(held)
        finally:
            with contextlib.suppress(*UNAVAILABLE):
                await conn.close()          # the session ends: its advisory locks go with it

    # ------------------------------------------------------------ statements

    async def _write(self, operation: Callable[[], Operation[T]], *, alone: bool = False,
                     large: bool = False) -> T:
        if self._writer is None:
            raise not_open()
        return await self._writer.submit(operation, alone=alone, large=large)

    async def _transaction(self, writes: list[Write]) -> list[Any]:
        """Run a batch of new operations in one transaction on one pool connection (for ``PgGroupCommit``).

        In pipeline mode, the operations of a batch advance together: the first statement of each
        goes out in one round trip, then the second of those that have one, and so on, instead of
        one round trip per statement. That is the same as running them one after the other because
        their reads see only what does not change once written (a message's first copy, a content
        binding, that a row exists) and each of their writes is one statement; an operation that
        reads rows it then writes (``mark_stay``, ``record_dmp_consent``) is submitted ``alone``
        and runs by itself, in its place in the batch.

        A batch carrying a large value (a received message or a CDA over a mebibyte) runs without
        pipeline mode, one statement after the other: in pipeline mode psycopg may stop sending a
        statement of many megabytes half way and wait for its result, while the server waits for
        the rest of it (a 16-35 MiB message hung one time in two; psycopg issue #685).
        """
        pool = self._pool
        if pool is None:
            raise not_open()
        if any(write.large for write in writes):
            async with pool.connection() as conn, conn.transaction():
                return [await _run(conn, write.make()) for write in writes]
        results: list[Any] = []
        async with pool.connection() as conn, conn.pipeline() as pipeline, conn.transaction():
            for alone, group in itertools.groupby(writes, key=lambda write: write.alone):
                makes = [write.make for write in group]
                for together in ([[make] for make in makes] if alone else [makes]):
                    results += await _advance_together(conn, pipeline, [make() for make in together])
        return results

    async def _query(self, operation: Operation[T]) -> T:
        pool = self._pool
        if pool is None:
            raise not_open()
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
            cursor = await conn.execute(*_bound(sql, params))
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
            await cursor.execute(*_bound(sql, params))
            cursors.append(cursor)
        await pipeline.sync()
        for (index, _), cursor in zip(sent, cursors):
            advance(index, await _result(cursor))
    return results


async def _result(cursor: psycopg.AsyncCursor) -> Result:
    return Result(cursor.rowcount, await cursor.fetchall() if cursor.description else [])


def _bound(sql: str, params: Sequence[Any]) -> tuple[str, Sequence[Any] | None]:
    """A statement as psycopg takes it: ``%s`` placeholders, and no NUL in text, which PostgreSQL refuses.

    A NUL can only come from hostile input (an MSH-10 holding one, say); it is bound as U+2400 SYMBOL
    FOR NULL, the same way in every statement, so a resend still meets its first copy. The received
    bytes themselves are ``bytea`` and keep it.
    """
    if not params:
        return sql, None
    return _placeholders(sql), [value.replace("\x00", "\u2400") if type(value) is str and "\x00" in value
                                else value.data if type(value) is LargeBlob else value for value in params]


@functools.lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    """The journal's ``?`` placeholders as psycopg's ``%s`` (its statements hold no ``?`` in literals)."""
    return sql.replace("%", "%%").replace("?", "%s")


async def _configure(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")
