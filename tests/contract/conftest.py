"""Fixtures shared by the contract suites.

One suite per port, each run against every adapter of that port: ``test_bus.py``, ``test_journal.py``,
``test_directory.py``, ``test_mailer.py``, ``test_shared_record.py``, ``test_ack_sink.py``,
``test_address_check.py``. A suite whose adapters need nothing from the others keeps its adapter
list and fixtures in its own file (``ADAPTERS`` and a parametrised fixture); the bus ones live here.

Bus: every test that asks for ``bus_kind`` (directly or through ``bus``, ``bus_factory``,
``bus_url``) runs three times, on ``EmbeddedBus`` (a fresh SQLite file), on ``AmqpBus``
(the broker at ``LIAISON_AMQP_URL``, default amqp://guest:guest@127.0.0.1:5672/, queues
prefixed ``liaison-test.`` and deleted after the test), and on ``AmqpBus`` given the three
nodes of the cluster at ``LIAISON_AMQP_CLUSTER_URLS`` (comma-separated; default the one
deploy/scripts/start-rabbitmq-cluster.sh starts on 5701-5703; marked ``rabbitmq_cluster``).
When RabbitMQ is not reachable the AMQP runs are skipped, or fail when
``LIAISON_REQUIRE_RABBITMQ=1`` (as in CI); the cluster runs likewise with
``LIAISON_REQUIRE_RABBITMQ_CLUSTER=1``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable

import aio_pika
import pytest

from channels.amqp import AmqpBus
from channels.embedded import EmbeddedBus
from channels.sealed_bus import SealedBus
from router.errors import BusUnavailable
from router.settle import RetryPolicy

# ----------------------------------------------------------------------------- bus

AMQP_URL = os.environ.get("LIAISON_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
AMQP_CLUSTER_URLS = os.environ.get("LIAISON_AMQP_CLUSTER_URLS", ",".join(
    f"amqp://guest:guest@127.0.0.1:{port}/" for port in (5701, 5702, 5703)))
AMQP_TEST_PREFIX = "liaison-test."
FAST_RETRY = RetryPolicy(delays=(0.2, 0.2))       # the only delays the bus tests use

_rabbitmq_problem: dict[str, str | None] = {}


def open_bus(url: str):
    """A bus object (not connected) for a URL, or comma-separated node URLs, as the composition root would build it."""
    if url.startswith("embedded:"):
        return EmbeddedBus.from_url(url)
    return AmqpBus.from_url(url.split(","), prefix=AMQP_TEST_PREFIX, connect_timeout=5.0)


async def _probe(url: str) -> str | None:
    """None when the broker at ``url`` accepts a connection, else why not."""
    if url not in _rabbitmq_problem:
        probe = AmqpBus(url, connect_timeout=5.0)
        try:
            await probe.connect()
            _rabbitmq_problem[url] = None
        except BusUnavailable as exc:
            _rabbitmq_problem[url] = str(exc)
        finally:
            await probe.close()
    return _rabbitmq_problem[url]


async def _check_rabbitmq() -> None:
    problem = await _probe(AMQP_URL)
    if problem is None:
        return
    if os.environ.get("LIAISON_REQUIRE_RABBITMQ") == "1":
        pytest.fail(f"LIAISON_REQUIRE_RABBITMQ=1 but RabbitMQ is not reachable: {problem}",
                    pytrace=False)
    pytest.skip("RabbitMQ not running: start it with deploy/scripts/start-rabbitmq.sh")


async def check_rabbitmq_cluster() -> None:
    """Skip (or fail, with LIAISON_REQUIRE_RABBITMQ_CLUSTER=1) unless every node of the test cluster answers."""
    problems = [problem for url in AMQP_CLUSTER_URLS.split(",") if (problem := await _probe(url))]
    if not problems:
        return
    if os.environ.get("LIAISON_REQUIRE_RABBITMQ_CLUSTER") == "1":
        pytest.fail(f"LIAISON_REQUIRE_RABBITMQ_CLUSTER=1 but a node of the cluster is not reachable: {problems[0]}",
                    pytrace=False)
    pytest.skip("RabbitMQ cluster not running: start it with deploy/scripts/start-rabbitmq-cluster.sh")


@pytest.fixture(params=["embedded", "amqp", pytest.param("amqp-cluster", marks=pytest.mark.rabbitmq_cluster)])
def bus_kind(request) -> str:
    return request.param


@pytest.fixture(params=["clear", "sealed"])
def sealing(request) -> bytes | None:
    """Each adapter runs the contract as is and wrapped in SealedBus (bodies encrypted at rest)."""
    return os.urandom(32) if request.param == "sealed" else None


@pytest.fixture
async def bus_url(bus_kind, tmp_path) -> str:
    """Where the test's store lives: a fresh SQLite file, or the test broker."""
    if bus_kind == "embedded":
        return f"embedded://{tmp_path / 'bus.sqlite'}?poll_interval=0.05&close_timeout=5"
    if bus_kind == "amqp-cluster":
        await check_rabbitmq_cluster()
        return AMQP_CLUSTER_URLS
    await _check_rabbitmq()
    return AMQP_URL


@pytest.fixture
async def bus_factory(bus_url, sealing) -> Callable[[], Awaitable]:
    """Make new, connected bus objects on the same store or broker; all closed at the end."""
    made = []

    async def make():
        bus = open_bus(bus_url) if sealing is None else SealedBus(open_bus(bus_url), sealing)
        made.append(bus)
        await bus.connect()
        return bus

    yield make
    for bus in reversed(made):
        await bus.close()


@pytest.fixture
async def bus(bus_factory):
    return await bus_factory()


@pytest.fixture
async def new_queue(bus_url) -> Callable[[], str]:
    """Make unique queue names (using every allowed kind of character); AMQP queues are deleted after."""
    names: list[str] = []

    def make() -> str:
        names.append(f"t.{uuid.uuid4().hex[:12]}_x-1")
        return names[-1]

    yield make
    if bus_url.startswith("amqp") and names:
        connection = await aio_pika.connect(bus_url.split(",")[0])
        try:
            channel = await connection.channel()
            suffixes = ["", ".parked"] + [f".retry.{round(d * 1000)}" for d in FAST_RETRY.delays]
            for name in names:
                for suffix in suffixes:
                    await channel.queue_delete(AMQP_TEST_PREFIX + name + suffix)
        finally:
            await connection.close()


@pytest.fixture
def queue(new_queue) -> str:
    return new_queue()


@pytest.fixture
def unreachable_bus(bus_kind, tmp_path):
    """A bus whose store cannot be reached: a path under a regular file, or a closed port."""
    if bus_kind == "embedded":
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("a file where a directory should be\n")
        return EmbeddedBus(blocker / "bus.sqlite")
    nodes = 3 if bus_kind == "amqp-cluster" else 1
    ports = []
    for _ in range(nodes):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    return AmqpBus([f"amqp://guest:guest@127.0.0.1:{port}/" for port in ports], connect_timeout=5.0)
