"""Queue ZAM business acknowledgements for the HIS (consumed by the ``acks.his`` stage).

ZAM^Z02 (ACK_RECEPTION_MSS) reports, per recipient, whether the secure mail
was accepted; an error ZAM carries ERR with the reason. The acks are queued
on the bus rather than sent inline so that an HIS that is down delays only
its acknowledgements, never the delivery of documents.
"""

from __future__ import annotations

import uuid

from router import queues
from router.hl7.charset import encode_message
from router.hl7.msh import read_header
from router.hl7.zam import build_zam_z02
from router.model import MessageSource
from router.ports import Bus, Journal, JournalEvent
from router.stages.clock import now

#: ERR detail codes for failed MSSanté deliveries (ERR-5, table MSSERRORCODE of our own).
MSS_REJECTED = ("MSSRejected", "Refusé par le relais MSSanté")
MSS_UNREACHABLE = ("MSSUnavailable", "Relais MSSanté injoignable")
DOCUMENT_INVALID = ("DocumentInvalid", "Document ou message invalide")


class ZamQueue:
    """Builds ZAM^Z02 messages and publishes them for the HIS, journaling each."""

    def __init__(self, bus: Bus, journal: Journal, *, enabled: bool):
        self.bus = bus
        self.journal = journal
        self.enabled = enabled

    async def reception_mss(self, source: MessageSource, message_key: str, *, document_id: str,
                            address: str, recipient_id: str, delivered: bool,
                            reason: str = "", detail: tuple[str, str] = MSS_REJECTED) -> None:
        """Queue one ZAM^Z02 for ``address`` (empty address: the whole message failed)."""
        destination = "his"
        if not self.enabled:
            await self.journal.add_event(JournalEvent(
                message_key=message_key, at=now(), step="zam", state="skipped", document_id=document_id,
                destination=destination, detail="no HIS acknowledgement destination configured ([acks])"))
            return
        original = read_header(source.msh)
        kwargs = {}
        if not delivered:
            kwargs = {"error_code": "207", "error_text": "Application internal error",
                      "detail_code": detail[0], "detail_text": f"{detail[1]}: {reason}"[:200]}
        text = build_zam_z02(original, recipient_address=address, recipient_id=recipient_id,
                             delivered=delivered, **kwargs)
        zam_id = f"zam:{message_key}:{document_id}:{address or 'message'}:{'Y' if delivered else 'N'}"
        await self.bus.publish(queues.ACKS_HIS, encode_message(text, source.codec),
                               message_id=f"{zam_id}:{uuid.uuid4().hex[:8]}",
                               headers={"message_key": message_key, "document_id": document_id,
                                        "recipient": address, "codec": source.codec})
        await self.journal.add_event(JournalEvent(
            message_key=message_key, at=now(), step="zam", state="queued", document_id=document_id,
            destination=destination,
            detail=f"ZAM^Z02 {'Y' if delivered else 'N'} for {address or 'the message'}"))
