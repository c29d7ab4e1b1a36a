"""Refresh the liste blanche on a schedule; a failed refresh leaves the last good list in force.

The ANS regenerates the list daily; ``interval_seconds`` (``whitelist.refresh_interval``,
default 86400) spaces the attempts. The first attempt is due at start when no list is
stored, else when the stored one is ``interval_seconds`` old, so restarting the engine
does not refetch. Each attempt is bounded by ``attempt_timeout``; a refused or failed
attempt is logged as an alert by the store (or here, for an unexpected error) and the
next one comes one interval later.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from channels.whitelist.store import UpdateResult, WhitelistStore
from router.periodic import PeriodicTask, one_at_a_time
from router.ports import SingleRunner

log = structlog.get_logger(__name__)


class WhitelistRefresher:
    """An asyncio task that calls :meth:`WhitelistStore.update` every ``interval_seconds``."""

    def __init__(self, store: WhitelistStore, source: str, interval_seconds: float, *,
                 checksum_source: str | None = None, attempt_timeout: float = 300.0,
                 runner: SingleRunner | None = None, lease: str = "whitelist-refresh"):
        if interval_seconds <= 0 or attempt_timeout <= 0:
            raise ValueError("interval_seconds and attempt_timeout must be positive")
        self.store = store
        self.source = source
        self.checksum_source = checksum_source
        self.interval = interval_seconds
        self.attempt_timeout = attempt_timeout
        self.last_result: UpdateResult | None = None
        self.attempts = 0
        # Processes sharing one store directory (listener and workers on one machine) refresh it one at a time.
        self._timer = PeriodicTask(one_at_a_time(runner, lease, self.refresh_once), interval_seconds, name="whitelist-refresher",
                                   failure_event="whitelist.refresh_failed", first_delay=self.first_delay)

    def start(self) -> None:
        self._timer.start()

    async def stop(self) -> None:
        """Stop after the attempt in progress, if any (itself bounded by ``attempt_timeout``)."""
        await self._timer.stop()

    def first_delay(self, now: datetime | None = None) -> float:
        """Seconds until the first attempt: now without a stored list, else when the stored one is due."""
        metadata = self.store.metadata
        if self.store.current is None or metadata is None:
            return 0.0
        now = now or self.store.clock()
        age = (now - metadata.fetched_at).total_seconds()
        return min(self.interval, max(0.0, self.interval - age))

    async def refresh_once(self) -> UpdateResult | None:
        """One bounded attempt; never raises (a failure is an alert and the old list stays)."""
        self.attempts += 1
        try:
            async with asyncio.timeout(self.attempt_timeout):
                result = await self.store.update(self.source, self.checksum_source)
        except Exception as exc:   # noqa: BLE001 - one failed attempt must not end the refresher
            log.error("whitelist.refresh_failed", alert="whitelist", source=self.source,
                      reason=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            return None
        self.last_result = result
        return result
