"""router.periodic: a tick on a schedule, a failing tick logged and survived, a stop that does not wait it out."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from router.periodic import PeriodicTask
from tests.support.poll import eventually

HOUR = 3600.0


class Ticks:
    """A tick that counts its calls and raises on the ones listed in ``failing`` (1-based)."""

    def __init__(self, failing: tuple[int, ...] = ()):
        self.calls = 0
        self.failing = failing

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls in self.failing:
            raise RuntimeError(f"tick {self.calls} failed")


async def test_ticks_come_one_interval_apart_until_stopped():
    tick = Ticks()
    timer = PeriodicTask(tick, 0.01, name="test-timer", failure_event="test.tick_failed")
    timer.start()
    try:
        assert timer.running
        await eventually(lambda: tick.calls >= 3, "three ticks")
    finally:
        await asyncio.wait_for(timer.stop(), timeout=5)
    assert not timer.running
    assert not [task for task in asyncio.all_tasks() if task.get_name() == "test-timer"]


async def test_the_first_tick_comes_at_once_by_default():
    tick = Ticks()
    timer = PeriodicTask(tick, HOUR, name="test-timer", failure_event="test.tick_failed")
    timer.start()
    try:
        await eventually(lambda: tick.calls == 1, "the first tick")
    finally:
        await asyncio.wait_for(timer.stop(), timeout=5)


async def test_a_failing_tick_is_logged_and_the_loop_goes_on():
    tick = Ticks(failing=(1,))
    timer = PeriodicTask(tick, 0.01, name="test-timer", failure_event="test.tick_failed")
    with capture_logs() as logs:
        timer.start()
        try:
            await eventually(lambda: tick.calls >= 3, "three ticks")
        finally:
            await asyncio.wait_for(timer.stop(), timeout=5)
    failures = [entry for entry in logs if entry["event"] == "test.tick_failed"]
    assert [(e["log_level"], e["error"]) for e in failures] == [("error", "tick 1 failed")]


async def test_stop_ends_the_wait_without_waiting_out_the_interval():
    tick = Ticks()
    asked = []
    timer = PeriodicTask(tick, HOUR, name="test-timer", failure_event="test.tick_failed",
                         first_delay=lambda: asked.append(True) or HOUR)
    timer.start()
    await eventually(lambda: asked, "the first delay asked")    # the loop now waits for its first tick
    await asyncio.wait_for(timer.stop(), timeout=5)             # an hour's wait, ended by stop
    assert tick.calls == 0 and not timer.running


async def test_stop_lets_the_tick_in_progress_finish():
    release, progress = asyncio.Event(), []

    async def slow_tick() -> None:
        progress.append("started")
        await release.wait()
        progress.append("finished")

    timer = PeriodicTask(slow_tick, HOUR, name="test-timer", failure_event="test.tick_failed")
    timer.start()
    await eventually(lambda: progress == ["started"], "the tick to start")
    stopping = asyncio.create_task(timer.stop())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not stopping.done()                                  # held by the tick, not cancelling it
    release.set()
    await asyncio.wait_for(stopping, timeout=5)
    assert progress == ["started", "finished"]


async def test_start_twice_runs_one_loop_and_stop_before_start_is_harmless():
    tick = Ticks()
    timer = PeriodicTask(tick, HOUR, name="test-timer", failure_event="test.tick_failed")
    await timer.stop()
    timer.start()
    timer.start()
    try:
        assert len([task for task in asyncio.all_tasks() if task.get_name() == "test-timer"]) == 1
        await eventually(lambda: tick.calls == 1, "the first tick")
    finally:
        await asyncio.wait_for(timer.stop(), timeout=5)


def test_the_interval_must_be_positive():
    with pytest.raises(ValueError, match="test-timer"):
        PeriodicTask(Ticks(), 0, name="test-timer", failure_event="test.tick_failed")
