"""EmbeddedBus: durable queues in one local SQLite file, the default bus for one server.

URL: ``embedded:///var/lib/liaison/bus.sqlite`` (absolute path), ``embedded:data/bus.sqlite``
(relative to the working directory); options ``?poll_interval=0.2&close_timeout=10&unsettled_grace=10``.

Features, the same contract as ``AmqpBus`` (both pass tests/contract/test_bus.py):

- ``publish`` returns once the message is committed and fsynced (WAL, ``synchronous=FULL``);
  concurrent publishes share one commit (group commit, see ``store.py``).
- Queues need no declaration: any name made of ``[a-z0-9._-]`` works on first use.
- ``consume`` runs up to ``prefetch`` handlers at once; a publish in this process wakes the
  consumers at once, delayed retries are picked up when due (bounded by ``poll_interval``).
- ``retry``: the row comes back after the delay with ``attempt + 1`` and ``x-last-error``,
  in one UPDATE. ``park``: the row's state becomes ``parked`` with ``x-park-reason``;
  ``parked()`` lists them oldest first, ``replay()`` makes one due again with attempt 0
  (``x-park-reason`` removed).
- A delivery not settled when its subscription is cancelled or the bus closed goes back to its
  queue; after a crash, on the next open. One process owns the file (SQLite exclusive lock);
  several ``EmbeddedBus`` objects in that process share it.
- SQLite failures (disk full, unreadable file, file held by another process) raise
  ``BusUnavailable``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import structlog

from channels.bus_common import check_headers, check_queue
from channels.embedded import sql, store as stores
from channels.embedded.consumer import EmbeddedSubscription
from router.errors import BusUnavailable
from router.ports import DeliveryHandler, Envelope, QueueDepth, Subscription
from router.settle import PARK_REASON_HEADER

log = structlog.get_logger(__name__)

ATTEMPT_HEADER = "x-attempt"


class EmbeddedBus:
    """The Bus port on a local SQLite file."""

    def __init__(self, path: str | Path, *, poll_interval: float = 0.2, close_timeout: float = 10.0,
                 unsettled_grace: float = 10.0):
        self.path = Path(path)
        self.poll_interval = poll_interval
        self.close_timeout = close_timeout
        self.unsettled_grace = unsettled_grace
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._store: stores.Store | None = None
        self._closed = False
        self._lock = asyncio.Lock()
        self._subscriptions: set[EmbeddedSubscription] = set()

    @classmethod
    def from_url(cls, url: str, **options: float) -> EmbeddedBus:
        """Build from ``embedded:///abs/path.sqlite?poll_interval=0.2``; keyword options win."""
        parts = urlsplit(url)
        if parts.scheme != "embedded" or not (parts.netloc + parts.path):
            raise ValueError(f"not an embedded bus URL (embedded:///path/to/bus.sqlite): {url!r}")
        query: dict[str, float] = {}
        for key, value in parse_qsl(parts.query):
            if key not in ("poll_interval", "close_timeout", "unsettled_grace"):
                raise ValueError(f"unknown embedded bus option {key!r} in {url!r}")
            query[key] = float(value)
        return cls(parts.netloc + parts.path, **{**query, **options})

    def __repr__(self) -> str:
        return f"EmbeddedBus({str(self.path)!r})"

    async def connect(self) -> None:
        """Open (or join this process's handle on) the file; raises BusUnavailable."""
        async with self._lock:
            if self._store is None:
                self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
                self._store = await stores.acquire(self.path)
                self._closed = False

    async def close(self) -> None:
        """Cancel consumers (in-flight handlers get ``close_timeout``), return leases, close."""
        async with self._lock:
            subscriptions, self._subscriptions = list(self._subscriptions), set()
            # Handlers still running may publish their results: the store stays usable until they end.
            await asyncio.gather(*(s.cancel() for s in subscriptions))
            self._closed = True
            store, self._store = self._store, None
            if store is None:
                return
            try:
                if await store.run(partial(sql.release, owner=self._owner)):
                    store.notify()
            except BusUnavailable as exc:
                log.warning("bus.release_failed", path=str(self.path), error=str(exc))
            finally:
                await stores.release(store)

    async def publish(self, queue: str, body: bytes, *, message_id: str,
                      headers: Mapping[str, str] | None = None) -> None:
        """Store the message; return once it is on disk."""
        check_queue(queue)
        fields = check_headers(headers)
        attempt = parse_attempt(fields.pop(ATTEMPT_HEADER, None))
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"body must be bytes, not {type(body).__name__}")
        store = await self._ready()
        row = (queue, time.time(), attempt, str(message_id), sql.dump_headers(fields), bytes(body))
        await store.run(partial(sql.insert, rows=[row]))
        store.notify(queue)

    async def consume(self, queue: str, handler: DeliveryHandler, *, prefetch: int = 16) -> Subscription:
        check_queue(queue)
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        store = await self._ready()
        subscription = EmbeddedSubscription(store, self._owner, queue, handler, prefetch=prefetch,
                                            poll_interval=self.poll_interval,
                                            close_timeout=self.close_timeout,
                                            unsettled_grace=self.unsettled_grace)
        self._subscriptions.add(subscription)
        return subscription

    async def depth(self, queue: str) -> QueueDepth:
        """Counts from the table's (queue, state) index; a job delayed for a retry counts as waiting and retrying."""
        check_queue(queue)
        store = await self._ready()
        waiting, parked, retrying, oldest = await store.run(partial(sql.depth, queue=queue, now=time.time()))
        return QueueDepth(queue, waiting, parked, retrying,
                          None if oldest is None else datetime.fromtimestamp(oldest, UTC))

    async def parked(self, queue: str, limit: int = 100) -> list[Envelope]:
        check_queue(queue)
        store = await self._ready()
        rows = await store.run(partial(sql.parked, queue=queue, limit=max(0, limit)))
        return [Envelope(body=r.body, message_id=r.message_id, headers=r.headers, attempt=r.attempt)
                for r in rows]

    async def replay(self, queue: str, message_id: str) -> bool:
        check_queue(queue)
        store = await self._ready()
        moved = await store.run(partial(sql.unpark, queue=queue, message_id=message_id,
                                        now=time.time(), drop=(PARK_REASON_HEADER,)))
        if moved:
            store.notify(queue)
        return moved

    async def _ready(self) -> stores.Store:
        if self._closed:
            raise BusUnavailable(f"{self!r} is closed")
        if self._store is None:
            await self.connect()
        assert self._store is not None
        return self._store




def parse_attempt(value: str | None) -> int:
    """The ``x-attempt`` header as a count; anything unreadable counts as 0 (as on RabbitMQ)."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def from_url(url: str, **options: float) -> EmbeddedBus:
    return EmbeddedBus.from_url(url, **options)
