"""Retention: message content kept N days, metadata M days, the console's audit A days; space given back.

    [retention]
    content_days = 90        # raw HL7 and kept CDA emptied after this many days (omit: kept)
    metadata_days = 365      # the message, its timeline and outcomes removed after this many (omit: kept)
    audit_days = 365         # the console's audit trail rows removed after this many (omit: kept)
    interval = 3600          # seconds between passes (default one hour)
    batch = 500              # messages per transaction

Only a message in a final state whose recipients are all settled is ever
touched (a parked message waits for its operator). A pass runs in small
batches (one short transaction each, ``max_batches`` per kind at most, so a
backlog is worked off over several passes without holding the writer), in
the engine, on one server at a time (the journal's ``SingleRunner`` lease
``retention``: a PostgreSQL advisory lock, ``flock`` on SQLite), then gives space back
(SQLite incremental vacuum; PostgreSQL reuses it after VACUUM).
``liaison retention --dry-run`` says what would go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from router.config_values import no_unknown, read_int
from router.errors import ConfigError
from router.periodic import PeriodicTask
from router.ports import JournalRetention

log = structlog.get_logger(__name__)

KEYS = {"content_days", "metadata_days", "audit_days", "interval", "batch"}
LOCK = "retention"

#: ``prune(before, limit) -> rows removed``: another store's retention run with the journal's (the audit trail).
Prune = Callable[[datetime, int], Awaitable[int]]


@dataclass(frozen=True)
class RetentionSettings:
    content_days: int | None = None
    metadata_days: int | None = None
    audit_days: int | None = None
    interval: int = 3600
    batch: int = 500
    max_batches: int = 200          # per kind and pass: a backlog is worked off over several passes

    @property
    def enabled(self) -> bool:
        return any(days is not None for days in (self.content_days, self.metadata_days, self.audit_days))


def retention_settings(table: Mapping[str, Any]) -> RetentionSettings:
    """The ``[retention]`` table, checked: whole days of at least 1, metadata kept at least as long as content."""
    no_unknown(table, "retention", KEYS)
    days = {}
    for name in ("content_days", "metadata_days", "audit_days"):
        days[name] = (read_int(table, f"retention.{name}", 0, minimum=1, maximum=36_500)
                      if name in table else None)
    if days["content_days"] is not None and days["metadata_days"] is not None \
            and days["metadata_days"] < days["content_days"]:
        raise ConfigError("retention.metadata_days", f"expected at least content_days ({days['content_days']}): "
                                                     "removing a message removes its content too")
    return RetentionSettings(**days, interval=read_int(table, "retention.interval", 3600, minimum=1),
                             batch=read_int(table, "retention.batch", 500, minimum=1, maximum=10_000))


@dataclass(frozen=True)
class RetentionReport:
    content: int = 0           # messages whose content was emptied
    metadata: int = 0          # messages removed
    audit: int = 0             # audit rows removed
    space: str = ""            # what the database did with the space
    skipped: bool = False      # another server holds the runner's lock


class RetentionRunner:
    """One retention pass on demand (``run_once``), or every ``interval`` seconds (``start``/``stop``)."""

    def __init__(self, journal: JournalRetention, settings: RetentionSettings, *, audit: Prune | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.journal = journal
        self.settings = settings
        self.audit = audit
        self.now = now
        self._task = PeriodicTask(self.run_once, settings.interval, name="retention",
                                  failure_event="retention.failed")

    def cutoffs(self) -> tuple[datetime | None, datetime | None, datetime | None]:
        now = self.now()
        s = self.settings
        return tuple(None if days is None else now - timedelta(days=days)       # type: ignore[return-value]
                     for days in (s.content_days, s.metadata_days, s.audit_days))

    async def dry_run(self) -> tuple[int, int]:
        """(messages whose content would be emptied, messages that would be removed) now."""
        content, metadata, _ = self.cutoffs()
        return await self.journal.expirable(content, metadata)

    async def run_once(self) -> RetentionReport:
        content_before, metadata_before, audit_before = self.cutoffs()
        async with self.journal.alone(LOCK) as mine:
            if not mine:
                log.info("retention.skipped", reason="another server runs it")
                return RetentionReport(skipped=True)
            metadata = await self._batches(self.journal.expire_metadata, metadata_before)
            content = await self._batches(self.journal.expire_content, content_before)
            audit = await self._batches(self.audit, audit_before) if self.audit is not None else 0
            space = await self.journal.reclaim_space() if content or metadata else ""
        log.info("retention.pass", content=content, metadata=metadata, audit=audit, space=space)
        return RetentionReport(content, metadata, audit, space)

    async def _batches(self, expire: Prune, before: datetime | None) -> int:
        if before is None:
            return 0
        total = 0
        for _ in range(self.settings.max_batches):
            done = await expire(before, self.settings.batch)
            total += done
            if done < self.settings.batch:
                break
            await asyncio.sleep(0)          # let the engine's own writes in between batches
        return total

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

