"""Bus throughput: publish with confirms (8 concurrent publishers, 2 KB) and consume, per adapter.

For each adapter it prints messages/s, p50/p99 publish latency, CPU per message, and the
ratio to a ceiling measured in the same run on the same store:

- embedded: raw sqlite3 inserts of 2 KB rows in batches of 100, WAL + synchronous=FULL;
- amqp: raw aiormq publishes of 2 KB persistent messages to a quorum queue, batches of 100
  with publisher confirms (the "batched confirms" ceiling of spec/performance.md).

    .venv/bin/python bench/bus.py                     # both adapters, 20,000 messages each
    .venv/bin/python bench/bus.py --adapters embedded --messages 50000

RabbitMQ: LIAISON_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/); start it with
deploy/scripts/start-rabbitmq.sh. The goal for ingest is >= 2,000 msg/s (spec/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiormq  # noqa: E402
import structlog  # noqa: E402

from bench.ceilings import amqp_batched_confirms  # noqa: E402
from channels.amqp import AmqpBus  # noqa: E402
from channels.embedded import EmbeddedBus  # noqa: E402
from router.settle import RetryPolicy, settle  # noqa: E402

AMQP_URL = os.environ.get("LIAISON_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
BODY = os.urandom(1024).hex().encode()          # 2 KB
PUBLISHERS = 8
PREFIX = "liaison-bench."


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def bench_publish(bus, queue: str, count: int) -> dict:
    latencies: list[float] = []
    per_publisher = count // PUBLISHERS

    async def publisher(n: int) -> None:
        for i in range(per_publisher):
            started = time.perf_counter()
            await bus.publish(queue, BODY, message_id=f"{n}-{i}", headers={"source": "bench"})
            latencies.append(time.perf_counter() - started)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(publisher(n) for n in range(PUBLISHERS)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = per_publisher * PUBLISHERS
    return {"rate": done / wall, "p50": percentile(latencies, 0.5) * 1000,
            "p99": percentile(latencies, 0.99) * 1000, "cpu": cpu / done * 1e6, "count": done}


async def bench_consume(bus, queue: str, count: int, prefetch: int) -> dict:
    done = asyncio.Event()
    acked = 0
    policy = RetryPolicy()

    async def work(envelope) -> None:
        pass

    async def handler(delivery) -> None:
        nonlocal acked
        await settle(delivery, work, policy, queue=queue)
        acked += 1
        if acked >= count:
            done.set()

    cpu, wall = time.process_time(), time.perf_counter()
    subscription = await bus.consume(queue, handler, prefetch=prefetch)
    await asyncio.wait_for(done.wait(), 600)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await subscription.cancel()
    return {"rate": count / wall, "cpu": cpu / count * 1e6}


def ceiling_sqlite(count: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        conn = sqlite3.connect(Path(directory) / "ceiling.sqlite", isolation_level=None)
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, q TEXT, b BLOB)")
        started = time.perf_counter()
        for _ in range(count // 100):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO t (q, b) VALUES ('q', ?)", [(BODY,)] * 100)
            conn.execute("COMMIT")
        rate = (count // 100 * 100) / (time.perf_counter() - started)
        conn.close()
    return rate


async def ceiling_amqp(count: int) -> float:
    return await amqp_batched_confirms(AMQP_URL, BODY, count)


async def run(adapter: str, count: int, prefetch: int) -> None:
    queue = f"bench.{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as directory:
        if adapter == "embedded":
            bus = EmbeddedBus(Path(directory) / "bus.sqlite")
            ceiling = await asyncio.to_thread(ceiling_sqlite, count)
        else:
            bus = AmqpBus(AMQP_URL, prefix=PREFIX)
            ceiling = await ceiling_amqp(count)
        await bus.connect()
        try:
            published = await bench_publish(bus, queue, count)
            consumed = await bench_consume(bus, queue, published["count"], prefetch)
        finally:
            if adapter == "amqp":
                await _delete_amqp_queues(bus, queue)
            await bus.close()
    print(f"{adapter:9} publish  {published['rate']:8,.0f} msg/s  p50 {published['p50']:6.2f} ms  "
          f"p99 {published['p99']:6.2f} ms  cpu {published['cpu']:6.0f} us/msg  "
          f"ceiling {ceiling:8,.0f} msg/s  ratio {published['rate'] / ceiling:5.0%}  "
          f"goal 2,000: {'ok' if published['rate'] >= 2000 else 'MISSED'}")
    print(f"{adapter:9} consume  {consumed['rate']:8,.0f} msg/s  (prefetch {prefetch}, settle/ack each)"
          f"{'':22}cpu {consumed['cpu']:6.0f} us/msg")


async def _delete_amqp_queues(bus: AmqpBus, queue: str) -> None:
    connection = await aiormq.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        for suffix in ("", ".parked"):
            await channel.queue_delete(PREFIX + queue + suffix)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", default="embedded,amqp")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--prefetch", type=int, default=256)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))   # warnings and up
    print(f"bus bench: {args.messages:,} messages of {len(BODY)} bytes, {PUBLISHERS} concurrent publishers")
    for adapter in args.adapters.split(","):
        asyncio.run(run(adapter.strip(), args.messages, args.prefetch))


if __name__ == "__main__":
    main()
