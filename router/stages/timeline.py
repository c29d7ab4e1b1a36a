"""A job's steps within one stage, written to the journal together rather than one commit each.

Why: every awaited journal write is a durable commit (an fsync on SQLite, a WAL flush on
PostgreSQL). The inbound stage used to await one per step (PFI read, each recipient, XSD,
engine checks, schematron): five to eight commits a document before its state even changed.
Here the steps are kept, each with the time it happened, and written in one operation when the
stage reaches a point that matters (before it binds the content, parks the job, or hands it on).

Nothing is lost by waiting: a step not yet written is one the stage has not acted on outside
the process, so a worker that dies before the flush leaves the message to be redelivered, and
the redelivered job takes the same steps again. The timeline is ordered by each step's time,
not by when it was written.
"""

from __future__ import annotations

from router.ports import Journal, JournalEvent
from router.stages.clock import now


class Timeline:
    """The pending steps of one message's job in a stage."""

    def __init__(self, journal: Journal, message_key: str, document_id: str = ""):
        self.journal = journal
        self.message_key = message_key
        self.document_id = document_id
        self._pending: list[JournalEvent] = []

    def add(self, step: str, state: str, detail: str, *, destination: str = "") -> None:
        """Note a step now; it reaches the journal with the next :meth:`flush`."""
        self._pending.append(JournalEvent(message_key=self.message_key, at=now(), step=step, state=state,
                                          detail=detail, document_id=self.document_id, destination=destination))

    async def flush(self) -> None:
        """Write the pending steps in one journal operation (nothing when none is pending)."""
        if self._pending:
            events, self._pending = self._pending, []
            await self.journal.add_events(events)
