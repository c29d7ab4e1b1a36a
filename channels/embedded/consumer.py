"""Consuming one queue of the embedded bus: leases, handler tasks, settling.

A subscription leases up to ``prefetch`` due rows at a time and runs the handler
on each in its own task. It sleeps until a publish in this process wakes it, a
delivery is settled while it was full, or the next delayed row falls due (never
longer than the poll interval, which also bounds how late it sees rows written
by an earlier process). A delivery the handler leaves unsettled keeps its lease,
and its prefetch slot, until the subscription is cancelled or the bus closed, as
an unacked RabbitMQ delivery does; it is then returned to the queue.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import TYPE_CHECKING

import structlog



from channels.embedded import sql
from router.errors import BusUnavailable
from channels.bus_common import finish_handlers
from router.ports import DeliveryHandler, Envelope
from router.settle import PARK_REASON_HEADER

if TYPE_CHECKING:
    from channels.embedded.store import Store

log = structlog.get_logger(__name__)

LAST_ERROR_HEADER = "x-last-error"
MAX_REASON = 1000            # characters of a retry or park reason kept in the headers


class EmbeddedDelivery:
    """One leased row; settling it is one statement in the store's next batch."""

    def __init__(self, subscription: EmbeddedSubscription, row: sql.Row):
        self.envelope = Envelope(body=row.body, message_id=row.message_id,
                                 headers=row.headers, attempt=row.attempt)
        self.settled = False
        self._subscription = subscription
        self._row_id = row.id
        self._busy = False

    @property
    def row_id(self) -> int:
        return self._row_id

    async def ack(self) -> None:
        await self._settle(lambda owner: partial(sql.delete, row_id=self._row_id, owner=owner))

    async def retry(self, delay: float, reason: str) -> None:
        headers = sql.dump_headers({**self.envelope.headers, LAST_ERROR_HEADER: reason[:MAX_REASON]})
        due = time.time() + max(0.0, delay)
        await self._settle(lambda owner: partial(sql.reschedule, row_id=self._row_id, owner=owner,
                                                 available_at=due, attempt=self.envelope.attempt + 1,
                                                 headers=headers))

    async def park(self, reason: str) -> None:
        headers = sql.dump_headers({**self.envelope.headers, PARK_REASON_HEADER: reason[:MAX_REASON]})
        await self._settle(lambda owner: partial(sql.park, row_id=self._row_id, owner=owner,
                                                 now=time.time(), headers=headers))

    async def _settle(self, make_op) -> None:
        if self.settled or self._busy:
            raise RuntimeError(f"delivery {self.envelope.message_id} is already settled")
        self._busy = True
        try:
            done = await self._subscription.store.run(make_op(self._subscription.owner))
        finally:
            self._busy = False
        if not done:
            raise BusUnavailable(f"delivery {self.envelope.message_id} lost its lease (bus closed?)")
        self.settled = True
        self._subscription.settled(self._row_id)


class EmbeddedSubscription:
    """The consumer of one queue, started by ``EmbeddedBus.consume``."""

    def __init__(self, store: Store, owner: str, queue: str, handler: DeliveryHandler, *,
                 prefetch: int, poll_interval: float, close_timeout: float, unsettled_grace: float = 10.0):
        self.store = store
        self.owner = owner
        self.queue = queue
        self._handler = handler
        self._prefetch = prefetch
        self._poll_interval = poll_interval
        self._close_timeout = close_timeout
        self._unsettled_grace = unsettled_grace
        self._held: set[int] = set()              # leased rows not settled yet
        self._tasks: set[asyncio.Task] = set()
        self._give_backs: set[asyncio.Task] = set()
        self._wakeup = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._cancelled = False
        store.watch(queue, self)
        self._runner = asyncio.create_task(self._run(), name=f"embedded-bus consume {queue}")

    def wake(self) -> None:
        """Make the lease loop look again now; callable from any thread or loop."""
        try:
            same_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            self._wakeup.set()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wakeup.set)

    def settled(self, row_id: int) -> None:
        self._held.discard(row_id)
        self._wakeup.set()

    async def cancel(self) -> None:
        """Stop leasing, let handlers finish (bounded), return what they left unsettled."""
        if self._cancelled:
            return
        self._cancelled = True
        self._wakeup.set()
        await self._runner
        await finish_handlers(self._tasks, timeout=self._close_timeout, queue=self.queue)
        self.store.unwatch(self.queue, self)
        if self._held:
            held, self._held = list(self._held), set()
            try:
                await self.store.run(partial(sql.release, owner=self.owner, row_ids=held))
            except BusUnavailable as exc:   # the leases go back when the store next opens
                log.warning("bus.release_failed", queue=self.queue, error=str(exc))
            else:
                self.store.notify(self.queue)

    async def _run(self) -> None:
        while not self._cancelled:
            free = self._prefetch - len(self._held)
            if free <= 0:
                self._wakeup.clear()
                await self._sleep(None)     # until a settle frees a slot, or cancel
                continue
            self._wakeup.clear()
            try:
                rows, next_due = await self.store.run(partial(
                    sql.lease, queue=self.queue, limit=free, owner=self.owner, now=time.time()))
            except Exception as exc:  # noqa: BLE001 - the consumer keeps trying, at the poll interval
                log.warning("bus.lease_failed", queue=self.queue, error=str(exc))
                await self._sleep(self._poll_interval)
                continue
            for row in rows:
                self._held.add(row.id)
                if not self._cancelled:
                    self._start(EmbeddedDelivery(self, row))
            if len(rows) < free:
                wait = self._poll_interval
                if next_due is not None:
                    wait = min(wait, max(0.0, next_due - time.time()))
                await self._sleep(wait)

    async def _sleep(self, timeout: float | None) -> None:
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except TimeoutError:
            pass

    def _start(self, delivery: EmbeddedDelivery) -> None:
        task = asyncio.create_task(self._handle(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, delivery: EmbeddedDelivery) -> None:
        message_id = delivery.envelope.message_id
        try:
            await self._handler(delivery)
        except Exception:  # noqa: BLE001 - a handler defect must not kill the consumer
            log.exception("bus.handler_failed", queue=self.queue, message_id=message_id)
        if not delivery.settled:
            # Usually a settle that failed on a passing store error (disk full, I/O). As a broker
            # does when a channel breaks, give the message back to the queue after a grace period
            # instead of holding its prefetch slot until a restart.
            log.error("bus.unsettled", queue=self.queue, message_id=message_id,
                      detail=f"given back to the queue in {self._unsettled_grace:g} s")
            self._loop.call_later(self._unsettled_grace, self._give_back_later, delivery)

    def _give_back_later(self, delivery: EmbeddedDelivery) -> None:
        if delivery.settled or self._cancelled:
            return              # settled meanwhile, or cancel() already returned what it held
        task = asyncio.ensure_future(self._give_back(delivery))
        self._give_backs.add(task)
        task.add_done_callback(self._give_backs.discard)

    async def _give_back(self, delivery: EmbeddedDelivery) -> None:
        row_id = delivery.row_id
        try:
            released = await self.store.run(partial(sql.release, owner=self.owner, row_ids=[row_id]))
        except BusUnavailable as exc:
            log.warning("bus.release_failed", queue=self.queue, error=str(exc))
            return
        if released:
            self.settled(row_id)
            self.store.notify(self.queue)
