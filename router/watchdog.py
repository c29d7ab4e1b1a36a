"""The compliance watchdog: a discharge whose lettre de liaison is overdue raises an alert.

Every ``engine.watchdog_interval`` seconds it asks the journal for the stays
that are due (discharged, letter not sent, deadline passed, not yet alerted,
see :meth:`router.ports.Journal.stays_due`) and for each one:

- appends a journal event (step ``alert``, state ``letter_overdue``) to the
  message that last changed the stay (the A03);
- logs a warning with the encounter id, the IPP and that message key only —
  never names nor the INS;
- marks the stay ``alert_raised_at`` so that it is raised once, also when
  several servers run the watchdog on one journal: a stay another one marked
  meanwhile (``mark_stay`` returns it as it was) is left to it. With a
  ``runner`` (the journal, as a :class:`router.ports.SingleRunner`) only one
  server does each pass at all.

The alert is cleared by the ADT stage (A13, or a later A03) and by the
dispatch of the letter (:meth:`router.stages.adt.AdtStage.letter_dispatched`),
both journaled as ``alert_cleared``. A failing pass (journal unavailable) is
logged and the next pass tries again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from router.periodic import PeriodicTask, one_at_a_time
from router.ports import Journal, JournalEvent, SingleRunner, Stay
from router.stages.clock import now as system_now

log = structlog.get_logger(__name__)

LEASE = "letter-watchdog"        # one pass at a time among the servers sharing the journal


class LetterWatchdog:
    """Runs :meth:`check_once` every ``interval`` seconds, the first pass at :meth:`start`."""

    def __init__(self, journal: Journal, *, interval: float = 60.0, clock: Callable[[], datetime] = system_now,
                 batch: int = 100, runner: SingleRunner | None = None):
        self.journal = journal
        self.interval = interval
        self.clock = clock
        self.batch = batch
        self._timer = PeriodicTask(one_at_a_time(runner, LEASE, self.check_once), interval, name="letter-watchdog",
                                   failure_event="watchdog.pass_failed")

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._timer.running

    def start(self) -> None:
        self._timer.start()

    async def stop(self) -> None:
        """Stop the loop after the pass in progress, if any."""
        await self._timer.stop()

    async def check_once(self) -> list[Stay]:
        """One pass: raise an alert for every overdue stay (at most ``batch``); return those it raised."""
        moment = self.clock()
        due = await self.journal.stays_due(moment, limit=self.batch)
        raised = []
        for stay in due:
            before = await self.journal.mark_stay(stay.facility, stay.encounter, alert_raised_at=moment)
            if before is None or before.alert_raised_at is not None:
                continue            # another server's watchdog raised it meanwhile
            raised.append(stay)
            await self.journal.add_event(JournalEvent(
                message_key=stay.message_key, at=system_now(), step="alert", state="letter_overdue",
                detail=f"stay {stay.encounter} ({stay.facility}): lettre de liaison not sent by "
                       f"{stay.letter_due_at.isoformat() if stay.letter_due_at else '?'}"))
            log.warning("watchdog.letter_overdue", encounter=stay.encounter, ipp=stay.ipp,
                        message_key=stay.message_key)
        return raised
