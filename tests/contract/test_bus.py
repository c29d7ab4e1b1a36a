"""The Bus contract: every adapter (EmbeddedBus, AmqpBus) must pass each test here.

Tests settle through ``router.settle.settle`` as the engine does. Absence of a message is
checked with a marker: publish a marker after the fact and drain the queue (one at a time,
in order) until the marker shows up; anything that was not removed comes out first.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import aio_pika
import pytest
from aiormq.exceptions import ChannelPreconditionFailed

from router.errors import BusUnavailable, PeerUnavailable, ValidationError
from router.ports import Envelope
from router.settle import PARK_REASON_HEADER, RetryPolicy, settle
from tests.contract.conftest import AMQP_TEST_PREFIX, FAST_RETRY, open_bus
from tests.support import poll

DEADLINE = 20.0
REPO = Path(__file__).resolve().parents[2]


async def eventually(predicate, what: str):
    """Poll until ``predicate`` holds, with this suite's deadline (a broker can be slow under load)."""
    return await poll.eventually(predicate, what, timeout=DEADLINE, interval=0.02)


async def _count(awaitable, n: int) -> bool:
    """For ``eventually``: whether the awaited list has ``n`` items."""
    return len(await awaitable) == n


async def run_worker(bus, queue, work, *, policy: RetryPolicy = FAST_RETRY, prefetch: int = 16):
    """Consume ``queue`` the way the engine does; return (subscription, outcomes)."""
    outcomes: list[tuple[str, str]] = []

    async def handler(delivery):
        outcomes.append((delivery.envelope.message_id, await settle(delivery, work, policy, queue=queue)))

    return await bus.consume(queue, handler, prefetch=prefetch), outcomes


async def ids_before_marker(bus, queue) -> list[str]:
    """Ids delivered from ``queue`` up to a freshly published marker (everything is acked)."""
    await bus.publish(queue, b"marker", message_id="marker")
    seen: list[str] = []

    async def record(envelope: Envelope) -> None:
        seen.append(envelope.message_id)

    subscription, _ = await run_worker(bus, queue, record, prefetch=1)
    await eventually(lambda: "marker" in seen, "the marker")
    await subscription.cancel()
    return seen


async def test_round_trip_keeps_body_id_and_headers(bus, queue):
    body = bytes(range(256)) * 8
    await bus.publish(queue, body, message_id="MSG-0001", headers={"sending-app": "HIS", "note": "é"})
    seen: list[Envelope] = []

    async def work(envelope):
        seen.append(envelope)

    await run_worker(bus, queue, work)
    await eventually(lambda: seen, "the delivery")
    assert seen[0] == Envelope(body=body, message_id="MSG-0001",
                               headers={"sending-app": "HIS", "note": "é"}, attempt=0)


async def test_published_message_survives_a_new_bus_object(bus_factory, queue):
    first = await bus_factory()
    await first.publish(queue, b"durable", message_id="D-1", headers={"k": "v"})
    await first.close()
    second = await bus_factory()
    seen: list[Envelope] = []

    async def work(envelope):
        seen.append(envelope)

    await run_worker(second, queue, work)
    await eventually(lambda: seen, "the message published before the reopen")
    assert (seen[0].body, seen[0].message_id, dict(seen[0].headers)) == (b"durable", "D-1", {"k": "v"})


async def test_ack_removes_the_message(bus_factory, queue):
    first = await bus_factory()
    await first.publish(queue, b"once", message_id="A-1")

    async def work(envelope):
        pass

    _, outcomes = await run_worker(first, queue, work)
    await eventually(lambda: outcomes, "the ack")
    await first.close()
    assert outcomes == [("A-1", "ack")]
    assert await ids_before_marker(await bus_factory(), queue) == ["marker"]


async def test_transient_error_comes_back_after_the_delay_with_attempt_plus_one(bus, queue):
    await bus.publish(queue, b"payload", message_id="T-1", headers={"kind": "mail"})
    seen: list[Envelope] = []

    async def work(envelope):
        seen.append(envelope)
        if envelope.attempt == 0:
            raise PeerUnavailable("relay down")

    _, outcomes = await run_worker(bus, queue, work)
    await eventually(lambda: len(outcomes) == 2, "the retried delivery")
    assert outcomes == [("T-1", "retry"), ("T-1", "ack")]
    assert [e.attempt for e in seen] == [0, 1]
    assert seen[1].body == b"payload"
    assert seen[1].headers == {"kind": "mail", "x-last-error": "PeerUnavailable: relay down"}
    assert await bus.parked(queue) == []


async def test_spent_retries_park_the_message_with_the_reason(bus, queue):
    await bus.publish(queue, b"payload", message_id="S-1", headers={"kind": "mail"})
    attempts: list[int] = []

    async def work(envelope):
        attempts.append(envelope.attempt)
        raise PeerUnavailable("relay down")

    await run_worker(bus, queue, work)
    parked = await eventually(lambda: bus.parked(queue), "the parked message")
    assert attempts == [0, 1, 2]
    assert [(e.message_id, e.body, e.attempt) for e in parked] == [("S-1", b"payload", 2)]
    assert parked[0].headers[PARK_REASON_HEADER] == \
        "retries spent after 3 attempts; last: PeerUnavailable: relay down"
    assert parked[0].headers["kind"] == "mail"


async def test_permanent_error_parks_at_once(bus, queue):
    await bus.publish(queue, b"payload", message_id="P-1")

    async def work(envelope):
        raise ValidationError("PID-3 does not match the CDA")

    _, outcomes = await run_worker(bus, queue, work)
    parked = await eventually(lambda: bus.parked(queue), "the parked message")
    assert outcomes == [("P-1", "park")]
    assert parked[0].attempt == 0
    assert parked[0].headers[PARK_REASON_HEADER] == "ValidationError: PID-3 does not match the CDA"


async def test_parked_lists_oldest_first_and_replay_moves_one_back(bus, queue):
    failing = {"on": True}
    seen: list[Envelope] = []

    async def work(envelope):
        seen.append(envelope)
        if failing["on"]:
            raise ValidationError("bad document")

    for n in range(3):
        await bus.publish(queue, f"body {n}".encode(), message_id=f"R-{n}")
    subscription, _ = await run_worker(bus, queue, work, prefetch=1)
    await eventually(lambda: _count(bus.parked(queue), 3), "three parked messages")
    assert [e.message_id for e in await bus.parked(queue, limit=2)] == ["R-0", "R-1"]
    assert [e.message_id for e in await bus.parked(queue, limit=2)] == ["R-0", "R-1"]   # listing removes nothing

    failing["on"] = False
    assert await bus.replay(queue, "R-1") is True
    await eventually(lambda: len(seen) == 4, "the replayed message")
    assert (seen[3].message_id, seen[3].body, seen[3].attempt) == ("R-1", b"body 1", 0)
    assert PARK_REASON_HEADER not in seen[3].headers
    assert [e.message_id for e in await bus.parked(queue)] == ["R-0", "R-2"]
    assert await bus.replay(queue, "no-such-id") is False
    await subscription.cancel()



async def test_depth_counts_waiting_and_parked_jobs_without_taking_them(bus, queue):
    empty = await bus.depth(queue)
    assert (empty.queue, empty.waiting, empty.parked) == (queue, 0, 0)
    for n in range(3):
        await bus.publish(queue, f"body {n}".encode(), message_id=f"D-{n}")
    await eventually(lambda: _depth_is(bus, queue, 3, 0), "three waiting")

    async def work(envelope):
        raise ValidationError("bad document")

    subscription, _ = await run_worker(bus, queue, work, prefetch=1)
    await eventually(lambda: _depth_is(bus, queue, 0, 3), "three parked")
    await subscription.cancel()
    assert len(await bus.parked(queue)) == 3               # counting took nothing


async def _depth_is(bus, queue, waiting: int, parked: int) -> bool:
    depth = await bus.depth(queue)
    return (depth.waiting, depth.parked) == (waiting, parked)

async def test_unsettled_delivery_is_redelivered_when_its_consumer_bus_closes(bus, bus_factory, queue):
    await bus.publish(queue, b"held", message_id="U-1")
    consumer = await bus_factory()
    held = []

    async def forgetful(delivery):       # returns without settling, as a crashed handler would
        held.append(delivery.envelope.message_id)

    await consumer.consume(queue, forgetful)
    await eventually(lambda: held, "the first delivery")
    await consumer.close()

    seen: list[Envelope] = []

    async def work(envelope):
        seen.append(envelope)

    await run_worker(await bus_factory(), queue, work)
    await eventually(lambda: seen, "the redelivery")
    assert (seen[0].message_id, seen[0].attempt) == ("U-1", 0)


async def test_cancelled_subscription_returns_what_it_held(bus, queue):
    await bus.publish(queue, b"held", message_id="C-1")
    held = []

    async def forgetful(delivery):
        held.append(delivery)

    subscription = await bus.consume(queue, forgetful)
    await eventually(lambda: held, "the first delivery")
    await subscription.cancel()
    assert await ids_before_marker(bus, queue) == ["C-1", "marker"]


async def test_a_delivery_settles_only_once(bus, queue):
    await bus.publish(queue, b"x", message_id="O-1")
    errors = []

    async def handler(delivery):
        await delivery.ack()
        try:
            await delivery.ack()
        except RuntimeError as exc:
            errors.append(exc)

    await bus.consume(queue, handler)
    await eventually(lambda: errors, "the second ack to fail")


async def test_close_lets_the_running_handler_finish_and_publish(bus_factory, new_queue):
    queue, next_queue = new_queue(), new_queue()
    consumer = await bus_factory()
    await consumer.publish(queue, b"slow", message_id="G-1")
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(envelope):
        started.set()
        await release.wait()
        await consumer.publish(next_queue, b"result", message_id="G-1-result")

    _, outcomes = await run_worker(consumer, queue, slow)
    await eventually(started.is_set, "the handler to start")
    closing = asyncio.create_task(consumer.close())
    done, _ = await asyncio.wait({closing}, timeout=0.3)
    assert not done, "close() returned while a handler was still running"
    release.set()
    await closing
    assert outcomes == [("G-1", "ack")]
    after = await bus_factory()
    assert await ids_before_marker(after, queue) == ["marker"]
    assert await ids_before_marker(after, next_queue) == ["G-1-result", "marker"]


async def test_200_messages_with_prefetch_16_are_each_acked_exactly_once(bus, bus_factory, queue):
    ids = [f"M-{n:03d}" for n in range(200)]
    await asyncio.gather(*(bus.publish(queue, b"x" * 2048, message_id=i) for i in ids))
    in_flight, peak = 0, 0

    async def work(envelope):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.002)       # simulated work, so deliveries overlap
        in_flight -= 1

    subscription, outcomes = await run_worker(bus, queue, work, prefetch=16)
    await eventually(lambda: len(outcomes) >= 200, "200 acks")
    await bus.close()
    assert Counter(outcomes) == Counter((i, "ack") for i in ids)
    assert 1 < peak <= 16
    assert await ids_before_marker(await bus_factory(), queue) == ["marker"]


async def test_publish_to_an_unreachable_store_raises_bus_unavailable(unreachable_bus, queue):
    with pytest.raises(BusUnavailable):
        await unreachable_bus.publish(queue, b"x", message_id="X-1")
    with pytest.raises(BusUnavailable):
        await unreachable_bus.connect()


async def test_bad_queue_names_are_refused(bus):
    for name in ("", "Upper", "with space", "slash/name", "x" * 201):
        with pytest.raises(ValueError):
            await bus.publish(name, b"x", message_id="N-1")


CRASHING_CONSUMER = """
import asyncio, sys
from tests.contract.conftest import open_bus

async def main(url, queue):
    bus = open_bus(url)
    async def hold(delivery):
        print("received", delivery.envelope.message_id, flush=True)
        await asyncio.Event().wait()
    await bus.consume(queue, hold)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_delivery_held_by_a_killed_process_is_redelivered(bus_factory, bus_url, queue):
    first = await bus_factory()
    await first.publish(queue, b"work", message_id="K-1")
    await first.close()                  # the embedded file is now free for the other process

    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_CONSUMER, bus_url, queue, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        line = await asyncio.wait_for(_line_starting(child.stdout, "received "), DEADLINE)
    finally:
        child.kill()                     # SIGKILL: no close(), no cleanup
        await child.wait()
    assert line.split() == ["received", "K-1"]

    seen: list[Envelope] = []

    async def work(envelope):
        seen.append(envelope)

    await run_worker(await bus_factory(), queue, work)
    await eventually(lambda: seen, "the redelivery after the crash")
    assert (seen[0].message_id, seen[0].attempt) == ("K-1", 0)


async def _line_starting(stream: asyncio.StreamReader, prefix: str) -> str:
    """The first output line starting with ``prefix`` (the child's logs go to stdout too)."""
    while line := (await stream.readline()).decode():
        if line.startswith(prefix):
            return line
    pytest.fail(f"the child process ended without printing {prefix!r}")


# ------------------------------------------------ adapter-specific guarantees

SECOND_PROCESS = """
import asyncio, sys
import channels.embedded.store
from router.errors import BusUnavailable
from tests.contract.conftest import open_bus

channels.embedded.store.BUSY_TIMEOUT = 0.2

async def main(url, queue):
    try:
        await open_bus(url).publish(queue, b"x", message_id="second-process")
    except BusUnavailable as exc:
        print("BusUnavailable:", exc, flush=True)
    else:
        print("published", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize("bus_kind", ["embedded"])
async def test_embedded_file_is_refused_to_a_second_process(bus, bus_url, queue):
    await bus.publish(queue, b"x", message_id="first-process")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SECOND_PROCESS, bus_url, queue, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=asyncio.subprocess.PIPE)
    output, _ = await asyncio.wait_for(child.communicate(), DEADLINE)
    assert "BusUnavailable: embedded bus" in output.decode()
    assert "in use by another process" in output.decode()


@pytest.mark.parametrize("bus_kind", ["amqp", pytest.param("amqp-cluster", marks=pytest.mark.rabbitmq_cluster)])
async def test_amqp_stage_and_parked_queues_are_durable_quorum_queues(bus, bus_url, queue):
    await bus.publish(queue, b"x", message_id="Q-1")
    connection = await aio_pika.connect(bus_url.split(",")[0])
    try:
        for name in (AMQP_TEST_PREFIX + queue, AMQP_TEST_PREFIX + queue + ".parked"):
            channel = await connection.channel()
            await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
            with pytest.raises(ChannelPreconditionFailed):
                await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "classic"})
    finally:
        await connection.close()


@pytest.mark.parametrize("bus_kind", ["amqp"])
async def test_amqp_a_handler_in_flight_when_the_connection_drops_runs_to_its_end(bus_url, queue):
    """aiormq cancels its delivery tasks when the connection drops; the handler must not be cut there
    (between a relay's 250 and the journal's write, that mailed a recipient twice: the fault suite)."""
    bus = open_bus(bus_url)
    try:
        await bus.publish(queue, b"x", message_id="DROP-1")
        started, ends = asyncio.Event(), []

        async def handler(delivery):
            started.set()
            try:
                await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                ends.append("cancelled")
                raise
            ends.append("finished")

        subscription = await bus.consume(queue, handler)
        await asyncio.wait_for(started.wait(), DEADLINE)
        bus._connection.transport.connection._reader_task.cancel()     # the broker's side of it, gone
        await eventually(lambda: ends, "the handler's end")
        assert ends == ["finished"]
        await subscription.cancel()
    finally:
        await bus.close()


@pytest.mark.parametrize("bus_kind", ["amqp", pytest.param("amqp-cluster", marks=pytest.mark.rabbitmq_cluster)])
async def test_amqp_publish_the_broker_returns_is_bus_unavailable(bus_url, new_queue):
    bus = open_bus(bus_url)
    try:
        with pytest.raises(BusUnavailable, match="NO_ROUTE"):
            await bus.send(AMQP_TEST_PREFIX + new_queue(), b"x", "R-1", {})      # no such queue: returned
    finally:
        await bus.close()

