"""AmqpBus: the bus on RabbitMQ (3.10+), for one or several servers.

URL: ``amqp://user:password@host:5672/vhost`` (``amqps://`` for TLS; aio-pika query options
such as ``?heartbeat=30`` pass through), or a list of such URLs, one per node of a RabbitMQ
cluster (same scheme, virtual host and options; ``engine.bus`` as a TOML array). Keyword
options: ``prefix`` (default ``liaison.``, prepended to every queue name), ``publish_timeout``,
``connect_timeout``, ``close_timeout``, ``reconnect_interval``.

Features, the same contract as ``EmbeddedBus`` (both pass tests/contract/test_bus.py):

- ``publish`` is persistent and returns once the broker confirmed it (publisher confirms);
  concurrent publishes on the shared channel are pipelined, not serialised.
- Queues are declared on first use (see ``wire.py`` for the layout): durable quorum stage
  queues, quorum ``.parked`` queues, classic per-delay ``.retry.<ms>`` queues that
  dead-letter back to the stage queue.
- ``consume``: one channel per subscription with ``basic.qos(prefetch)``; a delivery left
  unsettled, or in flight when the connection drops, is redelivered by the broker.
- The connection is aio-pika's robust one (``failover.py``): after a broker restart, or when
  its node of a cluster goes away, it reconnects (to the next node of the list) and restores
  declarations and consumers; deliveries left unacked are redelivered by the broker. While it
  is down, calls fail with ``BusUnavailable`` instead of hanging, and a publish whose confirm
  did not arrive fails with ``BusUnavailable``: the caller publishes again (at-least-once).
- ``connect`` tries the nodes in the order given, each for ``connect_timeout``, and fails with
  ``BusUnavailable`` only when none answers.
- ``parked()`` and ``replay()`` read the whole parked queue with ``basic.get`` on a
  throw-away channel without acking, then close that channel so the broker returns every
  message, in order (see ``parked``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiormq.abc import DeliveredMessage
from aiormq.exceptions import DeliveryError, PublishError

from channels.amqp import wire
from channels.amqp.consumer import AmqpSubscription
from channels.amqp.errors import AMQP_FAILURES, bus_errors
from channels.amqp.failover import FailoverConnection
from channels.bus_common import check_headers, check_queue
from router.errors import BusUnavailable
from router.ports import DeliveryHandler, Envelope, QueueDepth, Subscription
from router.settle import PARK_REASON_HEADER

log = structlog.get_logger(__name__)
T = TypeVar("T")


class AmqpBus:
    """The Bus port on RabbitMQ."""

    def __init__(self, url: str | Sequence[str], *, prefix: str = "liaison.", publish_timeout: float = 10.0,
                 connect_timeout: float = 10.0, close_timeout: float = 10.0,
                 reconnect_interval: float = 2.0):
        self.urls = (url,) if isinstance(url, str) else tuple(url)
        if not self.urls:
            raise ValueError("AmqpBus needs at least one amqp:// URL")
        self.url = self.urls[0]
        self.prefix = prefix
        self.publish_timeout = publish_timeout
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.reconnect_interval = reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._declared: set[str] = set()
        self._subscriptions: set[AmqpSubscription] = set()
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    def from_url(cls, url: str | Sequence[str], **options: Any) -> AmqpBus:
        """The bus at ``url``, or on the cluster whose nodes are the URLs of the list."""
        for one in (url,) if isinstance(url, str) else url:
            if urlsplit(one).scheme not in ("amqp", "amqps"):
                raise ValueError(f"not an AMQP URL (amqp://user:password@host:5672/): {one!r}")
        return cls(url, **options)

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        hosts = ",".join(_host(u) for u in self.urls)
        return f"AmqpBus('{parts.scheme}://{hosts}{parts.path}')"

    @property
    def node(self) -> str | None:
        """``host:port`` of the node the bus is connected to, None when it is not."""
        connection = self._connection
        if not isinstance(connection, FailoverConnection) or not connection.connected.is_set():
            return None
        return _host(str(connection.node))

    # ------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """Connect and open the publishing channel; raises BusUnavailable."""
        async with self._lock:
            if self._connection is not None:
                return
            connection = await self._open()
            with bus_errors(f"connect to {self!r}"):
                try:
                    channel = await asyncio.wait_for(connection.channel(publisher_confirms=True),
                                                     self.connect_timeout)
                except BaseException:
                    await connection.close()
                    raise
            self._connection, self._channel, self._closed = connection, channel, False
            connection.reconnect_callbacks.add(self._on_reconnect)
            log.info("bus.amqp.connected", broker=repr(self), node=self.node)

    async def _open(self) -> FailoverConnection:
        """A connection to the first node that answers, trying them in order."""
        failures = []
        for first in range(len(self.urls)):
            connection = FailoverConnection(self.urls, first=first, reconnect_interval=self.reconnect_interval)
            node = _host(str(connection.node))
            try:
                await asyncio.wait_for(connection.connect(timeout=self.connect_timeout), self.connect_timeout)
                return connection
            except AMQP_FAILURES as exc:
                failures.append(f"{node}: {type(exc).__name__}: {exc}")
                with suppress(*AMQP_FAILURES):
                    await asyncio.wait_for(connection.close(), self.close_timeout)
            except BaseException:
                with suppress(*AMQP_FAILURES):
                    await asyncio.wait_for(connection.close(), self.close_timeout)
                raise
        raise BusUnavailable(f"RabbitMQ: connect to {self!r}: {'; '.join(failures)}")

    def _on_reconnect(self, connection: Any) -> None:
        self._declared.clear()          # the retry queues are declared again on their next use
        log.warning("bus.amqp.reconnected", broker=repr(self), node=self.node)

    async def close(self) -> None:
        """Cancel consumers (in-flight handlers get ``close_timeout``), then disconnect."""
        async with self._lock:
            subscriptions, self._subscriptions = list(self._subscriptions), set()
            # Handlers still running may publish their results: the connection stays up until they end.
            await asyncio.gather(*(s.cancel() for s in subscriptions))
            self._closed = True
            connection, self._connection, self._channel = self._connection, None, None
            self._declared.clear()
            if connection is not None:
                with suppress(*AMQP_FAILURES):
                    await asyncio.wait_for(connection.close(), self.close_timeout)

    # ---------------------------------------------------------------- port

    async def publish(self, queue: str, body: bytes, *, message_id: str,
                      headers: Mapping[str, str] | None = None) -> None:
        """Publish persistently; return once the broker confirmed."""
        check_queue(queue)
        fields = check_headers(headers)
        attempt = wire.parse_attempt(fields.pop(wire.ATTEMPT_HEADER, None))
        name = await self._declare(queue)
        await self.send(name, body, message_id, wire.wire_headers(fields, attempt))

    async def consume(self, queue: str, handler: DeliveryHandler, *, prefetch: int = 16) -> Subscription:
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        name = await self._declare(queue)
        connection = await self._ready()
        channel = await self._call(connection.channel(publisher_confirms=False), f"open a channel for {name}")
        try:
            await self._call(channel.set_qos(prefetch_count=prefetch), f"set prefetch on {name}")
            amqp_queue = await self._call(channel.declare_queue(
                name, durable=True, arguments=wire.MAIN_ARGUMENTS), f"declare {name}")
            subscription = AmqpSubscription(self, channel, amqp_queue, handler, close_timeout=self.close_timeout)
            await subscription.start()
        except BaseException:
            with suppress(*AMQP_FAILURES):
                await channel.close()
            raise
        self._subscriptions.add(subscription)
        return subscription

    async def depth(self, queue: str) -> QueueDepth:
        """Ready and parked counts by passive declares on a throw-away channel (messages being handled,
        unacked, and those in the per-delay retry queues are not counted; no age is known)."""
        name = await self._declare(queue)
        connection = await self._ready()
        channel = await self._call(connection.channel(publisher_confirms=False), f"open a channel for {name}")
        try:
            counts = []
            for each in (name, wire.parked_name(name)):
                declared = await self._call(channel.declare_queue(each, passive=True, robust=False),
                                            f"count {each}")
                counts.append(declared.declaration_result.message_count or 0)
        finally:
            with suppress(*AMQP_FAILURES):
                await channel.close()
        return QueueDepth(queue, counts[0], counts[1])

    async def parked(self, queue: str, limit: int = 100) -> list[Envelope]:
        """Read up to ``limit`` parked messages, oldest first, without removing them.

        Every parked message is fetched with ``basic.get`` (no ack) on a throw-away channel,
        the first ``limit`` kept, then the channel is closed and the broker returns them all.
        All of them, because a quorum queue puts returned messages at its tail: returning only
        the first ``limit`` would move them behind the others. The cost is one round trip per
        parked message; this is an operator's call, not a hot path.
        """
        name = await self._declare(queue)
        found: list[Envelope] = []
        async with self._admin_channel(wire.parked_name(name)) as parked_queue:
            async for message in self._fetch_all(parked_queue):
                if len(found) < limit:
                    found.append(wire.envelope(message.body, message.message_id, message.headers))
        return found

    async def replay(self, queue: str, message_id: str) -> bool:
        """Move the oldest parked message with this id back to ``queue``, attempt 0.

        Same scan as ``parked``: the match is republished (confirmed) then acked; the others
        go back, in their order, when the scan's channel closes.
        """
        name = await self._declare(queue)
        replayed = False
        admin = self._admin_channel(wire.parked_name(name))
        async with admin as parked_queue:
            async for message in self._fetch_all(parked_queue):
                if replayed or message.message_id != message_id:
                    continue
                envelope = wire.envelope(message.body, message.message_id, message.headers)
                headers = {k: v for k, v in envelope.headers.items() if k != PARK_REASON_HEADER}
                await self.send(name, envelope.body, message_id, wire.wire_headers(headers, 0))
                await self._call(message.ack(), f"ack replayed {message_id}")
                admin.taken += 1
                replayed = True
        return replayed

    async def _fetch_all(self, amqp_queue: Any) -> AsyncIterator[Any]:
        """Every message present when the queue was declared, unacked (bounded by that count)."""
        for _ in range(amqp_queue.declaration_result.message_count or 0):
            message = await self._call(amqp_queue.get(no_ack=False, fail=False), f"read {amqp_queue.name}")
            if message is None:
                return
            yield message

    # ------------------------------------------------------------ helpers

    async def send(self, name: str, body: bytes, message_id: str, headers: Mapping[str, str]) -> None:
        """Publish to the full queue ``name`` (persistent, mandatory) and wait for the confirm."""
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"body must be bytes, not {type(body).__name__}")
        await self._ready()
        channel = self._channel
        assert channel is not None
        # Straight to aiormq's basic_publish (the robust channel's current underlying channel):
        # aio-pika's Message/Exchange wrappers cost about a third of the CPU of a publish on the
        # ingest hot path and add nothing here; the confirm and the mandatory return are the same.
        properties = aiormq.spec.Basic.Properties(message_id=message_id, headers=dict(headers),
                                                  delivery_mode=2)
        try:
            raw_channel = await channel.get_underlay_channel()
            await self._call(_confirmed(raw_channel.basic_publish(bytes(body), routing_key=name, mandatory=True,
                                                                  properties=properties)),
                             f"publish {message_id} to {name}")
        except BusUnavailable as exc:
            if isinstance(exc.__cause__, PublishError):    # returned: the queue vanished; redeclare next time
                self._declared.clear()
            raise

    async def retry_queue(self, name: str, delay: float) -> str:
        """The delay queue for ``delay`` seconds in front of ``name``, declared on first use."""
        retry_name, arguments = wire.retry_queue(name, delay)
        if retry_name not in self._declared:
            # Not restored by aio-pika on reconnection: a classic queue lives on one node, and
            # redeclaring it while that node is down would fail the whole channel's restore.
            await self._declare_one(retry_name, arguments, robust=False)
        return retry_name

    def forget(self, subscription: AmqpSubscription) -> None:
        self._subscriptions.discard(subscription)

    async def _declare(self, queue: str) -> str:
        check_queue(queue)
        name = self.prefix + queue
        if name not in self._declared:
            await self._declare_one(wire.parked_name(name), wire.PARKED_ARGUMENTS)
            await self._declare_one(name, wire.MAIN_ARGUMENTS)
        return name

    async def _declare_one(self, name: str, arguments: dict[str, Any], *, robust: bool = True) -> None:
        await self._ready()
        assert self._channel is not None
        await self._call(self._channel.declare_queue(name, durable=True, arguments=arguments, robust=robust),
                         f"declare {name}")
        self._declared.add(name)

    async def _ready(self) -> AbstractRobustConnection:
        if self._closed:
            raise BusUnavailable(f"{self!r} is closed")
        if self._connection is None:
            await self.connect()
        assert self._connection is not None
        if not self._connection.connected.is_set():      # fail fast while aio-pika reconnects
            raise BusUnavailable(f"{self!r}: connection lost, reconnecting")
        return self._connection

    async def _call(self, awaitable: Awaitable[T], doing: str) -> T:
        """Await an aio-pika call with the publish timeout; failures become BusUnavailable."""
        with bus_errors(doing):
            async with asyncio.timeout(self.publish_timeout):
                return await awaitable

    def _admin_channel(self, name: str) -> _AdminChannel:
        return _AdminChannel(self, name)


class _AdminChannel:
    """A throw-away channel on one queue; closing it returns every unacked message.

    A quorum queue takes returned messages back asynchronously (a Raft command after
    the channel's close-ok), so leaving at once would let the next scan declare the
    queue before they are back and miss them. On exit it waits, bounded by the bus's
    close timeout, until the queue holds again what it held minus what was ``taken``.
    """

    def __init__(self, bus: AmqpBus, name: str):
        self._bus = bus
        self._name = name
        self._channel: AbstractChannel | None = None
        self._held = 0
        self.taken = 0                    # messages acked during the scan (replayed): they do not come back

    async def __aenter__(self):
        connection = await self._bus._ready()
        self._channel = await self._bus._call(connection.channel(publisher_confirms=False),
                                              f"open a channel for {self._name}")
        try:
            queue = await self._bus._call(self._channel.declare_queue(
                self._name, durable=True, arguments=wire.PARKED_ARGUMENTS, robust=False), f"declare {self._name}")
        except BaseException:
            await self.__aexit__()
            raise
        self._held = queue.declaration_result.message_count or 0
        return queue

    async def __aexit__(self, *exc_info: object) -> None:
        if self._channel is None:
            return
        with suppress(*AMQP_FAILURES):
            await asyncio.wait_for(self._channel.close(), self._bus.close_timeout)
        if self._held:
            with suppress(*AMQP_FAILURES, asyncio.TimeoutError):
                await asyncio.wait_for(self._returned(self._held - self.taken), self._bus.close_timeout)

    async def _returned(self, expected: int) -> None:
        """Poll (passive declare) until the queue holds ``expected`` messages again."""
        connection = await self._bus._ready()
        channel = await connection.channel(publisher_confirms=False)
        try:
            while True:
                queue = await channel.declare_queue(self._name, passive=True, robust=False)
                if (queue.declaration_result.message_count or 0) >= expected:
                    return
                await asyncio.sleep(0.01)
        finally:
            with suppress(*AMQP_FAILURES):
                await channel.close()


def from_url(url: str | Sequence[str], **options: Any) -> AmqpBus:
    return AmqpBus.from_url(url, **options)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)}"


async def _confirmed(publishing: Awaitable[Any]) -> None:
    """Wait for the broker's confirm of a basic_publish; a return (no such queue) or a nack is an error.

    A nack comes, for one, from a classic queue whose node of a cluster is down.
    """
    confirmation = await publishing
    if isinstance(confirmation, aiormq.spec.Basic.Ack):
        return
    if isinstance(confirmation, DeliveredMessage) and isinstance(confirmation.delivery, aiormq.spec.Basic.Return):
        raise PublishError(confirmation, confirmation.delivery)
    raise DeliveryError(None, confirmation)
