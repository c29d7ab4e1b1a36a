"""Stage ceilings, measured in the same run as a benchmark so that its figures have something to stand against.

Rates on a shared machine move from one minute to the next (spec/performance.md): a ceiling
measured an hour earlier says little. These are the bare stages, with none of Liaison's work:

- RabbitMQ: persistent messages to a quorum queue with publisher confirms, 100 in flight at a time
  (the "batched confirms" ceiling of spec/performance.md), with the benchmark's own message body; and
  the same with as many publishers as the door has connections, each waiting for its confirm before
  the next, as the door does (one message in flight per MLLP connection waiting for its ACK);
- the mail relay: the local TLS sink (``bench/smtp_sink.py``) in its own process, mails of the
  given size over STARTTLS with the client certificate, on ``connections`` reused connections.

The bare MLLP echo is ``bench/ingest.py``'s (``measure_echo``).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiormq
import aiosmtplib

from channels.smtp.tls import client_context
from channels.testing.local import free_port, wait_port
from channels.testing.pki import make_test_pki

ROOT = Path(__file__).resolve().parents[1]
BATCH = 100
PERSISTENT = aiormq.spec.Basic.Properties(delivery_mode=2)


@contextlib.asynccontextmanager
async def quorum_queue(url: str) -> AsyncIterator[tuple[aiormq.abc.AbstractChannel, str]]:
    """A confirming channel and a quorum queue of its own, deleted after."""
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        name = f"liaison-bench.ceiling.{uuid.uuid4().hex[:8]}"
        await channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
        yield channel, name
        await channel.queue_delete(name)
    finally:
        await connection.close()


async def amqp_batched_confirms(url: str, body: bytes, count: int) -> float:
    """Messages/s published with confirms, ``BATCH`` in flight, to a quorum queue of its own."""
    async with quorum_queue(url) as (channel, name):
        started = time.perf_counter()
        for _ in range(count // BATCH):
            await asyncio.gather(*(channel.basic_publish(body, routing_key=name, properties=PERSISTENT)
                                   for _ in range(BATCH)))
        return count // BATCH * BATCH / (time.perf_counter() - started)


async def amqp_confirm_each(url: str, body: bytes, count: int, publishers: int) -> tuple[float, float]:
    """(messages/s, p50 ms) with ``publishers`` concurrent publishers each awaiting its confirm before the next."""
    latencies: list[float] = []
    async with quorum_queue(url) as (channel, name):
        async def one_publisher() -> None:
            for _ in range(count // publishers):
                sent = time.perf_counter()
                await channel.basic_publish(body, routing_key=name, properties=PERSISTENT, mandatory=True)
                latencies.append(time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(one_publisher() for _ in range(publishers)))
        rate = len(latencies) / (time.perf_counter() - started)
    return rate, sorted(latencies)[len(latencies) // 2] * 1000


async def smtp_sink(count: int, size: int, connections: int = 16) -> float:
    """Mails/s the TLS sink accepts (one recipient each, ``size`` bytes), over ``connections`` kept open."""
    with tempfile.TemporaryDirectory(prefix="liaison-ceiling-") as tmp:
        pki = make_test_pki(Path(tmp) / "pki")
        port = free_port()
        sink = subprocess.Popen([sys.executable, "-m", "bench.smtp_sink", "--pki", str(Path(tmp) / "pki"),
                                 "--maildir", str(Path(tmp) / "mail"), "--port", str(port)],
                                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            await wait_port(port, time.monotonic() + 30)
            context = client_context(client_cert=pki.client_cert, client_key=pki.client_key, ca_file=pki.ca_cert)
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "a@ceiling.test", "b@ceiling.test", "ceiling"
            message.set_content("x" * size)
            per_connection = count // connections

            async def one_connection() -> None:
                client = aiosmtplib.SMTP(hostname="localhost", port=port, tls_context=context, start_tls=True)
                await client.connect()
                for _ in range(per_connection):
                    await client.send_message(message)
                await client.quit()

            started = time.perf_counter()
            await asyncio.gather(*(one_connection() for _ in range(connections)))
            return per_connection * connections / (time.perf_counter() - started)
        finally:
            sink.terminate()
            sink.wait(timeout=30)
