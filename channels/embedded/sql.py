"""The embedded bus's table and the statements run on it.

One table holds every queue. A row is ``ready`` (deliverable once ``available_at``
has passed), ``leased`` (handed to a consumer of the bus instance ``lease_owner``,
not yet settled) or ``parked`` (``available_at`` then holds the parking time).
Every function here runs on the store's writer thread, inside the transaction of
its batch (see ``store.py``); none of them commits.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_message (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a stale delivery cannot settle a new row
    queue        TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('ready', 'leased', 'parked')),
    available_at REAL    NOT NULL,                   -- unix time
    attempt      INTEGER NOT NULL DEFAULT 0,
    message_id   TEXT    NOT NULL,
    headers      TEXT    NOT NULL,                   -- JSON object, str -> str
    body         BLOB    NOT NULL,
    lease_owner  TEXT,
    created_at   REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS bus_message_due ON bus_message (queue, state, available_at, id);
"""


@dataclass(frozen=True)
class Row:
    """One message as read from the table."""

    id: int
    message_id: str
    headers: dict[str, str]
    body: bytes
    attempt: int


def _row(values: Sequence) -> Row:
    row_id, message_id, headers, body, attempt = values
    return Row(row_id, message_id, json.loads(headers), bytes(body), attempt)


def dump_headers(headers: Mapping[str, str]) -> str:
    return json.dumps(dict(headers), ensure_ascii=False, separators=(",", ":"))


def release_all(conn: sqlite3.Connection) -> int:
    """Return every leased row to its queue: called on open, when no consumer can hold one."""
    return conn.execute(
        "UPDATE bus_message SET state = 'ready', lease_owner = NULL WHERE state = 'leased'").rowcount


def insert(conn: sqlite3.Connection, rows: Iterable[tuple[str, float, int, str, str, bytes]]) -> None:
    """Insert (queue, available_at, attempt, message_id, headers_json, body) rows as ready."""
    conn.executemany(
        "INSERT INTO bus_message (queue, state, available_at, attempt, message_id, headers, body, created_at)"
        " VALUES (?1, 'ready', ?2, ?3, ?4, ?5, ?6, ?2)", rows)


def lease(conn: sqlite3.Connection, queue: str, limit: int, owner: str,
          now: float) -> tuple[list[Row], float | None]:
    """Lease up to ``limit`` due rows, oldest first; also say when the next ready row falls due."""
    found = conn.execute(
        "SELECT id, message_id, headers, body, attempt FROM bus_message"
        " WHERE queue = ? AND state = 'ready' AND available_at <= ?"
        " ORDER BY available_at, id LIMIT ?", (queue, now, limit)).fetchall()
    if found:
        conn.executemany("UPDATE bus_message SET state = 'leased', lease_owner = ? WHERE id = ?",
                         [(owner, values[0]) for values in found])
    next_due = None
    if len(found) < limit:
        next_due = conn.execute(
            "SELECT MIN(available_at) FROM bus_message WHERE queue = ? AND state = 'ready'",
            (queue,)).fetchone()[0]
    return [_row(values) for values in found], next_due


def delete(conn: sqlite3.Connection, row_id: int, owner: str) -> bool:
    """Ack: remove a row this owner holds."""
    return conn.execute("DELETE FROM bus_message WHERE id = ? AND state = 'leased' AND lease_owner = ?",
                        (row_id, owner)).rowcount == 1


def reschedule(conn: sqlite3.Connection, row_id: int, owner: str, available_at: float,
               attempt: int, headers: str) -> bool:
    """Retry: make a held row ready again later, with its new attempt count and headers."""
    return conn.execute(
        "UPDATE bus_message SET state = 'ready', lease_owner = NULL, available_at = ?, attempt = ?,"
        " headers = ? WHERE id = ? AND state = 'leased' AND lease_owner = ?",
        (available_at, attempt, headers, row_id, owner)).rowcount == 1


def park(conn: sqlite3.Connection, row_id: int, owner: str, now: float, headers: str) -> bool:
    """Park a held row; ``available_at`` records when, so parked rows list oldest first."""
    return conn.execute(
        "UPDATE bus_message SET state = 'parked', lease_owner = NULL, available_at = ?, headers = ?"
        " WHERE id = ? AND state = 'leased' AND lease_owner = ?",
        (now, headers, row_id, owner)).rowcount == 1


def release(conn: sqlite3.Connection, owner: str, row_ids: Sequence[int] | None = None) -> int:
    """Return rows an owner holds (all of them, or only ``row_ids``) to their queue, unchanged."""
    if row_ids is None:
        return conn.execute("UPDATE bus_message SET state = 'ready', lease_owner = NULL"
                            " WHERE state = 'leased' AND lease_owner = ?", (owner,)).rowcount
    return sum(conn.execute("UPDATE bus_message SET state = 'ready', lease_owner = NULL"
                            " WHERE id = ? AND state = 'leased' AND lease_owner = ?",
                            (row_id, owner)).rowcount for row_id in row_ids)


def depth(conn: sqlite3.Connection, queue: str, now: float) -> tuple[int, int, int, float | None]:
    """(waiting, parked, retrying, oldest waiting's created_at) of one queue, from the queue's index."""
    waiting = parked_count = retrying = 0
    oldest = None
    for state, count, delayed, first in conn.execute(
            "SELECT state, count(*), sum(available_at > ?), min(created_at) FROM bus_message WHERE queue = ?"
            " GROUP BY state", (now, queue)):
        if state == "parked":
            parked_count = count
            continue
        waiting += count
        retrying += delayed or 0
        oldest = first if oldest is None else min(oldest, first)
    return waiting, parked_count, retrying, oldest


def parked(conn: sqlite3.Connection, queue: str, limit: int) -> list[Row]:
    return [_row(values) for values in conn.execute(
        "SELECT id, message_id, headers, body, attempt FROM bus_message"
        " WHERE queue = ? AND state = 'parked' ORDER BY available_at, id LIMIT ?", (queue, limit))]


def unpark(conn: sqlite3.Connection, queue: str, message_id: str, now: float, drop: Sequence[str]) -> bool:
    """Replay the oldest parked row with this message id: ready now, attempt 0, ``drop`` headers removed."""
    found = conn.execute(
        "SELECT id, headers FROM bus_message WHERE queue = ? AND state = 'parked' AND message_id = ?"
        " ORDER BY available_at, id LIMIT 1", (queue, message_id)).fetchone()
    if found is None:
        return False
    headers = {k: v for k, v in json.loads(found[1]).items() if k not in drop}
    conn.execute("UPDATE bus_message SET state = 'ready', attempt = 0, available_at = ?, headers = ?"
                 " WHERE id = ?", (now, dump_headers(headers), found[0]))
    return True
