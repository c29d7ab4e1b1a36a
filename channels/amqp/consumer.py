"""Consuming one RabbitMQ queue: deliveries and their settling, the subscription.

Each subscription has its own channel, so its prefetch (``basic.qos``) is its own.
aiormq runs every delivery in its own task, so up to ``prefetch`` handlers run at once.
Retry and park are "publish a copy with a confirm, then ack the original": if the ack
is lost the message is redelivered and processed again (at-least-once; stages are
idempotent). A delivery the handler leaves unsettled stays unacked, holding a prefetch
slot, until the subscription is cancelled or the connection lost; the broker then
redelivers it.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import TYPE_CHECKING

import structlog


from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from channels.amqp import wire
from channels.amqp.errors import AMQP_FAILURES, bus_errors
from channels.bus_common import finish_handlers
from router.ports import DeliveryHandler
from router.settle import PARK_REASON_HEADER

if TYPE_CHECKING:
    from channels.amqp.bus import AmqpBus

log = structlog.get_logger(__name__)


class AmqpDelivery:
    """One unacked message of a stage queue."""

    def __init__(self, bus: AmqpBus, name: str, message: AbstractIncomingMessage):
        self.envelope = wire.envelope(message.body, message.message_id, message.headers)
        self.settled = False
        self._bus = bus
        self._name = name                  # the stage queue, prefix included
        self._message = message
        self._busy = False

    async def ack(self) -> None:
        await self._settle(None, 0, {})

    async def retry(self, delay: float, reason: str) -> None:
        target = await self._bus.retry_queue(self._name, delay)
        await self._settle(target, self.envelope.attempt + 1,
                           {wire.LAST_ERROR_HEADER: reason[:wire.MAX_REASON]})

    async def park(self, reason: str) -> None:
        await self._settle(wire.parked_name(self._name), self.envelope.attempt,
                           {PARK_REASON_HEADER: reason[:wire.MAX_REASON]})

    async def _settle(self, target: str | None, attempt: int, extra: dict[str, str]) -> None:
        if self.settled or self._busy:
            raise RuntimeError(f"delivery {self.envelope.message_id} is already settled")
        self._busy = True
        try:
            if target is not None:
                headers = wire.wire_headers({**self.envelope.headers, **extra}, attempt)
                await self._bus.send(target, self.envelope.body, self.envelope.message_id, headers)
            with bus_errors(f"ack {self.envelope.message_id} on {self._name}"):
                await self._message.ack()
        finally:
            self._busy = False
        self.settled = True


class AmqpSubscription:
    """A consumer on its own channel; ``cancel`` stops it and returns what it holds."""

    def __init__(self, bus: AmqpBus, channel: AbstractChannel, queue: AbstractQueue,
                 handler: DeliveryHandler, *, close_timeout: float):
        self._bus = bus
        self._channel = channel
        self._queue = queue
        self._handler = handler
        self._close_timeout = close_timeout
        self._tasks: set[asyncio.Task] = set()
        self._tag: str | None = None
        self._cancelled = False

    async def start(self) -> None:
        with bus_errors(f"consume {self._queue.name}"):
            self._tag = await self._queue.consume(self._on_message, no_ack=False)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._cancelled:         # arrived between basic.cancel and cancel-ok: returned on close
            return
        delivery = AmqpDelivery(self._bus, self._queue.name, message)
        # The handler runs in a task of its own, shielded: aiormq cancels its delivery tasks when the
        # channel or the connection closes (a broker node lost), and a handler cancelled between the
        # relay's 250 and the journal's write had its recipient mailed again by the redelivered copy
        # (found by the fault suite). Left to finish, it records the outcome; only its ack is lost, and
        # the redelivered copy finds the recipient final. cancel() still waits for it, bounded.
        task = asyncio.create_task(self._handle(delivery), name=f"handler {self._queue.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(task)

    async def _handle(self, delivery: AmqpDelivery) -> None:
        message_id = delivery.envelope.message_id
        try:
            await self._handler(delivery)
        except Exception:  # noqa: BLE001 - a handler defect must not kill the consumer
            log.exception("bus.handler_failed", queue=self._queue.name, message_id=message_id)
        if not delivery.settled:
            log.error("bus.unsettled", queue=self._queue.name, message_id=message_id,
                      detail="held until the subscription is cancelled or the connection lost")

    async def cancel(self) -> None:
        """Stop deliveries, let handlers finish (bounded), close the channel (returns the rest)."""
        if self._cancelled:
            return
        self._cancelled = True
        if self._tag is not None:
            with suppress(*AMQP_FAILURES):
                await asyncio.wait_for(self._queue.cancel(self._tag), self._close_timeout)
        await finish_handlers(self._tasks, timeout=self._close_timeout, queue=self._queue.name)
        with suppress(*AMQP_FAILURES):
            await asyncio.wait_for(self._channel.close(), self._close_timeout)
        self._bus.forget(self)
