"""What the notices coming back to the structure's mailbox say, and what Liaison does with each.

Three kinds come back for a mail sent over MSSanté (``channels/notices`` reads them):

- a **DSN** (RFC 3464), asked with ``NOTIFY=SUCCESS,FAILURE``: per recipient, delivered or failed,
  with a status code (``5.1.1``) and the server's text;
- an **MDN** (RFC 8098), asked with ``Disposition-Notification-To``: the recipient's software
  displayed or processed the mail, or (ANS form) ``processed/Error: <code>^<label>``: it could not
  integrate the document;
- the ANS **error mail** ("[KO Intégration système !][code] ...", IG struct-email-standard): the same
  integration error when no MDN was asked.

:class:`NoticeDecider` matches a notice to the journaled mail (by ENVID, then by the Message-IDs it
quotes), records each recipient's step once (``Journal.mark_mail``) and queues the ZAM that step
calls for (the ZAM path of the delivery stage, :class:`~router.stages.zam.ZamQueue`):

==================================  ======================  ===========================================
notice                              recipient step          ZAM to the HIS
==================================  ======================  ===========================================
DSN delivered (relayed, expanded)   delivered               Z02 Y, EVN-2 the time of delivery (if ACK_RECEPTION=Y)
DSN failed                          failed                  Z02 N, ERR: status code and text (always); the
                                                            outcome FAILED, the message PARTIAL or FAILED
DSN delayed                         none                    none (only journaled)
MDN displayed / processed           read                    Z03 Y with the reader (if ACK_LECTURE=Y)
MDN processed/Error, error mail     error                   Z03 N, ERR: the recipient's code and label (always)
MDN deleted / denied / other        none                    none (only journaled)
==================================  ======================  ===========================================

A step recorded already (the same notice read twice, a copy from a second server) changes nothing
and sends nothing. The ZAM is queued after the step is recorded, and the step is forgotten again if
queueing fails, so that the notice is read again later; a crash between the two loses that ZAM.
Nothing is invented: a mail delivered and never read gets no Z03.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import structlog

from router.errors import TransientError
from router.ports import (Journal, MailRecipient, MailStep, MessageState, NoticeRecord, NoticeVerdict, Outcome,
                          OutcomeStatus, SentMail)
from router.stages.clock import now
from router.stages.zam import ZamQueue

log = structlog.get_logger(__name__)

#: ERR-5 of a failed delivery DSN and of an integration error (table MSSERRORCODE of our own).
MSS_NOT_DELIVERED = ("MSSNotDelivered", "Non distribué par la messagerie du destinataire")
MSS_NOT_INTEGRATED = "MSSIntegrationError"


class NoticeNotReady(TransientError):
    """The notice is about a mail whose sending is not journaled yet: leave it for the next pass."""


class NoticeKind(StrEnum):
    DSN = "dsn"
    MDN = "mdn"
    ERROR_MAIL = "error-mail"


@dataclass(frozen=True)
class RecipientReport:
    """What a notice says about one recipient."""

    recipient: str                 # the address as we wrote it (Original-Recipient), else Final-Recipient
    action: str                    # DSN: delivered|failed|delayed|relayed|expanded; MDN: displayed|processed|...;
                                   # error mail: error
    status: str = ""               # DSN status code (5.1.1)
    diagnostic: str = ""           # DSN Diagnostic-Code text, or the MDN's human text
    error_code: str = ""           # MDN processed/Error and error mail: the recipient's code (902)
    error_label: str = ""          # ... and its label
    final_recipient: str = ""      # who reports (the reader of an MDN)
    at: datetime | None = None     # when the notice says it happened (Arrival-Date, Date)


@dataclass(frozen=True)
class Notice:
    """A notice read from the mailbox, as ``channels.notices.parse`` understood it."""

    notice_id: str                 # its Message-ID, else a digest of its bytes
    kind: NoticeKind
    envelope_id: str = ""          # Original-Envelope-Id (DSN)
    message_ids: tuple[str, ...] = ()   # Message-IDs it quotes: Original-Message-ID, References, attached headers
    reports: tuple[RecipientReport, ...] = ()
    date: datetime | None = None   # its Date header


class NoticeDecider:
    """Apply a notice to the journal and queue the ZAMs it calls for; one call per notice read."""

    def __init__(self, journal: Journal, zams: ZamQueue):
        self.journal = journal
        self.zams = zams

    async def apply(self, notice: Notice) -> NoticeVerdict:
        """Match, record, answer; the verdict is also kept in the journal's notices."""
        mail = await self._match(notice)
        if mail is None:
            await self._keep(notice, NoticeVerdict.UNMATCHED, None,
                             f"{notice.kind} naming no mail sent by Liaison (ENVID {notice.envelope_id or '-'}, "
                             f"{len(notice.message_ids)} Message-ID(s) quoted)")
            return NoticeVerdict.UNMATCHED
        if notice.kind == NoticeKind.DSN:
            await self._sent_already(mail, notice)
        matched = repeated = 0
        said = []
        for report in notice.reports:
            recipient = _recipient(mail, report)
            if recipient is None:
                said.append(f"{report.action} for {report.recipient or '?'}: not a recipient of mail "
                            f"{mail.message_id}")
                continue
            matched += 1
            step = _step(notice.kind, report)
            if step is None:
                said.append(f"{report.action} for {recipient.address}: noted, no step")
            elif await self._record(mail, recipient, step, report, notice):
                said.append(f"{step} for {recipient.address}")
            else:
                repeated += 1
                said.append(f"{step} for {recipient.address} already recorded")
        if not matched:
            verdict = NoticeVerdict.UNMATCHED          # it names our mail, but none of its recipients
        elif repeated == matched:
            verdict = NoticeVerdict.DUPLICATE
        else:
            verdict = NoticeVerdict.MATCHED
        await self._keep(notice, verdict, mail, "; ".join(said) or "no recipient reported")
        return verdict

    async def _match(self, notice: Notice) -> SentMail | None:
        if notice.envelope_id:
            mail = await self.journal.sent_mail(envelope_id=notice.envelope_id)
            if mail is not None:
                return mail
        for message_id in notice.message_ids:
            mail = await self.journal.sent_mail(message_id=message_id)
            if mail is not None:
                return mail
        return None

    async def _record(self, mail: SentMail, recipient: MailRecipient, step: MailStep, report: RecipientReport,
                      notice: Notice) -> bool:
        at = report.at or notice.date or now()
        detail = _detail(notice.kind, report)
        if not await self.journal.mark_mail(mail.envelope_id, recipient.address, step, at=at, detail=detail):
            return False
        try:
            await self._answer(mail, recipient, step, report, at, detail)
        except BaseException:
            await self.journal.unmark_mail(mail.envelope_id, recipient.address, step)
            raise
        if step == MailStep.FAILED:
            await self._failed_after_all(mail, recipient, detail)
        log.info("notice.applied", kind=str(notice.kind), step=str(step), message_key=mail.message_key,
                 document_id=mail.document_id)
        return True

    async def _answer(self, mail: SentMail, recipient: MailRecipient, step: MailStep, report: RecipientReport,
                      at: datetime, detail: str) -> None:
        common = dict(document_id=mail.document_id, event_time=at)
        if step == MailStep.DELIVERED and mail.ack_reception:
            await self.zams.reception_mss(mail.source, mail.message_key, address=recipient.address,
                                          recipient_id=recipient.identifier, delivered=True, **common)
        elif step == MailStep.FAILED:
            await self.zams.reception_mss(mail.source, mail.message_key, address=recipient.address,
                                          recipient_id=recipient.identifier, delivered=False, reason=detail,
                                          detail=MSS_NOT_DELIVERED, **common)
        elif step == MailStep.READ and mail.ack_lecture:
            await self.zams.reading_mss(mail.source, mail.message_key, reader=report.final_recipient or
                                        recipient.address, reader_id=recipient.identifier, read=True, **common)
        elif step == MailStep.ERROR:
            # ERR-5 is the recipient's own code and label as it sent them (the reader is in LECTEUR_MSS).
            await self.zams.reading_mss(mail.source, mail.message_key, reader=report.final_recipient or
                                        recipient.address, reader_id=recipient.identifier, read=False,
                                        detail=(report.error_code or MSS_NOT_INTEGRATED,
                                                report.error_label or "Erreur d'intégration"), **common)

    async def _sent_already(self, mail: SentMail, notice: Notice) -> None:
        """A DSN can come back before the relay's answer is journaled: read it again later, not before."""
        sending = {o.destination for o in await self.journal.outcomes(mail.delivery_key)
                   if o.status == OutcomeStatus.SENDING and o.message_key == mail.message_key}
        for report in notice.reports:
            recipient = _recipient(mail, report)
            if recipient is not None and recipient.address in sending:
                raise NoticeNotReady(f"{notice.kind} for a mail still being sent (message {mail.message_key}): "
                                     "read again at the next pass")

    async def _failed_after_all(self, mail: SentMail, recipient: MailRecipient, detail: str) -> None:
        """The relay took it but it was not delivered: the recipient's outcome becomes FAILED, the message's
        state PARTIAL or FAILED, as if the relay had refused it (a re-send under a new MSH-10 tries again)."""
        await self.journal.record_outcome(Outcome(
            document_id=mail.delivery_key, destination=recipient.address, status=OutcomeStatus.FAILED,
            detail=f"not delivered (DSN): {detail}", at=now(), message_key=mail.message_key))
        outcomes = [o for o in await self.journal.outcomes(mail.delivery_key) if o.message_key == mail.message_key]
        accepted = sum(o.status == OutcomeStatus.ACCEPTED for o in outcomes)
        await self.journal.set_state(
            mail.message_key, MessageState.PARTIAL if accepted else MessageState.FAILED, step="delivered",
            detail=f"{accepted}/{len(outcomes)} recipient(s) accepted, {recipient.address} not delivered (DSN)",
            only_from=frozenset({MessageState.DELIVERED, MessageState.PARTIAL}))

    async def _keep(self, notice: Notice, verdict: NoticeVerdict, mail: SentMail | None, detail: str) -> None:
        await self.journal.record_notice(NoticeRecord(
            notice_id=notice.notice_id, kind=str(notice.kind), verdict=verdict, at=now(),
            envelope_id=mail.envelope_id if mail else "", message_key=mail.message_key if mail else "",
            detail=detail))


def _step(kind: NoticeKind, report: RecipientReport) -> MailStep | None:
    action = report.action.lower()
    if kind == NoticeKind.DSN:
        if action in ("delivered", "relayed", "expanded"):
            return MailStep.DELIVERED
        return MailStep.FAILED if action == "failed" else None
    if report.error_code or action == "error":
        return MailStep.ERROR
    if kind == NoticeKind.MDN and action in ("displayed", "processed"):
        return MailStep.READ
    return None


def _recipient(mail: SentMail, report: RecipientReport) -> MailRecipient | None:
    """The mail's recipient the report is about: by address, else the only one the mail had."""
    for candidate in (report.recipient, report.final_recipient):
        for recipient in mail.recipients:
            if candidate and recipient.address.lower() == candidate.lower():
                return recipient
    return mail.recipients[0] if len(mail.recipients) == 1 else None


def _detail(kind: NoticeKind, report: RecipientReport) -> str:
    if kind == NoticeKind.DSN:
        return " ".join(part for part in (report.action, report.status, report.diagnostic) if part)[:300]
    if report.error_code or report.error_label:
        return f"{report.action}: {report.error_code} {report.error_label}".strip()[:300]
    reader = f" by {report.final_recipient}" if report.final_recipient else ""
    return f"{report.action}{reader}"[:300]
