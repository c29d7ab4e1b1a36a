"""Benchmark the console's reads on a big journal: search pages, identifier search, the dashboard.

Fills a journal through its real schema (``SqliteJournal`` / ``PostgresJournal`` create and
migrate it, then rows go in by bulk inserts: ``executemany`` in transactions of 20,000 on SQLite,
``COPY`` on PostgreSQL), sealed with the real codec (AES-256-GCM raw bytes and detail) and filed
under the real keyed digests (IPP and INS of every message; document id and recipient of the
documents). The traffic: ``--messages`` spread evenly over ``--days`` days, ULID keys in arrival
order; 60 % ORU^R01, 20 % MDM^T02, 20 % ADT; 90 % delivered, 3 % failed, 2 % parked, 2 % partial,
3 % rejected; one patient (IPP + INS) per 5 messages on average. No timeline events nor
outcomes: no search reads them.

Then, through the journal's own ``search`` (what ``/api/messages`` calls, 50 rows a page, rows
decrypted), each query ``--repeat`` times with random arguments, p50 and p99 in milliseconds:

- first page: the newest 50;
- deep page: a keyset page whose cursor lies in the oldest day;
- by IPP: a random patient's messages (keyed digest lookup);
- by document id: one document's message;
- state + date: failed messages of one random day;
- parked, no date: the newest parked messages (2 % of the journal);
- dashboard: ``Journal.activity`` (counts of the last hour and day, 24 hourly buckets, oldest waiting).

With ``--reindex``, the digests are then deleted and ``Journal.reindex`` (what ``liaison journal
reindex`` runs for a journal older than v7) files every message again, timed.

Usage::

    .venv/bin/python bench/console.py [--messages 1000000] [--days 30] [--repeat 50]
        [--dir DIR] [--journal postgresql://user@127.0.0.1:5432/db]

With ``--journal postgresql://...`` (or ``LIAISON_TEST_POSTGRES_URL`` and ``--postgresql``) the same
is run on PostgreSQL, in a schema of its own dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.postgres import bench_schema  # noqa: E402
from channels.cipher import aad, make_codec  # noqa: E402
from channels.journal import SqliteJournal  # noqa: E402
from channels.journal.digests import IdentifierDigests  # noqa: E402
from channels.journal.keys import encode  # noqa: E402
from channels.journal.operations import MESSAGE_ROW  # noqa: E402
from channels.journal.sql import ts  # noqa: E402
from router.ports import MessageState  # noqa: E402

KEY = bytes(range(32))
BATCH = 20_000
TYPES = [("ORU^R01", 60), ("MDM^T02", 20), ("ADT^A03", 10), ("ADT^A01", 10)]
STATES = [(MessageState.DELIVERED, 90), (MessageState.FAILED, 3), (MessageState.PARKED, 2),
          (MessageState.PARTIAL, 2), (MessageState.REJECTED, 3)]
PAGE = 50


def weighted(pairs, n: int, rng: random.Random) -> list:
    values, weights = zip(*pairs)
    return rng.choices(values, weights=weights, k=n)


class Traffic:
    """The rows of a journal of ``n`` messages over ``days`` days ending now, made batch by batch."""

    def __init__(self, n: int, days: int, seed: int = 7):
        self.n, self.rng = n, random.Random(seed)
        self.end = datetime.now(UTC)
        self.start = self.end - timedelta(days=days)
        self.step = (self.end - self.start) / n
        self.patients = max(1, n // 5)
        self.codec = make_codec(KEY)
        self.digests = IdentifierDigests(KEY)

    def ipp(self, patient: int) -> str:
        return f"IPP{patient:08d}"

    def ins(self, patient: int) -> str:
        return f"2{patient:014d}"

    def document(self, i: int) -> str:
        return f"1.2.250.1.999.1.3^DOC{i:09d}"

    def batch(self, first: int, count: int) -> tuple[list[tuple], list[tuple], list[tuple]]:
        """(message rows in MESSAGE_ROW order + peer, identifier rows, content rows) for messages
        first..first+count-1."""
        rng, codec = self.rng, self.codec
        types, states = weighted(TYPES, count, rng), weighted(STATES, count, rng)
        messages, identifiers, contents = [], [], []
        for offset in range(count):
            i = first + offset
            at = self.start + self.step * i
            ms = int(at.timestamp() * 1000)
            key = encode((ms << 80) | rng.getrandbits(80))
            patient = rng.randrange(self.patients)
            control_id = f"MSG{i:010d}"
            raw = (f"MSH|^~\\&|DXCARE|CHU-TEST|LIAISON|CHU-TEST|20261206093000||{types[offset]}|{control_id}|P|2.5\r"
                   f"PID|||{self.ipp(patient)}^^^CHU-TEST^PI~{self.ins(patient)}^^^ASIP-SANTE-INS-NIR&"
                   f"1.2.250.1.213.1.4.8&ISO^INS||DURAND^Helene||19800101|F\r").encode()
            stamp, state = ts(at), states[offset]
            contents.append((key, codec.seal_bytes(raw, aad("messages", key, "raw"))))
            messages.append((key, "his", "DXCARE", "CHU-TEST", control_id, types[offset], str(state), stamp, stamp,
                             "AA" if state is not MessageState.REJECTED else "AE",
                             codec.seal_text("", aad("messages", key, "detail")), "127.0.0.1:40000"))
            pairs = [("ipp", self.ipp(patient)), ("ins", self.ins(patient))]
            if types[offset] in ("ORU^R01", "MDM^T02"):
                pairs += [("document", self.document(i)), ("recipient", f"dr.{patient % 5000}@test.mssante.fr")]
            identifiers += [(digest, key) for digest in self.digests.of(pairs)]
        return messages, identifiers, contents


INSERT_MESSAGES = f"INSERT INTO messages ({MESSAGE_ROW}, peer) VALUES ({', '.join('?' * 12)})"
INSERT_CONTENTS = "INSERT INTO message_contents (key, raw) VALUES (?, ?)"
INSERT_IDENTIFIERS = "INSERT INTO message_identifiers (digest, message_key) VALUES (?, ?)"


async def fill_sqlite(path: Path, traffic: Traffic) -> float:
    async with SqliteJournal(path, key=KEY):        # creates the schema (all migrations) and the key check
        pass
    began = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")     # the fill only; the journal itself runs FULL
    for first in range(0, traffic.n, BATCH):
        messages, identifiers, contents = traffic.batch(first, min(BATCH, traffic.n - first))
        conn.execute("BEGIN")
        conn.executemany(INSERT_MESSAGES, messages)
        conn.executemany(INSERT_CONTENTS, contents)
        conn.executemany(INSERT_IDENTIFIERS, identifiers)
        conn.execute("COMMIT")
        progress(first + len(messages), traffic.n, began)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - began


async def fill_postgresql(url: str, traffic: Traffic) -> float:
    import psycopg

    from channels.journal.postgresql import PostgresJournal
    async with PostgresJournal(url, key=KEY):
        pass
    began = time.perf_counter()
    columns = [c.strip() for c in MESSAGE_ROW.split(",")] + ["peer"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET TIME ZONE 'UTC'")
        for first in range(0, traffic.n, BATCH):
            messages, identifiers, contents = traffic.batch(first, min(BATCH, traffic.n - first))
            with conn.transaction():
                with conn.cursor().copy(f"COPY messages ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in messages:
                        copy.write_row(row)
                with conn.cursor().copy("COPY message_contents (key, raw) FROM STDIN") as copy:
                    for row in contents:
                        copy.write_row(row)
                with conn.cursor().copy("COPY message_identifiers (digest, message_key) FROM STDIN") as copy:
                    for row in identifiers:
                        copy.write_row(row)
            progress(first + len(messages), traffic.n, began)
        conn.execute("ANALYZE")
    return time.perf_counter() - began


def progress(done: int, total: int, began: float) -> None:
    if done % (BATCH * 10) == 0 or done == total:
        print(f"  {done:>9,} messages in {time.perf_counter() - began:6.1f} s", file=sys.stderr, flush=True)


async def measure(journal, traffic: Traffic, repeat: int) -> dict[str, list[float]]:
    rng = random.Random(11)
    oldest_day = traffic.start + timedelta(hours=12)
    days = (traffic.end - traffic.start).days or 1

    def deep():
        return {"before": (oldest_day + timedelta(minutes=rng.randrange(600)), "Z" * 26)}

    def by_ipp():
        return {"ipp": traffic.ipp(rng.randrange(traffic.patients))}

    def by_document():
        # a message of a document type (ORU/MDM are 80 %): try indexes until one is
        return {"document_id": traffic.document(rng.randrange(traffic.n))}

    def state_and_day():
        day = traffic.start + timedelta(days=rng.randrange(days))
        return {"state": MessageState.FAILED, "since": day, "until": day + timedelta(days=1)}

    queries = {"first page": lambda: {}, "deep keyset page": deep, "by IPP (digest)": by_ipp,
               "by document id (digest)": by_document, "state + day": state_and_day,
               "parked (2 %), no date": lambda: {"state": MessageState.PARKED}}
    timings: dict[str, list[float]] = {}
    for name, arguments in queries.items():
        await journal.search(limit=PAGE, **arguments())          # warm the path once
        spent, rows = [], 0
        for _ in range(repeat):
            chosen = arguments()
            began = time.perf_counter()
            rows += len(await journal.search(limit=PAGE, **chosen))
            spent.append((time.perf_counter() - began) * 1000)
        timings[name] = spent
        timings[name + " rows"] = [rows / repeat]
    spent = []
    for _ in range(max(5, repeat // 5)):
        began = time.perf_counter()
        await journal.activity(traffic.end)
        spent.append((time.perf_counter() - began) * 1000)
    timings["dashboard (activity)"] = spent
    return timings


def report(title: str, fill_seconds: float, n: int, timings: dict[str, list[float]], size: str) -> None:
    print(f"\n{title}: {n:,} messages filled in {fill_seconds:.0f} s ({n / fill_seconds:,.0f}/s){size}")
    print(f"  {'query (50 rows a page)':<28} {'p50 ms':>8} {'p99 ms':>8} {'rows':>6}")
    for name, spent in timings.items():
        if name.endswith(" rows"):
            continue
        p99 = statistics.quantiles(spent, n=100)[98] if len(spent) >= 2 else spent[0]
        rows = timings.get(name + " rows", [0])[0]
        print(f"  {name:<28} {statistics.median(spent):8.1f} {p99:8.1f} {rows:6.1f}")


async def timed_reindex(journal, n: int) -> None:
    began = time.perf_counter()
    counts = await journal.reindex()
    seconds = time.perf_counter() - began
    assert counts["messages"] == n, counts
    print(f"  reindex from scratch: {n:,} messages in {seconds:.0f} s ({n / seconds:,.0f}/s)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--dir", default=None, help="where to put the SQLite journal (default: a temp dir)")
    parser.add_argument("--journal", metavar="POSTGRESQL_URL", default="",
                        help="also run on this PostgreSQL server (a schema of its own, dropped afterwards)")
    parser.add_argument("--postgresql", action="store_true", help="PostgreSQL at LIAISON_TEST_POSTGRES_URL")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--reindex", action="store_true", help="then time liaison journal reindex from scratch")
    args = parser.parse_args()
    if args.messages < BATCH:
        parser.error(f"--messages: at least {BATCH}")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    url = args.journal or (os.environ.get("LIAISON_TEST_POSTGRES_URL", "") if args.postgresql else "")
    if args.postgresql and not url:
        parser.error("--postgresql: LIAISON_TEST_POSTGRES_URL is not set")
    print(f"console bench: {args.messages:,} messages over {args.days} days, {args.repeat} queries each, "
          f"{os.cpu_count()} CPUs", flush=True)

    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(dir=args.dir) as folder:
            path = Path(folder) / "journal.sqlite"
            traffic = Traffic(args.messages, args.days)
            print("SQLite: filling", file=sys.stderr)
            seconds = await fill_sqlite(path, traffic)
            size = f", file {path.stat().st_size / 2**20:,.0f} MiB"
            async with SqliteJournal(path, key=KEY) as journal:
                timings = await measure(journal, traffic, args.repeat)
            report("SQLite", seconds, args.messages, timings, size)
            if args.reindex:
                with sqlite3.connect(path) as conn:
                    conn.execute("DELETE FROM message_identifiers")
                async with SqliteJournal(path, key=KEY) as journal:
                    await timed_reindex(journal, args.messages)

    if url:
        from channels.journal.postgresql import PostgresJournal
        with bench_schema(url) as schema_url:
            traffic = Traffic(args.messages, args.days)
            print("PostgreSQL: filling", file=sys.stderr)
            seconds = await fill_postgresql(schema_url, traffic)
            async with PostgresJournal(schema_url, key=KEY) as journal:
                timings = await measure(journal, traffic, args.repeat)
            report("PostgreSQL", seconds, args.messages, timings, "")
            if args.reindex:
                import psycopg
                with psycopg.connect(schema_url, autocommit=True) as conn:
                    conn.execute("DELETE FROM message_identifiers")
                async with PostgresJournal(schema_url, key=KEY) as journal:
                    await timed_reindex(journal, args.messages)


if __name__ == "__main__":
    asyncio.run(main())
