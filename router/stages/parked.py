"""What the journal records when settle() parks a message, per stage: nothing is parked silently."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from router import queues
from router.ports import Envelope, Journal, JournalEvent, MessageState
from router.stages.clock import now


def park_recorder(queue: str, journal: Journal, stage: object) -> Callable[[Envelope, str], Awaitable[None]]:
    """The on_park hook for ``queue``'s consumer.

    ``inbound``: the message is PARKED with the reason. ``deliver.mss``: the
    stage fails its pending recipients (with their ZAMs) and the message's
    timeline says the job was parked. ``acks.his``: the ZAM is parked; the
    message's timeline says so (its delivery state does not change).
    """

    async def record(envelope: Envelope, reason: str) -> None:
        key = envelope.headers.get("message_key") or envelope.message_id
        if queue == queues.INBOUND:
            await journal.set_state(key, MessageState.PARKED, step="parked", detail=f"{queue}: {reason}",
                                    only_from=frozenset(MessageState) - {MessageState.PARKED, MessageState.DISCARDED})
            return
        hook = getattr(stage, "parked", None)
        if hook is not None:
            await hook(envelope, reason)
        await journal.add_event(JournalEvent(message_key=key, at=now(), step="parked", state=queue,
                                             document_id=envelope.headers.get("document_id", ""),
                                             detail=f"{queue}: {reason}"))

    return record
