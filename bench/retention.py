"""Retention: how fast a pass empties and removes old messages, and what SQLite gives back to the disk.

Fills a journal with N final messages received 400 days ago (2 KB of HL7, 5 timeline events and one
outcome each, encrypted), then runs one retention pass with content kept 30 days and metadata 365 days
(batches of 500): content of every message emptied, then every message removed. Prints the seconds and
messages/s of each kind, and for SQLite the file size before and after (incremental vacuum).

    .venv/bin/python bench/retention.py                        # SQLite, 20,000 messages
    .venv/bin/python bench/retention.py --journal postgresql   # LIAISON_TEST_POSTGRES_URL (a schema of its own)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog  # noqa: E402

from bench.postgres import bench_schema  # noqa: E402
from channels.journal import SqliteJournal  # noqa: E402
from channels.journal.postgresql import PostgresJournal  # noqa: E402
from router.ports import MessageState, Outcome, OutcomeStatus, ReceivedMessage  # noqa: E402
from router.retention import RetentionSettings  # noqa: E402

OLD = datetime.now(UTC) - timedelta(days=400)
RAW = b"MSH|^~\\&|HIS|CH|LIAISON|CH|20251101||ORU^R01|{id}|P|2.5\r" + b"OBX|1|ED|||" + b"A" * 1900 + b"\r"


async def fill(journal, total: int) -> None:
    async def one(n: int) -> None:
        control_id = f"RET{n:07d}"
        key, _ = await journal.record_received(ReceivedMessage(
            raw=RAW.replace(b"{id}", control_id.encode()), channel="his", sending_application="HIS",
            sending_facility="CH", control_id=control_id, message_type="ORU^R01", received_at=OLD))
        for step in ("queued", "processing", "dispatched"):
            await journal.set_state(key, MessageState(step) if step != "dispatched" else MessageState.DISPATCHED,
                                    step=step, detail="bench")
        await journal.record_outcome(Outcome(f"DOC-{control_id}", "dr@hopital.mssante.fr", OutcomeStatus.ACCEPTED,
                                             "250 ok", datetime.now(UTC), key))
        await journal.set_state(key, MessageState.DELIVERED, step="delivered", detail="1/1")

    for start in range(0, total, 200):
        await asyncio.gather(*(one(n) for n in range(start, min(total, start + 200))))


async def timed_batches(expire, before: datetime, batch: int) -> tuple[int, float]:
    started, total = time.perf_counter(), 0
    while True:
        done = await expire(before, batch)
        total += done
        if done < batch:
            return total, time.perf_counter() - started


async def run(journal, total: int, path: Path | None) -> None:
    await journal.open()
    try:
        await fill(journal, total)
        size = path.stat().st_size + Path(f"{path}-wal").stat().st_size if path else None
        settings = RetentionSettings(content_days=30, metadata_days=365, batch=500)
        now = datetime.now(UTC)
        content, content_s = await timed_batches(journal.expire_content, now - timedelta(days=30), settings.batch)
        metadata, metadata_s = await timed_batches(journal.expire_metadata, now - timedelta(days=365), settings.batch)
        started = time.perf_counter()
        space = await journal.reclaim_space()
        reclaim_s = time.perf_counter() - started
    finally:
        await journal.close()
    print(f"content emptied: {content} messages in {content_s:.2f} s ({content / content_s:,.0f} msg/s)")
    print(f"metadata removed: {metadata} messages in {metadata_s:.2f} s ({metadata / metadata_s:,.0f} msg/s)")
    print(f"space: {space} ({reclaim_s:.2f} s)")
    if path is not None:
        print(f"file: {size / 1e6:.1f} MB before (db + WAL), {path.stat().st_size / 1e6:.2f} MB after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", choices=("sqlite", "postgresql"), default="sqlite", help="which adapter")
    parser.add_argument("--messages", type=int, default=20_000, help="final messages to fill (default 20,000)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    key = os.urandom(32)
    if args.journal == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "journal.sqlite"
            asyncio.run(run(SqliteJournal(path, key=key), args.messages, path))
        return
    url = os.environ.get("LIAISON_TEST_POSTGRES_URL")
    if not url:
        sys.exit("set LIAISON_TEST_POSTGRES_URL (source /work/session-env.sh)")
    with bench_schema(url) as schema_url:
        asyncio.run(run(PostgresJournal(schema_url, key=key), args.messages, None))


if __name__ == "__main__":
    main()
