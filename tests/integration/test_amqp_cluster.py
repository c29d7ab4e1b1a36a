"""The AMQP bus on a three-node RabbitMQ cluster: it fails over when its node stops, and loses nothing.

Needs the cluster of deploy/scripts/start-rabbitmq-cluster.sh (``LIAISON_AMQP_CLUSTER_URLS``, node A
``liaison-a@localhost`` first); skipped without it unless ``LIAISON_REQUIRE_RABBITMQ_CLUSTER=1``.
Node A is stopped with ``rabbitmqctl stop_app`` (its listener closes and its client connections are
cut; the Erlang VM stays up), or its VM is killed (SIGKILL: no goodbye to clients or to the other
nodes), and started again when the test ends, however it ends (``start_app``, or
start-rabbitmq-cluster.sh, which restarts the nodes of its cluster that are down).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import pytest
from structlog.testing import capture_logs

from channels.amqp import AmqpBus
from router.errors import BusUnavailable
from tests.contract.conftest import AMQP_CLUSTER_URLS, check_rabbitmq_cluster
from tests.support import poll

pytestmark = pytest.mark.rabbitmq_cluster

URLS = AMQP_CLUSTER_URLS.split(",")
NODE_A = "liaison-a@localhost"
CLUSTER_STATE = Path("/run/liaison-rabbitmq-cluster")     # written by start-rabbitmq-cluster.sh
REPO = Path(__file__).resolve().parents[2]
PREFIX = "liaison-cluster-test."
BEFORE_STOP = 200                      # confirmed messages before node A is stopped
AFTER_FAILOVER = 200                   # confirmed through B or C before publishing ends
MAX_MESSAGES = 50_000
PUBLISHERS = 4
PREFETCH = 16
DEADLINE = 90.0


def host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


async def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl -q ARGS`` (bounded); fail the test with its output when it fails."""
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), DEADLINE)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, f"rabbitmqctl {' '.join(args)}: {output.decode(errors='replace')}"
    return output.decode()


def beam_pids(node: str) -> list[int]:
    """The pids of the Erlang VM running ``node`` (found by the RABBITMQ_NODENAME in its environment)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "beam.smp" and \
                    f"RABBITMQ_NODENAME={node}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


async def start_cluster_again() -> None:
    process = await asyncio.create_subprocess_exec(
        str(REPO / "deploy" / "scripts" / "start-rabbitmq-cluster.sh"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, output.decode(errors="replace")


@asynccontextmanager
async def node_stopped(node: str, how: str = "stop_app") -> AsyncIterator[None]:
    """Node ``node`` stopped (``stop_app``) or its VM killed (``kill``) inside the block, running again in the
    cluster after it."""
    if how == "kill":
        if not CLUSTER_STATE.is_file():
            pytest.skip(f"killing a node needs the cluster of start-rabbitmq-cluster.sh ({CLUSTER_STATE})")
        pids = beam_pids(node)
        assert pids, f"no Erlang VM runs {node}"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    else:
        await rabbitmqctl("-n", node, "stop_app")
    try:
        yield
    finally:
        if how == "kill":
            await start_cluster_again()
        else:
            await rabbitmqctl("-n", node, "start_app")

        async def all_running() -> bool:
            return (await rabbitmqctl("-n", node, "eval", "length(rabbit_nodes:all_running()).")).strip() == "3"

        await poll.eventually(all_running, f"{node} running in the cluster again", timeout=DEADLINE, interval=0.2)


@pytest.fixture
async def cluster_queue() -> AsyncIterator[str]:
    """A fresh stage queue name on the cluster; its queues are deleted afterwards."""
    await check_rabbitmq_cluster()
    name = f"failover.{uuid.uuid4().hex[:12]}"
    yield name
    connection = await aio_pika.connect(URLS[0])
    try:
        channel = await connection.channel()
        for suffix in ("", ".parked"):
            await channel.queue_delete(PREFIX + name + suffix)
    finally:
        await connection.close()


@pytest.mark.parametrize("how", ["stop_app", "kill"])
async def test_a_bus_whose_node_stops_moves_to_another_node_and_loses_no_confirmed_message(cluster_queue, how):
    bus = AmqpBus(URLS, prefix=PREFIX, connect_timeout=5.0)
    await bus.connect()
    assert bus.node == host(URLS[0])
    loop = asyncio.get_running_loop()
    numbers = itertools.count()
    published: list[str] = []
    acked: Counter[str] = Counter()
    uncertain: set[str] = set()            # a publish attempt failed: the broker may or may not hold a copy
    confirmed: dict[str, float] = {}       # message id -> when its confirm came
    on_other_node: list[str] = []          # confirmed while connected to B or C
    stopping = asyncio.Event()

    async def handle(delivery):
        await asyncio.sleep(0)             # let deliveries pile up unacked, as real stages do
        try:
            await delivery.ack()
        except BusUnavailable:
            return                         # redelivered by the cluster
        acked[delivery.envelope.message_id] += 1

    async def publisher() -> None:
        """Publish until AFTER_FAILOVER messages went through another node; each retried until confirmed."""
        while len(on_other_node) < AFTER_FAILOVER and len(published) < MAX_MESSAGES:
            message_id = f"F-{next(numbers):05d}"
            published.append(message_id)
            deadline = loop.time() + DEADLINE
            while True:
                try:
                    await bus.publish(cluster_queue, message_id.encode(), message_id=message_id)
                    break
                except BusUnavailable:
                    uncertain.add(message_id)
                    assert loop.time() < deadline, f"{message_id} never confirmed"
                    await asyncio.sleep(0.05)      # pace the retries, as a caller's backoff does
            confirmed[message_id] = loop.time()
            if bus.node not in (None, host(URLS[0])):
                on_other_node.append(message_id)
            if len(confirmed) == BEFORE_STOP:
                stopping.set()

    with capture_logs() as logs:
        await bus.consume(cluster_queue, handle, prefetch=PREFETCH)
        try:
            publishers = [asyncio.create_task(publisher()) for _ in range(PUBLISHERS)]
            await asyncio.wait_for(stopping.wait(), DEADLINE)
            stop_started = loop.time()
            async with node_stopped(NODE_A, how):
                await asyncio.wait_for(asyncio.gather(*publishers), DEADLINE)
                node_after = bus.node
                await poll.eventually(lambda: set(acked) >= set(published), "every confirmed message consumed",
                                      timeout=DEADLINE, interval=0.05)
        finally:
            for task in publishers:
                task.cancel()
            await bus.close()

    assert len(on_other_node) >= AFTER_FAILOVER
    assert node_after in (host(URLS[1]), host(URLS[2]))
    assert set(confirmed) == set(published)
    assert set(acked) == set(published)                      # nothing lost, nothing foreign
    duplicates = {message_id for message_id, n in acked.items() if n > 1}
    # At-least-once: a copy may come twice when its publish confirm or its ack was cut by the stop.
    assert len(duplicates) <= len(uncertain) + PREFETCH, (duplicates, uncertain)
    assert any(entry["event"] == "bus.amqp.reconnected" for entry in logs)
    after = sorted([stop_started, *(t for t in confirmed.values() if t > stop_started)])
    pause = max(b - a for a, b in zip(after, after[1:]))
    print(f"\nfailover ({how}): {len(published)} confirmed, {len(acked)} consumed, {len(duplicates)} duplicate(s), "
          f"{len(uncertain)} publish(es) retried; longest pause between confirms {pause:.2f} s; "
          f"then on {node_after}")


async def test_a_bus_connects_to_the_next_node_when_the_first_is_down(cluster_queue):
    async with node_stopped(NODE_A):
        bus = AmqpBus(URLS, prefix=PREFIX, connect_timeout=5.0)
        started = time.monotonic()
        try:
            await bus.connect()
            connected_in = time.monotonic() - started
            assert bus.node == host(URLS[1])
            got: list[str] = []

            async def handle(delivery):
                got.append(delivery.envelope.message_id)
                await delivery.ack()

            await bus.consume(cluster_queue, handle)
            await bus.publish(cluster_queue, b"x", message_id="N-1")
            await poll.eventually(lambda: got, "the message through node B", timeout=DEADLINE)
        finally:
            await bus.close()
    assert got == ["N-1"]
    print(f"\nconnected to {host(URLS[1])} in {connected_in:.2f} s with {host(URLS[0])} down")


async def test_stage_and_parked_queues_have_a_member_on_every_node(cluster_queue):
    bus = AmqpBus(URLS, prefix=PREFIX, connect_timeout=5.0)
    try:
        await bus.publish(cluster_queue, b"x", message_id="M-1")
    finally:
        await bus.close()
    listed = json.loads(await rabbitmqctl("-n", NODE_A, "list_queues", "name", "members", "--formatter", "json"))
    members = {queue["name"]: sorted(queue["members"]) for queue in listed}
    nodes = sorted(f"liaison-{letter}@localhost" for letter in "abc")
    assert members[PREFIX + cluster_queue] == nodes
    assert members[PREFIX + cluster_queue + ".parked"] == nodes
