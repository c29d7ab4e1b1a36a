"""Stage ``acks.his``: send queued ZAM business acknowledgements to the HIS over its AckSink.

A HIS that is down or answers AR makes this stage retry through the bus
(``PeerUnavailable``); an AE parks the ZAM with the HIS's reason.
"""

from __future__ import annotations

from router.ports import AckSink, Envelope, Journal, JournalEvent
from router.stages.clock import now


class AckStage:
    def __init__(self, journal: Journal, sink: AckSink):
        self.journal = journal
        self.sink = sink

    async def __call__(self, envelope: Envelope) -> None:
        await self.sink.send(envelope.body)
        await self.journal.add_event(JournalEvent(
            message_key=envelope.headers.get("message_key", ""), at=now(), step="zam", state="sent",
            document_id=envelope.headers.get("document_id", ""), destination="his",
            detail=f"ZAM for {envelope.headers.get('recipient') or 'the message'} acknowledged by the HIS"))
