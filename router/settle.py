"""The one place that settles a bus delivery: ack, retry later, or park.

Handlers never ack by themselves. They return normally (done), or raise: a
``PermanentError`` parks at once with its reason; a ``TransientError`` retries
after the next delay of the policy and parks when the delays are spent; any
other exception is a defect in the engine, treated like a transient error so
that a fixed build can still process the message, and logged with its trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from router.errors import PermanentError, TransientError
from router.ports import Delivery, Envelope

log = structlog.get_logger(__name__)

PARK_REASON_HEADER = "x-park-reason"


@dataclass(frozen=True)
class RetryPolicy:
    """Delays (seconds) between attempts; after the last one the message is parked."""

    delays: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0)

    def next_delay(self, attempt: int) -> float | None:
        """Delay before retry number ``attempt + 1``, or None when retries are spent."""
        return self.delays[attempt] if attempt < len(self.delays) else None


async def settle(delivery: Delivery, work: Callable[[Envelope], Awaitable[None]],
                 policy: RetryPolicy, *, queue: str = "",
                 on_park: Callable[[Envelope, str], Awaitable[None]] | None = None) -> str:
    """Run ``work`` on the delivery's envelope and settle it; return "ack", "retry" or "park".

    ``on_park`` is told before a message is parked (the journal records why), so
    that nothing is parked behind the journal's back.
    """
    envelope = delivery.envelope
    try:
        await work(envelope)
    except PermanentError as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.warning("bus.park", queue=queue, message_id=envelope.message_id, reason=str(exc))
        await _tell(on_park, envelope, reason, queue)
        await delivery.park(reason)
        return "park"
    except Exception as exc:  # noqa: BLE001 - every failure must settle the delivery
        transient = isinstance(exc, TransientError)
        reason = f"{type(exc).__name__}: {exc}"
        delay = policy.next_delay(envelope.attempt)
        if not transient:
            log.exception("bus.handler_defect", queue=queue, message_id=envelope.message_id)
        if delay is None:
            log.warning("bus.park", queue=queue, message_id=envelope.message_id,
                        reason=reason, attempts=envelope.attempt + 1)
            reason = f"retries spent after {envelope.attempt + 1} attempts; last: {reason}"
            await _tell(on_park, envelope, reason, queue)
            await delivery.park(reason)
            return "park"
        log.info("bus.retry", queue=queue, message_id=envelope.message_id, delay=delay, reason=reason)
        await delivery.retry(delay, reason)
        return "retry"
    await delivery.ack()
    return "ack"


async def _tell(on_park, envelope: Envelope, reason: str, queue: str) -> None:
    """Run the park hook; its own failure is logged and never stops the parking."""
    if on_park is None:
        return
    try:
        await on_park(envelope, reason)
    except Exception:  # noqa: BLE001 - the message must still be parked
        log.exception("bus.park_hook_failed", queue=queue, message_id=envelope.message_id)
