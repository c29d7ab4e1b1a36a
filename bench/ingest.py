"""Ingest benchmark: MLLP → journal → bus confirmed → AA, against the ceiling of a bare MLLP echo server.

Starts ``liaison run --ingest-only`` in a subprocess (RabbitMQ bus by default,
or the embedded one with --bus embedded), then N messages over M persistent
MLLP connections, each connection waiting for its ACK before sending the next
(as HIS senders do). Prints messages/s, p50/p99 latency, CPU seconds of the
engine process per message, the same for a bare asyncio MLLP echo server in
the same run, RabbitMQ's publisher confirms in batches of 100 with the same body
(bench/ceilings.py), and the ratios. Figures only: nothing here asserts a timing.

    .venv/bin/python bench/ingest.py --messages 20000 --connections 8 [--bus amqp|embedded]
        [--journal postgresql://liaison@127.0.0.1:55432/liaison]

The engine runs on a SQLite journal, then, with ``--journal postgresql://...``, on that
PostgreSQL database too (in a schema of its own, dropped afterwards), so that both are measured
in the same run next to the same ceiling.
"""

from __future__ import annotations

import argparse
import base64
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.ceilings import amqp_batched_confirms, amqp_confirm_each  # noqa: E402
from bench.postgres import bench_schema, process_cpu, server_cpu  # noqa: E402
from channels.testing.local import free_port, wait_port  # noqa: E402
from channels.testing.messages import DR_LEROY, DR_MARTIN, encode_message, make_pfi_oru  # noqa: E402
VT, FS, CR = b"\x0b", b"\x1c", b"\r"


def sample_message(i: int) -> bytes:
    """A PFI ORU^R01 of about 2 KB.

    The door reads MSH, PID, PRT and MetaDMPMSS rows, and of the document only its id
    (decoded, hashed and looked up in the journal: router/reused_id.py), so the id is unique.
    """
    document = (b"<ClinicalDocument xmlns='urn:hl7-org:v3'><typeId root='2.16.840.1.113883.1.3' "
                b"extension='POCD_HD000040'/><id root='1.2.250.1.999.1' extension='B%09d'/>" % i
                + b"x" * 500 + b"</ClinicalDocument>")
    return encode_message(make_pfi_oru(document, control_id=f"B{i:09d}", recipients=[DR_MARTIN, DR_LEROY]))


async def load(port: int, messages: int, connections: int, offset: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    failures = 0
    per_conn = messages // connections

    async def one_connection(c: int) -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for k in range(per_conn):
            frame = VT + sample_message(offset + c * per_conn + k) + FS + CR
            start = time.perf_counter()
            writer.write(frame)
            ack = await reader.readuntil(FS + CR)
            latencies.append(time.perf_counter() - start)
            if b"MSA|AA" not in ack:
                failures += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one_connection(c) for c in range(connections)))
    return time.perf_counter() - start, latencies, failures


async def measure(name: str, procs: subprocess.Popen | list[subprocess.Popen], port: int, args,
                  server_cpu=None) -> dict:
    """Rate, latencies and CPU per message of ``procs`` together (and of the database server, given ``server_cpu``)."""
    procs = procs if isinstance(procs, list) else [procs]
    await wait_port(port, time.monotonic() + 60)
    await load(port, min(2000, args.messages), args.connections, offset=10**8)   # warm-up
    cpu0, server0 = sum(process_cpu(p.pid) for p in procs), server_cpu() if server_cpu else None
    elapsed, latencies, failures = await load(port, args.messages, args.connections, offset=0)
    cpu = sum(process_cpu(p.pid) for p in procs) - cpu0
    server = server_cpu() - server0 if server_cpu else None
    latencies.sort()
    count = len(latencies)
    return {"name": name, "rate": count / elapsed, "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(count * 0.99) - 1] * 1000, "cpu_ms": cpu / count * 1000, "failures": failures,
            "db_cpu_ms": None if server is None else server / count * 1000}


def start(cmd: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def measure_echo(args) -> dict:
    """The bare asyncio MLLP echo (bench/mllp_echo.py) under the same load: the door's ceiling."""
    echo_port = free_port()
    echo = start([sys.executable, "bench/mllp_echo.py", "--port", str(echo_port)])
    try:
        return await measure("bare asyncio MLLP echo (ceiling)", echo, echo_port, args)
    finally:
        stop(echo)


async def measure_engine(args, journal: str) -> dict:
    """``liaison run --ingest-only`` on a SQLite journal in a temporary folder, or in a new PostgreSQL schema."""
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as tmp, \
            (nullcontext(f"sqlite://{tmp}/journal.sqlite") if journal == "sqlite" else bench_schema(journal)) as url:
        port = free_port()
        bus = args.amqp_url if args.bus == "amqp" else f"embedded://{tmp}/bus.sqlite"
        config = Path(tmp) / "liaison.toml"
        config.write_text(f'[engine]\nbus = "{bus}"\njournal = "{url}"\n'
                          f'[[listeners]]\nname = "bench"\nport = {port}\n'
                          + ("reuse_port = true\n" if args.listeners > 1 else ""))
        key = {"LIAISON_JOURNAL_KEY": base64.b64encode(os.urandom(32)).decode()} if args.encrypted else {}
        engines = [start([sys.executable, "-m", "channels.app.cli.main", "--log-level", "warning", "run",
                          "--ingest-only", "-c", str(config)], env=key) for _ in range(args.listeners)]
        try:
            sealed = ", encrypted journal and bus" if args.encrypted else ""
            kind = "SQLite" if journal == "sqlite" else "PostgreSQL"
            processes = f", {args.listeners} processes on the port" if args.listeners > 1 else ""
            return await measure(f"liaison run --ingest-only ({args.bus} bus, {kind} journal{sealed}{processes})",
                                 engines, port, args, server_cpu=None if journal == "sqlite" else server_cpu(url))
        finally:
            for engine in engines:
                stop(engine)
                if engine.returncode not in (0, -15, None):
                    print(engine.stderr.read().decode()[-2000:], file=sys.stderr)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--bus", choices=["amqp", "embedded"], default="amqp")
    parser.add_argument("--listeners", type=int, default=1,
                        help="liaison run --ingest-only processes sharing the port (listeners.reuse_port; RabbitMQ)")
    parser.add_argument("--encrypted", action="store_true",
                        help="with a journal key: journal values and bus bodies AES-GCM-sealed, as in production")
    parser.add_argument("--journal", metavar="POSTGRESQL_URL", default="",
                        help="also measure the engine on this PostgreSQL database (password from PGPASSWORD)")
    parser.add_argument("--amqp-url", default=os.environ.get("LIAISON_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    args = parser.parse_args()
    results = []

    results.append(await measure_echo(args))
    confirms = each = None
    if args.bus == "amqp":
        confirms = await amqp_batched_confirms(args.amqp_url, sample_message(0), args.messages)
        each = await amqp_confirm_each(args.amqp_url, sample_message(0), args.messages, args.connections)

    journals = ["sqlite"] + ([args.journal] if args.journal else [])
    for journal in journals:
        results.append(await measure_engine(args, journal))

    print(f"\n{args.messages} messages of {len(sample_message(0))} bytes over {args.connections} connections")
    print(f"{'':72} {'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/msg':>11} {'DB CPU':>7} {'non-AA':>7}")
    for r in results:
        db = "-" if r.get("db_cpu_ms") is None else f"{r['db_cpu_ms']:.3f}"
        print(f"{r['name']:72} {r['rate']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['cpu_ms']:11.3f} {db:>7} "
              f"{r['failures']:7}")
    print("(CPU: the engine process; DB CPU: the PostgreSQL server's processes, when local - SQLite's is the engine's)")
    if confirms is not None:
        print(f"RabbitMQ publisher confirms, batches of 100, quorum queue, same body (ceiling): {confirms:.0f} msg/s")
        print(f"RabbitMQ, {args.connections} publishers each waiting for its confirm, as the door's connections "
              f"(ceiling): {each[0]:.0f} msg/s, p50 {each[1]:.2f} ms")
    for r in results[1:]:
        against = (f", to the batched confirms {r['rate'] / confirms:.2f}, to {args.connections} confirms in flight "
                   f"{r['rate'] / each[0]:.2f}") if confirms else ""
        print(f"ratio engine / ceiling, {r['name']}: to the MLLP echo {r['rate'] / results[0]['rate']:.2f}{against}")


if __name__ == "__main__":
    asyncio.run(main())
