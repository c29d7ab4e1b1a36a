"""A large received message goes into SQLite in pieces (channels/journal/sql.py, ``LargeBlob``).

Python's ``sqlite3`` binds a blob as a copy and SQLite builds the row's record from that copy: a 35 MiB
message was held three times while the door journaled it. The journal now inserts a zeroblob of its
size and writes the bytes into it a megabyte at a time. The peak is read from the kernel (``VmHWM``,
reset through ``/proc/self/clear_refs``): SQLite's own memory is not Python's, tracemalloc cannot see it.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.journal.sql import LARGE_BLOB_BYTES, large_blob, run
from channels.journal.sqlite import SqliteJournal
from router.ports import ReceivedMessage

SIZE = 32 * 2**20


def status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise LookupError(key)


def message(raw: bytes) -> ReceivedMessage:
    return ReceivedMessage(raw=raw, channel="his", sending_application="DXCARE", sending_facility="CHU",
                           control_id="BIG-1", message_type="MDM^T02", received_at=datetime.now(UTC), peer="")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
async def test_a_large_message_is_journaled_without_copies_and_comes_back_byte_for_byte(tmp_path):
    raw = b"MSH|^~\\&|DXCARE|CHU|LIAISON|CHU|20261206||MDM^T02|BIG-1|P|2.6\r" + os.urandom(SIZE)
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        before = status_kb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")          # VmHWM := VmRSS
        key, _ = await journal.record_received(message(raw))
        grown = (status_kb("VmHWM") - before) * 1024
        assert grown < 0.5 * len(raw), f"journaling took {grown / len(raw):.1f}x the message"
        assert (await journal.message(key)).raw == raw


def test_only_a_large_value_is_written_in_pieces(tmp_path):
    conn = sqlite3.connect(tmp_path / "t.sqlite", isolation_level=None)
    conn.execute("CREATE TABLE t (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
    executed: list[str] = []
    conn.set_trace_callback(executed.append)

    def insert(key: str, data: bytes):
        yield "INSERT INTO t (key, data) VALUES (?, ?)", (key, large_blob("t", "data", data))

    small, large = b"x" * LARGE_BLOB_BYTES, bytes(range(256)) * (3 * LARGE_BLOB_BYTES // 256) + b"tail"
    run(conn, insert("small", small))
    run(conn, insert("large", large))
    assert ["zeroblob" in sql for sql in executed] == [False, True]
    assert dict(conn.execute("SELECT key, data FROM t")) == {"small": small, "large": large}
