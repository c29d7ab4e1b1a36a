"""File the messages journaled before schema v7 under their identifier digests (``liaison journal reindex``).

A migration cannot compute a keyed digest in SQL, so v7 leaves older messages unfiled: search finds
them by MSH-10, state, type and date only until this has run. It reads, in pages by primary key:

- every message's raw bytes, opened with the journal's key, for the IPP and INS of its PID-3
  (the same reading as the door's, ``router.identity.searchable_identifiers``);
- every outcome, content binding and rendered document, for the document ids and recipients.

and writes their digests with ``INSERT ... ON CONFLICT DO NOTHING``: it may run while the engine runs,
be stopped and run again; a message already filed is filed again at no cost. Nothing leaves the
process in clear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from channels.cipher import aad
from channels.journal.sql import Operation
from router.hl7.charset import decode_lenient
from router.hl7.msh import first_segment
from router.hl7.segments import normalise_segments
from router.identity import searchable_identifiers

#: (table, its key columns, the columns read: identifiers then the message key) for the document tables
SOURCES = (
    ("outcomes", ("document_id", "destination"), ("document_id", "destination", "message_key")),
    ("document_contents", ("document_id",), ("document_id", "message_key")),
    ("documents", ("facility", "source_id"), ("document_id", "message_key")),
)


def page(table: str, keys: Sequence[str], columns: Sequence[str], after: tuple | None,
         limit: int) -> Operation[list[tuple]]:
    """The next ``limit`` rows of ``table`` in primary-key order after the key ``after`` (keys first)."""
    where = ""
    params: list = []
    if after is not None:
        where = f"WHERE ({', '.join(keys)}) > ({', '.join('?' * len(keys))}) "
        params = list(after)
    found = yield (f"SELECT {', '.join(keys)}, {', '.join(columns)} FROM {table} {where}"
                   f"ORDER BY {', '.join(keys)} LIMIT ?", (*params, limit))
    return found.rows


def patient_identifiers(raw: bytes) -> tuple[tuple[str, str], ...]:
    """IPP and INS of a journaled message's PID-3 (none for one the door could not read)."""
    text = decode_lenient(raw)[0]
    if "\n" in text:
        text = normalise_segments(text)
    pid = first_segment(text, "PID")
    return searchable_identifiers(pid) if pid is not None else ()


async def reindex(query: Callable, write: Callable, codec, digests, *, batch: int = 1000,
                  progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """File every message under its identifiers' digests; how many rows each table gave."""
    counts = {}
    after = None
    done = 0
    while True:
        rows = await query(page("message_contents", ("key",), ("raw",), after, batch))
        if not rows:
            break
        filed = [(key, digests.of(patient_identifiers(codec.open_bytes(raw, aad("messages", key, "raw")))))
                 for key, raw in rows]
        await write(lambda filed=filed: _index_all(filed))
        done += len(rows)
        after = (rows[-1][0],)
        if progress:
            progress("messages", done)
    counts["messages"] = done
    for table, keys, columns in SOURCES:
        after, done = None, 0
        while True:
            rows = await query(page(table, keys, columns, after, batch))
            if not rows:
                break
            filed = []
            for row in rows:
                *found, message_key = row[len(keys):]
                kinds = ("document", "recipient") if table == "outcomes" else ("document",)
                filed.append((message_key, digests.of(zip(kinds, found))))
            await write(lambda filed=filed: _index_all(filed))
            done += len(rows)
            after = tuple(rows[-1][:len(keys)])
            if progress:
                progress(table, done)
        counts[table] = done
    return counts


def _index_all(filed) -> Operation[None]:
    """One INSERT for a whole page (at most a few thousand rows, under both databases' parameter limits)."""
    pairs = [(digest, message_key) for message_key, found in filed if message_key for digest in found]
    if pairs:
        yield (f"INSERT INTO message_identifiers (digest, message_key) VALUES {', '.join(['(?, ?)'] * len(pairs))} "
               "ON CONFLICT DO NOTHING", [value for pair in pairs for value in pair])
