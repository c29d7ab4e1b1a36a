"""How the journal's SQL is written once for SQLite and PostgreSQL: operations that yield statements.

An operation is a generator. It yields ``(sql, params)`` - SQL with ``?`` placeholders, which the
PostgreSQL adapter turns into ``%s`` - and is sent back the :class:`Result` of each statement; what it
returns is the journal method's result. The adapters only run operations: SQLite with :func:`run` on
its writer thread or its reader connection, PostgreSQL on its asyncio connections (``postgresql.py``).
So what is stored, what is sealed under which associated data, and the rules of idempotency and
claims are one text for both (``operations.py``, ``stays.py``, ``documents.py``, ``consents.py``,
``schema.py``).

Values cross both drivers unchanged. Timestamps are bound as fixed-width UTC text (:func:`ts`), which
SQLite keeps as text and PostgreSQL casts to ``timestamptz`` (psycopg sends a ``str`` untyped); what
comes back - text from SQLite, a ``datetime`` from PostgreSQL - goes through :func:`moment`, and
:func:`stamp` gives the text again where it is part of a value's associated data.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")


class Result(NamedTuple):
    """What a statement gave: the rows it returned and the number of rows it changed."""

    rowcount: int
    rows: list[tuple]


Statement = tuple[str, Sequence[Any]]
Operation = Generator[Statement, Result, T]


#: A value this large is written into SQLite in pieces (:class:`LargeBlob`).
LARGE_BLOB_BYTES = 1 << 20
_BLOB_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class LargeBlob:
    """A large bytes value that the statement inserts into ``table.column``, the last column of a new row.

    Why: Python's ``sqlite3`` binds a blob as a copy and SQLite builds the row's record from that copy,
    so a 35 MiB message was held three times while it was journaled. On SQLite, :func:`run` inserts a
    ``zeroblob`` of its size instead (a last column's zeros are not built in memory) and writes ``data``
    into it a megabyte at a time, in the same transaction; PostgreSQL binds ``data`` as it is.
    """

    table: str
    column: str
    data: bytes


def large_blob(table: str, column: str, data: bytes) -> bytes | LargeBlob:
    """``data`` as it is, or as a :class:`LargeBlob` when it is over :data:`LARGE_BLOB_BYTES`."""
    return LargeBlob(table, column, data) if len(data) > LARGE_BLOB_BYTES else data


def run(conn: Any, operation: Operation[T]) -> T:
    """Run an operation on a DB-API connection (SQLite's), one statement after the other."""
    try:
        statement = next(operation)
        while True:
            cursor = _execute(conn, *statement)
            statement = operation.send(Result(cursor.rowcount, cursor.fetchall()))
    except StopIteration as done:
        return done.value


def _execute(conn: Any, sql: str, params: Sequence[Any]) -> Any:
    """``conn.execute``; a :class:`LargeBlob` is inserted as a zeroblob, then written in pieces."""
    at = next((n for n, value in enumerate(params) if isinstance(value, LargeBlob)), None)
    if at is None:
        return conn.execute(sql, params)
    blob = params[at]
    pieces = sql.split("?")            # the journal's statements hold no ``?`` in literals
    sql = "".join(piece + ("zeroblob(?)" if n == at else "?") for n, piece in enumerate(pieces[:-1])) + pieces[-1]
    cursor = conn.execute(sql, [len(blob.data) if n == at else value for n, value in enumerate(params)])
    if cursor.rowcount == 1:
        with conn.blobopen(blob.table, blob.column, cursor.lastrowid) as target, memoryview(blob.data) as data:
            for start in range(0, len(data), _BLOB_CHUNK):
                target.write(data[start:start + _BLOB_CHUNK])
    return cursor


def ts(moment: datetime) -> str:
    """Store a datetime as fixed-width UTC text; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def optional_ts(moment: datetime | None) -> str | None:
    return None if moment is None else ts(moment)


def moment(stored: str | datetime) -> datetime:
    """A stored timestamp as a datetime: SQLite gives the text :func:`ts` wrote, PostgreSQL a datetime."""
    return stored if isinstance(stored, datetime) else datetime.fromisoformat(stored)


def optional_moment(stored: str | datetime | None) -> datetime | None:
    return None if stored is None else moment(stored)


def stamp(stored: str | datetime) -> str:
    """A stored timestamp as the text :func:`ts` wrote (it is part of some values' associated data)."""
    return stored if isinstance(stored, str) else ts(stored)


class SystemClock:
    """The journal's clock when none is given: UTC now."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def run_immediate(conn: Any, operation: Operation[T]) -> T:
    """:func:`run` in a ``BEGIN IMMEDIATE`` transaction of its own on a SQLite connection (migrations, key check)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = run(conn, operation)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result
