"""The lettre de liaison watchdog on a real SQLite journal, with a clock the test moves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from channels.journal import SqliteJournal
from router.ports import Stay, StayState
from router.watchdog import LetterWatchdog
from tests.support.clock import FakeClock
from tests.support.poll import eventually

DUE = datetime(2024, 3, 15, 22, 59, 59, tzinfo=UTC)


@pytest.fixture
async def journal(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        await journal.record_stay(Stay(facility="CHU-TEST", encounter="V1", state=StayState.DISCHARGED,
                                       ipp="IPP000321", ins="285057512345678", discharged_at=DUE - timedelta(hours=9),
                                       letter_due_at=DUE, message_key="K-A03"))
        yield journal


async def wait_for_alert(journal) -> None:
    """Poll (bounded) until the watchdog has raised the alert on stay V1."""
    async def raised() -> bool:
        return (await journal.stay("CHU-TEST", "V1")).alert_raised_at is not None
    await eventually(raised, "the alert on stay V1")


async def test_an_overdue_letter_raises_one_alert_event_and_one_log_line(journal):
    clock = FakeClock(DUE - timedelta(seconds=1))
    watchdog = LetterWatchdog(journal, clock=clock)
    assert await watchdog.check_once() == []                       # not due yet

    clock.moment = DUE + timedelta(minutes=5)
    with capture_logs() as logs:
        raised = await watchdog.check_once()
        again = await watchdog.check_once()                        # raised once only
    assert [s.encounter for s in raised] == ["V1"] and again == []
    assert (await journal.stay("CHU-TEST", "V1")).alert_raised_at == clock.moment
    alerts = [e for e in await journal.events("K-A03") if e.step == "alert"]
    assert [e.state for e in alerts] == ["letter_overdue"] and "V1" in alerts[0].detail
    warnings = [entry for entry in logs if entry["event"] == "watchdog.letter_overdue"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert (warnings[0]["encounter"], warnings[0]["ipp"]) == ("V1", "IPP000321")
    assert "285057512345678" not in repr(logs)                     # never the INS


async def test_the_loop_runs_until_stopped(journal):
    watchdog = LetterWatchdog(journal, interval=0.02, clock=FakeClock(DUE + timedelta(hours=1)))
    watchdog.start()
    try:
        await wait_for_alert(journal)
    finally:
        await watchdog.stop()
    assert (await journal.stay("CHU-TEST", "V1")).alert_raised_at is not None
    assert not watchdog.running


async def test_a_failed_pass_is_logged_and_the_loop_goes_on(journal):
    class Flaky:
        calls = 0

        async def stays_due(self, now, limit=100):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("journal unavailable")
            return await journal.stays_due(now, limit)

        def __getattr__(self, name):
            return getattr(journal, name)

    watchdog = LetterWatchdog(Flaky(), interval=0.02, clock=FakeClock(DUE + timedelta(hours=1)))
    with capture_logs() as logs:
        watchdog.start()
        try:
            await wait_for_alert(journal)
        finally:
            await watchdog.stop()
    assert any(entry["event"] == "watchdog.pass_failed" for entry in logs)
    assert (await journal.stay("CHU-TEST", "V1")).alert_raised_at is not None


async def test_two_watchdogs_on_one_journal_raise_the_alert_once(journal):
    clock = FakeClock(DUE + timedelta(minutes=5))
    first, second = LetterWatchdog(journal, clock=clock), LetterWatchdog(journal, clock=clock)

    raised = await asyncio.gather(first.check_once(), second.check_once())

    assert sorted(len(stays) for stays in raised) == [0, 1]
    assert [e.state for e in await journal.events("K-A03") if e.step == "alert"] == ["letter_overdue"]
