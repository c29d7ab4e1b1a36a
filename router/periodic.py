"""One coroutine run on a schedule in a background asyncio task: the engine's timers.

The lettre de liaison watchdog and the whitelist refresher need the same loop:
wait, run one pass, wait again; stop at once while waiting, but let a pass in
progress finish (each bounds its own passes); and never let one failing pass
end the loop, since the next one may well succeed. It is written once here,
in pure asyncio, so that neither timer can get it subtly different.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from router.ports import SingleRunner

log = structlog.get_logger(__name__)


def one_at_a_time(runner: SingleRunner | None, name: str,
                  tick: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """``tick`` run only while this process holds the lease ``name`` (none: always run).

    Several servers on one journal each run the same timers; with the lease, one of them
    does each pass and the others skip it (and try again on their next one).
    """
    if runner is None:
        return tick

    async def leased() -> Any:
        async with runner.alone(name) as mine:
            if mine:
                return await tick()
            log.debug("periodic.skipped", task=name, reason="another process holds the lease")
            return None
    return leased


def _at_once() -> float:
    return 0.0


class PeriodicTask:
    """Await ``tick()`` every ``interval`` seconds in one asyncio task, from :meth:`start` to :meth:`stop`.

    The first tick comes ``first_delay()`` seconds after the task starts (asked
    then, so it can depend on state the owner loaded meanwhile; at once by
    default). A tick that raises is logged as an error named ``failure_event``
    and the next tick comes one interval later.
    """

    def __init__(self, tick: Callable[[], Awaitable[object]], interval: float, *, name: str,
                 failure_event: str, first_delay: Callable[[], float] = _at_once):
        if interval <= 0:
            raise ValueError(f"{name}: the interval must be positive, not {interval}")
        self.tick = tick
        self.interval = interval
        self.name = name
        self.failure_event = failure_event
        self.first_delay = first_delay
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`stop` (or until the loop ended by itself)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop in the running event loop; a second call while it runs does nothing."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """End the loop: at once while it waits, after the tick in progress otherwise. Harmless if not started."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            await task

    async def _run(self) -> None:
        delay = self.first_delay()
        while not await self._stopped_within(delay):
            try:
                await self.tick()
            except Exception as exc:   # noqa: BLE001 - one failed tick must not end the loop
                log.error(self.failure_event, error=str(exc))
            delay = self.interval

    async def _stopped_within(self, delay: float) -> bool:
        """Wait up to ``delay`` seconds for :meth:`stop`; True when it came."""
        if not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
        return self._stop.is_set()
