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
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")


class Result(NamedTuple):
    """What a statement gave: the rows it returned and the number of rows it changed."""

    rowcount: int
    rows: list[tuple]


Statement = tuple[str, Sequence[Any]]
Operation = Generator[Statement, Result, T]


def run(conn: Any, operation: Operation[T]) -> T:
    """Run an operation on a DB-API connection (SQLite's), one statement after the other."""
    try:
        statement = next(operation)
        while True:
            cursor = conn.execute(*statement)
            statement = operation.send(Result(cursor.rowcount, cursor.fetchall()))
    except StopIteration as done:
        return done.value


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
