"""Queue ZAM business acknowledgements for the HIS (consumed by the ``acks.his`` stage).

ZAM^Z02 (ACK_RECEPTION_MSS) reports, per recipient, whether the secure mail
was accepted (by the relay, then delivered when a DSN says so); ZAM^Z03
(ACK_LECTURE_MSS) that it was read or could not be integrated (``router.notices``);
an error ZAM carries ERR with the reason. The acks are queued
on the bus rather than sent inline so that an HIS that is down delays only
its acknowledgements, never the delivery of documents.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog

from router import queues
from router.hl7.charset import encode_message
from router.hl7.msh import read_header
from router.hl7.zam import build_zam_z01, build_zam_z02, build_zam_z03
from router.errors import EngineError, TransientError
from router.model import MessageSource, Refusal
from router.ports import Bus, Journal, JournalEvent
from router.stages.clock import now

log = structlog.get_logger(__name__)

#: ERR detail codes for failed MSSanté deliveries (ERR-5, table MSSERRORCODE of our own).
MSS_REJECTED = ("MSSRejected", "Refusé par le relais MSSanté")
MSS_UNREACHABLE = ("MSSUnavailable", "Relais MSSanté injoignable")
NOT_WHITELISTED = ("MSSDomainNotWhitelisted", "Domaine hors liste blanche de l'espace de confiance MSSanté")
PATIENT_NOT_QUALIFIED = ("PatientINSNotQualified", "INS du patient non qualifié : pas d'envoi à sa messagerie")
DOCUMENT_INVALID = ("DocumentInvalid", "Document ou message invalide")
RECIPIENT_INVALID = ("MSSRecipientInvalid", "Destinataire MSSanté invalide")
DMP_REJECTED = ("DMPRejected", "Refusé par le DMP")
DMP_UNREACHABLE = ("DMPUnavailable", "DMP injoignable")
DMP_NOT_ALLOWED = ("DMPNotAllowed", "Dépôt DMP non autorisé pour ce document")
DMP_NOT_CONFIGURED = ("DMPNotConfigured", "Pas de canal de dépôt DMP configuré sur la plateforme")


def refusal_detail(cause: EngineError | Refusal, default: tuple[str, str]) -> tuple[str, str]:
    """ERR-5 of a refusal: the volet's own codes (9xx, the patient checks) as they are, else ``default``."""
    return (cause.hl7_code, cause.hl7_text) if cause.hl7_code.startswith("9") else default


class ZamQueue:
    """Builds ZAM^Z02 messages and publishes them for the HIS, journaling each."""

    def __init__(self, bus: Bus, journal: Journal, *, enabled: bool):
        self.bus = bus
        self.journal = journal
        self.enabled = enabled

    async def reception_mss(self, source: MessageSource, message_key: str, *, document_id: str,
                            address: str, recipient_id: str, delivered: bool, reason: str = "",
                            detail: tuple[str, str] = MSS_REJECTED, error_code: str = "207",
                            event_time: datetime | None = None, error_location: str = "") -> None:
        """Queue one ZAM^Z02 for ``address`` (empty address: the whole message failed).

        ``event_time`` (EVN-2) is when it happened, when that was not now: a re-send is
        answered with the time the recipient accepted the document the first time.
        ``error_location`` (ERR-2) names the field of the original message at fault, when there is one.
        """
        await self._queue(source, message_key, document_id, address, "Z02", delivered, reason, detail, error_code,
                          lambda original, kwargs: build_zam_z02(original, recipient_address=address,
                                                                 recipient_id=recipient_id, delivered=delivered,
                                                                 event_time=event_time, error_location=error_location,
                                                                 **kwargs))

    async def reading_mss(self, source: MessageSource, message_key: str, *, document_id: str, reader: str,
                          reader_id: str = "", read: bool = True, reason: str = "",
                          detail: tuple[str, str] = MSS_REJECTED, event_time: datetime | None = None) -> None:
        """Queue one ZAM^Z03 (ACK_LECTURE_MSS): ``reader`` read the mail, or could not integrate it (``read=False``,
        ERR-5 the recipient's own code and label)."""
        await self._queue(source, message_key, document_id, reader, "Z03", read, reason, detail, "207",
                          lambda original, kwargs: build_zam_z03(original, reader_address=reader,
                                                                 reader_id=reader_id, read=read,
                                                                 event_time=event_time, **kwargs))

    async def reception_dmp(self, source: MessageSource, message_key: str, *, document_id: str, delivered: bool,
                            reason: str = "", detail: tuple[str, str] = DMP_NOT_CONFIGURED,
                            event_time: datetime | None = None) -> None:
        """Queue the ZAM^Z01 that answers DESTDMP=Y (``event_time`` as for :meth:`reception_mss`)."""
        await self._queue(source, message_key, document_id, "dmp", "Z01", delivered, reason, detail, "207",
                          lambda original, kwargs: build_zam_z01(original, delivered=delivered,
                                                                 event_time=event_time, **kwargs))

    async def _queue(self, source, message_key, document_id, target, trigger, delivered, reason, detail,
                     error_code, build) -> None:
        if not self.enabled:
            await self.journal.add_event(JournalEvent(
                message_key=message_key, at=now(), step="zam", state="skipped", document_id=document_id,
                destination="his", detail="no HIS acknowledgement destination configured ([acks])"))
            return
        kwargs = {}
        if not delivered:
            kwargs = {"error_code": error_code, "error_text": _ERROR_TEXTS.get(error_code, "Application error"),
                      "detail_code": detail[0], "detail_text": (f"{detail[1]}: {reason}" if reason else detail[1])[:200]}
        text = build(read_header(source.msh), kwargs)
        await self.bus.publish(queues.ACKS_HIS, encode_message(text, source.codec),
                               message_id=f"zam:{message_key}:{trigger}:{uuid.uuid4().hex[:12]}",
                               headers={"message_key": message_key, "document_id": document_id,
                                        "recipient": "" if target == "dmp" else target, "codec": source.codec})
        try:
            await self.journal.add_event(JournalEvent(
                message_key=message_key, at=now(), step="zam", state="queued", document_id=document_id,
                destination="his",
                detail=f"ZAM^{trigger} {'Y' if delivered else 'N'} for {target or 'the message'}"))
        except TransientError as exc:
            # The ZAM is on the bus already: failing here would have the caller queue a second one.
            # The acks stage journals its sending to the HIS; only this "queued" line is missing.
            log.warning("zam.queued_event_lost", message_key=message_key, trigger=trigger, error=str(exc))


#: HL7 table 0357 texts for the ERR-3 codes the stages use.
_ERROR_TEXTS = {"100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
                "103": "Table value not found", "200": "Unsupported message type", "201": "Unsupported event code",
                "204": "Unknown key identifier", "205": "Duplicate key identifier",
                "207": "Application internal error"}
