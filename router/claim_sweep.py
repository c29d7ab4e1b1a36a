"""The claim sweep: a recipient claimed by a worker that died is never left "sending" for ever.

Before mailing a recipient (or depositing in the DMP), a worker *claims* it in
the journal; the claim is a lease. If the worker dies, its job comes back from
the bus and the next copy takes the claim over once the lease has passed
(:meth:`router.ports.Journal.claim`); until then that copy waits (it is retried,
never acked). A live worker renews its claims while it sends
(:mod:`router.stages.claims`), so only a stopped worker's claim gets
past its lease. This sweep looks at the claims from the other side, every
``interval`` seconds:

- a claim not renewed within its lease is journaled once (step ``claim``, state
  ``stale``) and logged: a worker stopped mid-send and the job's next copy
  should take it over;
- a claim not renewed for ``give_up_after`` (the lease plus the whole retry policy:
  no copy of its job came back to take it over, e.g. the job was purged) is
  settled as *failed* with that reason: "not confirmed", because the relay may
  have taken the mail before the worker died (the same Message-ID is used by
  every attempt, so a copy is recognisable), and the HIS gets its ZAM^Z02 N
  (ZAM^Z01 N for the DMP). The message's state is settled from its outcomes.

With a ``runner`` (the journal as :class:`router.ports.SingleRunner`) one server sweeps at a
time: two sweeps giving the same claim up at once would each send the HIS a ZAM N.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from router.hl7.parse import parse_message
from router.periodic import PeriodicTask, one_at_a_time
from router.ports import Journal, JournalEvent, MessageState, Outcome, OutcomeStatus, SingleRunner
from router.stages.clock import now as system_now
from router.stages.process import message_source
from router.stages.zam import MSS_UNREACHABLE, DMP_UNREACHABLE, ZamQueue

log = structlog.get_logger(__name__)

DMP = "dmp"
LEASE = "claim-sweep"             # one sweep at a time among the servers sharing the journal
_FINAL = {OutcomeStatus.ACCEPTED, OutcomeStatus.FAILED, OutcomeStatus.REFUSED}
_OPEN = frozenset({MessageState.DISPATCHED, MessageState.PROCESSING, MessageState.QUEUED, MessageState.RECEIVED})


class ClaimSweep:
    """Runs :meth:`sweep_once` every ``interval`` seconds; see the module docstring."""

    def __init__(self, journal: Journal, zams: ZamQueue, *, lease: timedelta, give_up_after: timedelta,
                 interval: float, clock: Callable[[], datetime] = system_now, batch: int = 100,
                 runner: SingleRunner | None = None):
        self.journal = journal
        self.zams = zams
        self.lease = lease
        self.give_up_after = max(give_up_after, lease)
        self.clock = clock
        self.batch = batch
        self._reported: set[tuple[str, str, datetime]] = set()
        # One sweep at a time among the servers: two sweeps giving the same claim up would send two ZAMs N.
        self._task = PeriodicTask(one_at_a_time(runner, LEASE, self.sweep_once), interval, name="claim-sweep", failure_event="claims.sweep_failed",
                                  first_delay=lambda: interval)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def sweep_once(self) -> int:
        """One look at the claims past their lease; returns how many were settled as failed."""
        moment = self.clock()
        settled = 0
        for claim in await self.journal.stale_claims(moment - self.lease, limit=self.batch):
            if claim.at < moment - self.give_up_after:
                await self._give_up(claim)
                settled += 1
            elif (claim.document_id, claim.destination, claim.at) not in self._reported:
                self._reported.add((claim.document_id, claim.destination, claim.at))
                log.warning("claims.stale", document_id=claim.document_id, message_key=claim.message_key,
                            last_renewed_at=claim.at.isoformat())
                await self.journal.add_event(JournalEvent(
                    message_key=claim.message_key, at=system_now(), step="claim", state="stale",
                    document_id=claim.document_id, destination=claim.destination,
                    detail=f"last renewed at {claim.at:%Y-%m-%d %H:%M:%S} UTC, past its lease of "
                           f"{self.lease.total_seconds():.0f} s: the worker stopped; its job's next copy takes "
                           "the claim over"))
        return settled

    async def _give_up(self, claim: Outcome) -> None:
        """No copy of the job came back: the claim is settled as failed, not confirmed, and the HIS told."""
        reason = (f"not confirmed: the worker holding it stopped at {claim.at:%Y-%m-%d %H:%M:%S} UTC and no "
                  f"copy of its job came back within {self.give_up_after.total_seconds():.0f} s; the relay may "
                  "hold a copy (same Message-ID on every attempt)")
        record = await self.journal.message(claim.message_key)
        if record is not None:
            try:
                source = message_source(parse_message(record.raw, "utf-8"))
            except Exception:       # the message was readable when it was dispatched; a ZAM is best effort here
                log.warning("claims.no_source", message_key=claim.message_key)
            else:
                document_id = claim.document_id.split("#", 1)[0]
                if claim.destination == DMP:
                    await self.zams.reception_dmp(source, claim.message_key, document_id=document_id,
                                                  delivered=False, reason=reason, detail=DMP_UNREACHABLE)
                else:
                    await self.zams.reception_mss(source, claim.message_key, document_id=document_id,
                                                  address=claim.destination, recipient_id="", delivered=False,
                                                  reason=reason, detail=MSS_UNREACHABLE)
        await self.journal.record_outcome(Outcome(document_id=claim.document_id, destination=claim.destination,
                                                  status=OutcomeStatus.FAILED, detail=reason, at=system_now(),
                                                  message_key=claim.message_key))
        log.warning("claims.given_up", document_id=claim.document_id, message_key=claim.message_key)
        await self._settle(claim)

    async def _settle(self, claim: Outcome) -> None:
        """The message's state from its document's outcomes, once none is pending any more."""
        outcomes = [o for o in await self.journal.outcomes(claim.document_id)
                    if o.message_key == claim.message_key or o.status == OutcomeStatus.ACCEPTED]
        if not outcomes or any(o.status not in _FINAL for o in outcomes):
            return
        accepted = sum(o.status == OutcomeStatus.ACCEPTED for o in outcomes)
        state = (MessageState.DELIVERED if accepted == len(outcomes) else
                 MessageState.PARTIAL if accepted else MessageState.FAILED)
        await self.journal.set_state(claim.message_key, state, step="delivered",
                                     detail=f"{accepted}/{len(outcomes)} destination(s) accepted (claim sweep)",
                                     only_from=_OPEN)
