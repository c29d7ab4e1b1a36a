"""A small in-memory cache with expiry in front of any :class:`~router.ports.Directory`.

The Annuaire Santé changes once a day and its API counts our calls, while a
hospital writes to the same few correspondents all day: a cache of a few hours
saves almost every call. It lives in memory (a dict in least-recently-used
order, bounded by ``max_entries``) rather than SQLite: each worker keeps its
own, a restart costs one call per correspondent, and there is nothing to
migrate or clean. Empty answers are cached too, for ``negative_ttl_seconds``
only, so that a professional who just opened a mailbox is seen soon. Errors
are never cached. Concurrent lookups of the same identifier share one call.

``clock`` returns seconds (default :func:`time.monotonic`) or an aware
datetime (the engine's clocks, and ``tests.support.clock.FakeClock``).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from router.ports import Directory, Mailbox


class CachedDirectory:
    """Answers from memory while fresh, else asks ``inner`` and remembers its answer."""

    def __init__(self, inner: Directory, ttl_seconds: float, max_entries: int = 10000, *,
                 negative_ttl_seconds: float | None = None,
                 clock: Callable[[], float | datetime] = time.monotonic):
        if ttl_seconds <= 0 or max_entries < 1:
            raise ValueError("ttl_seconds must be positive and max_entries at least 1")
        self.inner = inner
        self.ttl = ttl_seconds
        self.negative_ttl = min(ttl_seconds, 300.0) if negative_ttl_seconds is None else negative_ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, tuple[Mailbox, ...]]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[tuple[Mailbox, ...]]] = {}

    async def mailboxes(self, identifier: str) -> list[Mailbox]:
        key = identifier.strip()
        now = self._now()
        cached = self._entries.get(key)
        if cached is not None:
            expires, found = cached
            if now < expires:
                self._entries.move_to_end(key)
                return list(found)
            del self._entries[key]
        pending = self._pending.get(key)
        if pending is not None:
            return list(await asyncio.shield(pending))
        future: asyncio.Future[tuple[Mailbox, ...]] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            found = tuple(await self.inner.mailboxes(identifier))
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()          # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self._pending[key]
        future.set_result(found)
        self._store(key, found)
        return list(found)

    def invalidate(self, identifier: str | None = None) -> None:
        """Forget one identifier, or everything."""
        if identifier is None:
            self._entries.clear()
        else:
            self._entries.pop(identifier.strip(), None)

    def __len__(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            await close()

    def _store(self, key: str, found: tuple[Mailbox, ...]) -> None:
        ttl = self.ttl if found else self.negative_ttl
        if ttl <= 0:
            return
        self._entries[key] = (self._now() + ttl, found)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def _now(self) -> float:
        moment = self._clock()
        return moment.timestamp() if isinstance(moment, datetime) else float(moment)
