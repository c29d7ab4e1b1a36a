"""Benchmark the SQLite journal (and the PostgreSQL one, given its URL) the way the MLLP ingest uses it.

N concurrent callers (default 8, one per MLLP connection) each store messages
one after the other, awaiting each write as a connection awaits its ACK.
Scenarios:

- ``ceiling``: plain sqlite3 on one thread, same schema, same rows, WAL +
  synchronous=FULL, one transaction per ``connections`` messages - what SQLite
  allows here with batches the size group commit can reach;
- ``record_received`` in clear and encrypted (AES-256-GCM);
- ``ingest pair``: ``record_received`` + ``set_state(QUEUED, ack_code="AA")``,
  the two durable writes an MLLP message costs before its ACK.

- with ``--journal postgresql://...``: ``record_received`` and the ingest pair,
  encrypted, on ``PostgresJournal`` (a new schema each run); its CPU column
  adds the PostgreSQL server's processes when the server is local.

Prints messages/s (median of the runs), p50/p99 latency per message, CPU per
message, the mean batch size of group commit, and the ratio to the ceiling
measured in the same run. Usage::

    .venv/bin/python bench/journal.py [--messages 20000] [--connections 8] [--runs 3] [--size 2048]
        [--journal postgresql://liaison@127.0.0.1:55432/liaison]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.postgres import bench_schema, server_cpu  # noqa: E402
from channels.journal import SqliteJournal  # noqa: E402
from channels.journal.keys import new_key  # noqa: E402
from channels.journal.schema import migrate, ts  # noqa: E402
from router.ports import MessageState, ReceivedMessage  # noqa: E402

KEY = bytes(range(32))


def make_raw(control_id: str, size: int) -> bytes:
    head = (f"MSH|^~\\&|DXCARE|CHU-TEST|LIAISON|CHU-TEST|20250314093000||ADT^A03^ADT_A03|{control_id}|P|2.5"
            "|||||FRA|8859/1\rPID|||700123^^^CHU-TEST^PI||DURAND^Hélène^^^^^L||19800101|F\r"
            "PV1||I|CARDIO^^^CHU-TEST|||||10001234567^MARTIN^Paul\r").encode("latin-1")
    filler = b"NTE|1||" + b"x" * max(0, size - len(head) - 8) + b"\r"
    return head + filler


def message(control_id: str, size: int) -> ReceivedMessage:
    return ReceivedMessage(raw=make_raw(control_id, size), channel="mllp", sending_application="DXCARE",
                           sending_facility="CHU-TEST", control_id=control_id, message_type="ADT^A03",
                           received_at=datetime.now(UTC), peer="127.0.0.1:40000")


def ceiling(path: Path, total: int, batch: int, size: int) -> dict:
    """Plain sqlite3, one thread, the journal's schema and rows, one transaction per batch."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    migrate(conn)
    cpu, start = time.process_time(), time.perf_counter()
    for first in range(0, total, batch):
        conn.execute("BEGIN IMMEDIATE")
        for i in range(first, min(first + batch, total)):
            key, now = new_key(), ts(datetime.now(UTC))
            conn.execute("INSERT INTO messages (key, channel, peer, sending_application, sending_facility, "
                         "control_id, message_type, state, ack_code, detail, received_at, updated_at) "
                         "VALUES (?, 'mllp', '', 'DXCARE', 'CHU-TEST', ?, 'ADT^A03', 'received', '', '', ?, ?) "
                         "ON CONFLICT (sending_application, control_id) DO NOTHING", (key, f"CEIL-{i}", now, now))
            conn.execute("INSERT INTO message_contents (key, raw) VALUES (?, ?)", (key, make_raw(f"CEIL-{i}", size)))
            conn.execute("INSERT INTO events (message_key, at, step, state, detail) "
                         "VALUES (?, ?, 'received', 'received', 'mllp')", (key, now))
        conn.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    conn.close()
    return {"rate": total / elapsed, "p50": None, "p99": None, "cpu": cpu / total, "batch": batch}


async def run_journal(path: Path, total: int, connections: int, size: int, *, key: bytes | None,
                      pair: bool, url: str = "") -> dict:
    """The scenario on a SQLite journal at ``path``, or on the PostgreSQL database at ``url``."""
    per_connection = total // connections
    latencies: list[float] = []
    if url:
        from channels.journal.postgresql import PostgresJournal
    server = server_cpu(url) if url else None
    async with (PostgresJournal(url, key=key) if url else SqliteJournal(path, key=key)) as journal:
        async def connection(n: int) -> None:
            for i in range(per_connection):
                received = message(f"B{n}-{i}", size)
                start = time.perf_counter()
                msg_key, _ = await journal.record_received(received)
                if pair:
                    await journal.set_state(msg_key, MessageState.QUEUED, step="queued", ack_code="AA")
                latencies.append(time.perf_counter() - start)

        cpu, start, server0 = time.process_time(), time.perf_counter(), server() if server else 0.0
        await asyncio.gather(*(connection(n) for n in range(connections)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        cpu += server() - server0 if server else 0.0
        stats = journal.stats()
    done = per_connection * connections
    latencies.sort()
    return {"rate": done / elapsed, "p50": latencies[len(latencies) // 2],
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], "cpu": cpu / done,
            "batch": stats["operations"] / max(1, stats["commits"])}


def median_run(results: list[dict]) -> dict:
    return sorted(results, key=lambda result: result["rate"])[len(results) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=2048, help="bytes per HL7 message")
    parser.add_argument("--dir", default=None, help="where to put the journal files (default: a temp dir)")
    parser.add_argument("--journal", metavar="POSTGRESQL_URL", default="",
                        help="also run the PostgreSQL journal on this database (password from PGPASSWORD)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    scenarios = {
        "ceiling (sqlite3, 1 thread)": lambda p: ceiling(p, args.messages, args.connections, args.size),
        "record_received, clear": lambda p: asyncio.run(
            run_journal(p, args.messages, args.connections, args.size, key=None, pair=False)),
        "record_received, encrypted": lambda p: asyncio.run(
            run_journal(p, args.messages, args.connections, args.size, key=KEY, pair=False)),
        "ingest pair, encrypted": lambda p: asyncio.run(
            run_journal(p, args.messages, args.connections, args.size, key=KEY, pair=True)),
    }
    if args.journal:
        def on_postgresql(pair: bool) -> Callable[[Path], dict]:
            def scenario(path: Path) -> dict:
                with bench_schema(args.journal) as url:
                    return asyncio.run(run_journal(path, args.messages, args.connections, args.size, key=KEY,
                                                   pair=pair, url=url))
            return scenario

        scenarios["PG record_received, encrypted"] = on_postgresql(pair=False)
        scenarios["PG ingest pair, encrypted"] = on_postgresql(pair=True)
    results: dict[str, list[dict]] = {name: [] for name in scenarios}
    with tempfile.TemporaryDirectory(dir=args.dir) as workdir:
        for run in range(args.runs):          # interleave scenarios so drift hits them alike
            for index, (name, scenario) in enumerate(scenarios.items()):
                path = Path(workdir) / f"run{run}-{index}.sqlite"
                results[name].append(scenario(path))
                for leftover in Path(workdir).glob(f"run{run}-{index}.sqlite*"):
                    os.remove(leftover)

    print(f"journal bench: {args.messages} messages of {args.size} B, {args.connections} concurrent callers, "
          f"median of {args.runs} runs, WAL + synchronous=FULL")
    print(f"{'scenario':30} {'msgs/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/msg':>11} {'batch':>6} "
          f"{'vs ceiling':>11}")
    ceiling_rate = median_run(results["ceiling (sqlite3, 1 thread)"])["rate"]
    for name, runs in results.items():
        best = median_run(runs)
        p50 = "-" if best["p50"] is None else f"{best['p50'] * 1000:.2f}"
        p99 = "-" if best["p99"] is None else f"{best['p99'] * 1000:.2f}"
        print(f"{name:30} {best['rate']:9,.0f} {p50:>8} {p99:>8} {best['cpu'] * 1e6:11.0f} "
              f"{best['batch']:6.1f} {best['rate'] / ceiling_rate:10.0%}")
    for name, runs in results.items():
        print(f"  {name}: " + ", ".join(f"{run['rate']:,.0f}" for run in runs) + " msgs/s")


if __name__ == "__main__":
    main()
