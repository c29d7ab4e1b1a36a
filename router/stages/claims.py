"""A worker's claims while it sends: its own renewed, another's waited out.

A claim (:meth:`router.ports.Journal.claim`) is a lease. While the worker that
holds it mails the recipient (or deposits in the DMP), :func:`renewing` stamps
it again every third of the lease, so that the job's other copies and the claim
sweep (:mod:`router.claim_sweep`) find it stale only once its worker stopped
(killed, or stuck for a whole lease). Without it, a slow relay, or a mail
waiting for a free SMTP connection behind others, made a live worker's claim
look abandoned: reported stale, then failed as "not confirmed" with a ZAM N
while the worker went on to mail it.

A copy of a job that finds a recipient claimed by someone else is, most often,
the job of a worker that died, come back from the bus at once. :func:`held_until_released`
waits, in place and at most one lease, until each such claim is settled or
lapses, so that the copy takes it over now; sent back to the bus instead, it
would queue behind every job that came in meanwhile, and the claim sweep could
give the recipient up before it came back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog

from router.errors import TransientError
from router.ports import Journal, Outcome, OutcomeStatus
from router.stages.clock import now

log = structlog.get_logger(__name__)


@asynccontextmanager
async def renewing(journal: Journal, document_id: str, destinations: Sequence[str], *, message_key: str,
                   lease: timedelta) -> AsyncIterator[None]:
    """Renew the claims ``message_key`` holds on ``destinations`` every third of ``lease``, until the block ends."""
    interval = max(lease.total_seconds() / 3, 0.01)
    task = asyncio.create_task(_renew(journal, document_id, list(destinations), message_key, interval),
                               name=f"claim-renewal {document_id}")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            log.error("claims.renewal_stopped", document_id=document_id, message_key=message_key,
                      error=repr(task.exception()))


async def held_until_released(journal: Journal, document_id: str, destinations: Sequence[str], *,
                              lease: timedelta) -> dict[str, Outcome]:
    """Wait until none of ``destinations`` is a live claim (settled, or not renewed within ``lease``), or one
    lease has passed (the claim is being renewed: its worker is alive); return the outcomes then."""
    seconds = lease.total_seconds()
    interval = max(min(seconds / 3, 1.0), 0.01)
    deadline = time.monotonic() + seconds + interval
    while True:
        await asyncio.sleep(interval)
        current = {o.destination: o for o in await journal.outcomes(document_id)}
        live = [d for d in destinations if d in current and current[d].status == OutcomeStatus.SENDING
                and current[d].at >= now() - lease]
        if not live or time.monotonic() >= deadline:
            return current


async def _renew(journal: Journal, document_id: str, destinations: list[str], message_key: str,
                 interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await journal.renew_claims(document_id, destinations, message_key=message_key)
        except TransientError as exc:       # the next renewal may pass; past the lease the claim is taken over
            log.warning("claims.renew_failed", document_id=document_id, message_key=message_key, error=str(exc))
