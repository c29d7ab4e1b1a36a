"""Stage ``inbound``: a stored HL7 message becomes a checked DocumentJob (or a stay update).

Routing by message type happens here, once: ADT goes to
:class:`~router.stages.adt.AdtStage` (the stay state), ORU/MDM to the PFI path
below. When a lettre de liaison (:meth:`AdtStage.is_stay_letter`) is dispatched, the ADT stage marks
its stay's letter sent (matching on MSH-4 + PID-18/PV1-19).

A message without a CDA in it (render mode: an MDM with a PDF letter, an ORU
with discrete lab results) is rendered by :class:`~router.stages.render.RenderStage`
and then checked like any other (XSD, and the schematrons of its volet).

Full parse (python-hl7), PFI reading (CDA from OBX-5, PRT recipients,
MetaDMPMSS flags and their combination rules, PID against the CDA), then the
CDA against ``CDA_extended.xsd``, the engine's own checks (:mod:`router.cda_checks`:
known volet, no look-alike INS OID, type code in JDV_J07/J66 and of its volet) and
the schematron of its volet (:mod:`router.content_check`). A document no volet
schematron checks gets the configured outcome (:mod:`router.unchecked`: refused
for the DMP, a journaled warning for mail, by default). Only a job that passed
every check is handed to delivery. A permanent failure is recorded in the journal with its reason,
reported to the HIS as an error ZAM, and re-raised so settle() parks it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from router import queues
from router.cda_checks import template_ids_of
from router.cda_xml import parse_cda
from router.content_check import ContentCheck
from router.errors import PermanentError, TransientError, UnsupportedMessageError, ValidationError
from router.hl7.parse import parse_message
from router.model import Action, CdaHeader, DocumentJob, MessageSource, Recipient, RecipientKind
from router.job_transport import job_body
from router.mode import is_render_mode
from router.payloads import without_payloads
from router.pfi import read_pfi
from router.profile_sample import ProfileSample
from router.recipients_pfi import read_participants, value
from router.ports import Bus, Envelope, Journal, JournalEvent, MessageState
from router.stages.adt import AdtStage
from router.stages.clock import now
from router.stages.render import RenderStage
from router.stages.timeline import Timeline
from router.stages.zam import DOCUMENT_INVALID, ZamQueue, refusal_detail
from router.unchecked import UncheckedPolicy

log = structlog.get_logger(__name__)

#: A fast delivery may already have written the final state: never move it back.
_DISPATCHABLE = frozenset({MessageState.RECEIVED, MessageState.QUEUED, MessageState.PROCESSING})

#: States after which a redelivered inbound message has nothing left to do here.
_DONE = {MessageState.DISPATCHED, MessageState.DELIVERED, MessageState.PARTIAL, MessageState.FAILED,
         MessageState.DISCARDED}


class ProcessStage:
    def __init__(self, bus: Bus, journal: Journal, zams: ZamQueue, *,
                 cda_reader: Callable[[bytes], CdaHeader],
                 schema_check: Callable[[bytes], None] | None,
                 content_check: ContentCheck | None = None,
                 default_charset: str = "utf-8", adt: AdtStage | None = None,
                 render: RenderStage | None = None,
                 render_check: ContentCheck | None = None, deposit: bool = False,
                 cda_checks: Callable[..., str] | None = None, unchecked: UncheckedPolicy = UncheckedPolicy(),
                 profile_sample: ProfileSample | None = None):
        self.bus = bus
        self.profile_sample = profile_sample
        self.cda_checks = cda_checks
        self.unchecked = unchecked
        self.deposit = deposit
        self.render = render
        self.render_check = render_check
        self.adt = adt
        self.journal = journal
        self.zams = zams
        self.cda_reader = cda_reader
        self.schema_check = schema_check
        self.content_check = content_check
        self.default_charset = default_charset

    async def __call__(self, envelope: Envelope) -> None:
        key = envelope.message_id
        record = await self.journal.message(key)
        if record is not None and record.state in _DONE:
            log.info("process.already_done", key=key, state=record.state)
            return
        await self.journal.set_state(key, MessageState.PROCESSING, step="processing",
                                     detail=f"attempt {envelope.attempt + 1}")
        source: MessageSource | None = None
        timeline: Timeline | None = None
        parsed = None
        body = envelope.body
        if envelope.headers.get(queues.BODY_HEADER) == queues.BODY_IN_JOURNAL:
            if record is None:
                raise TransientError(f"message {key} travelled as a journal reference but is not in the journal")
            body = record.raw           # a large message: the door journaled it and published a reference
        del record
        try:
            parsed = parse_message(body, envelope.headers.get("codec") or self.default_charset)
            del body
            if parsed.header.message_type.upper() == "ADT":
                if self.adt is None:
                    raise UnsupportedMessageError("ADT messages need the ADT stage, which is not configured")
                await self.adt.handle(key, parsed, envelope.headers.get("channel", ""))
                return
            source = message_source(parsed)
            content_check = self.content_check
            rendered = is_render_mode(parsed.message)
            if rendered:
                if self.render is None:
                    raise UnsupportedMessageError("render-mode message (no CDA in it) but render mode is not "
                                                  "configured on this engine")
                job = await self.render.job(key, parsed, source, envelope.headers.get("channel", ""))
                content_check = self.render_check
            else:
                job = read_pfi(parsed.message, message_key=key, source=source, cda_reader=self.cda_reader)
            timeline = Timeline(self.journal, key, job.header.document_id)
            if not rendered:
                timeline.add("pfi", "read", f"{job.action} {job.header.type_code} for {len(job.recipients)} "
                                            "recipient(s)")
                _note_pfi_recipients(job, timeline)
            checked = without_payloads(job.cda)     # the checks' view: embedded files stood in (router/payloads.py)
            if self.schema_check is not None:
                self.schema_check(checked)
                timeline.add("schema", "valid", "CDA conforms to CDA_extended.xsd")
            else:
                timeline.add("schema", "skipped", "no CDA schema directory configured")
            self._check_content(job, checked, content_check, rendered=rendered, timeline=timeline)
            await timeline.flush()
            await self._bind_content(job, timeline)
        except PermanentError as exc:
            if timeline is not None:
                await timeline.flush()      # the checks that passed, before the one that refused it
            await self.journal.set_state(key, MessageState.PARKED, step="invalid", detail=_reason(exc))
            if source is not None:
                await self._refusal_zams(source, key, parsed.message, exc)
            raise
        stay_letter = self.adt is not None and self.adt.is_stay_letter(job.header.type_code)
        encounters = _encounters(parsed.message) if stay_letter else None
        del parsed          # the parsed message holds ~5x a large one: not kept while the job is published
        if await self._dispatch(job, timeline) and stay_letter:
            await self.adt.letter_dispatched(
                facility=source.sending_facility or envelope.headers.get("channel", ""),
                encounters=encounters, message_key=key, document_id=job.header.document_id)
        if self.profile_sample is not None and self.profile_sample.due(job.content_digest):
            await self._sample_profiles(job, checked)

    async def _sample_profiles(self, job: DocumentJob, cda: bytes) -> None:
        """The sampled profile check (router/profile_sample.py): after dispatch, in a thread, never a refusal."""
        problems = await asyncio.to_thread(self.profile_sample.check, cda)
        log.info("process.profiles_sampled", key=job.message_key, failed=len(problems))
        if problems:
            await self._event(job.message_key, job, "profiles", "warning",
                              f"sampled CI-SIS profile check: {len(problems)} failed assertion(s) (not a refusal): "
                              + "; ".join(problems[:5])[:2000])
        else:
            await self._event(job.message_key, job, "profiles", "valid", "sampled CI-SIS profile check passed")

    async def _bind_content(self, job: DocumentJob, timeline: Timeline) -> None:
        """A document id stands for one content: a re-send is answered, another content under it refused.

        The first content dispatched under an id is bound to it. The same content
        again (a user pressed "send again": a new MSH-10) goes on, and the delivery
        stages answer it without mailing again; other content under a used id (a
        HIS bug, or a correction sent as F instead of C) would be silently taken
        for the earlier document, so it is refused. A deletion names the document
        it withdraws and is not bound.
        """
        if job.action is Action.DELETE:
            return
        digest = job.content_digest
        bound = await self.journal.bind_content(job.header.document_id, digest, job.message_key)
        if bound.digest == digest:
            if bound.message_key != job.message_key:
                timeline.add("content", "resent",
                             f"same content as message {await self._control_id(bound.message_key)} "
                             f"(dispatched {bound.at:%Y-%m-%d %H:%M:%S} UTC): recipients who accepted it "
                             "are not mailed again, and each gets its answer for this message")
            return
        earlier = await self._control_id(bound.message_key)
        raise ValidationError(
            f"document id {job.header.document_id} was already sent with other content by message {earlier} "
            f"on {bound.at:%Y-%m-%d %H:%M:%S} UTC; a corrected document is a replacement with a new id "
            "(OBX-11=C, or MDM^T10 with TXA-13 naming the parent)",
            hl7_code="205", hl7_text="Duplicate key identifier")

    async def _control_id(self, message_key: str) -> str:
        """The MSH-10 the HIS knows a journaled message by (the journal key when it is gone)."""
        record = await self.journal.message(message_key)
        return f"MSH-10 {record.control_id}" if record is not None else message_key

    def _check_content(self, job: DocumentJob, cda: bytes, content_check: ContentCheck | None, *,
                       rendered: bool, timeline: Timeline) -> None:
        """The engine checks, then the volet's schematron, on ``cda`` (the job's, embedded files stood in);
        a document no volet schematron checks gets the policy."""
        if self.cda_checks is None and content_check is None:
            return
        key = job.message_key
        wants_mail, to_dmp = self._destinations(job)
        document = parse_cda(cda)
        if self.cda_checks is not None:
            covered = self.cda_checks(document, to_dmp=to_dmp)
            timeline.add("engine_checks", "valid", covered)
        if content_check is None:
            return
        report = content_check.check(cda, template_ids_of(document))
        timeline.add("schematron", "valid",
                     f"{len(report.passed)} CI-SIS schematron(s) passed: {', '.join(report.passed) or 'none'}")
        if report.checked:
            return
        reason = report.unchecked_reason()
        refused_by = self.unchecked.refused_by(to_dmp=to_dmp, to_mail=wants_mail, rendered=rendered)
        if refused_by:
            raise ValidationError(f"{reason}: refused ({refused_by} = \"refuse\")",
                                  details=[f"checked by: {', '.join(report.passed) or 'no schematron'}"])
        log.warning("process.unchecked_volet", key=key, reason=reason)
        timeline.add("schematron", "warning", f"{reason}: sent with this warning")

    def _destinations(self, job: DocumentJob) -> tuple[bool, bool]:
        """(mailed to MSSanté recipients, deposited in the DMP): the one dispatch decision."""
        wants_mail = bool((job.flags.dest_mss_ps or job.flags.dest_mss_patient) and job.recipients)
        return wants_mail, bool(job.flags.dest_dmp and self.deposit)

    async def _refusal_zams(self, source: MessageSource, key: str, message, exc: PermanentError) -> None:
        """One ZAM^Z02 N per PRT recipient (one for the message when they cannot be read), with the reason.

        9xx (patient) codes of the volet go in ERR-5; table 0357 codes in ERR-3; the field at fault in ERR-2.
        """
        own_table = exc.hl7_code.startswith("9")
        detail = refusal_detail(exc, DOCUMENT_INVALID)
        try:
            recipients = read_participants(message).recipients
        except PermanentError:
            recipients = ()
        for recipient in recipients or (Recipient(address=""),):
            await self.zams.reception_mss(source, key, document_id="", address=recipient.address,
                                          recipient_id=recipient.identifier, delivered=False, reason=str(exc),
                                          detail=detail, error_code="207" if own_table else exc.hl7_code,
                                          error_location=exc.hl7_location)

    async def _dispatch(self, job: DocumentJob, timeline: Timeline) -> bool:
        """Hand the job to delivery; True when it went somewhere (mailboxes, or the DMP deposit queue)."""
        wants_mail, to_dmp = self._destinations(job)
        if wants_mail or to_dmp:
            body, extra = await job_body(self.journal, job)     # a large CDA: journaled once for both queues
            headers = {"message_key": job.message_key, "document_id": job.header.document_id, **extra}
        await timeline.flush()          # before the job leaves this stage
        if wants_mail:
            await self.bus.publish(queues.DELIVER_MSS, body, message_id=job.job_id, headers=headers)
        if to_dmp:
            await self.bus.publish(queues.DEPOSIT_DMP, body, message_id=f"dmp:{job.job_id}", headers=headers)
            timeline.add("dmp", "queued", f"{job.action.value} queued for the DMP")
        elif job.flags.dest_dmp:
            # Without a DMP channel the journal and the HIS (ZAM^Z01 N) are told so rather than left waiting.
            timeline.add("dmp", "not_configured", "DESTDMP=Y but no DMP deposit channel is configured; not deposited")
            await timeline.flush()
            await self.zams.reception_dmp(job.source, job.message_key, document_id=job.header.document_id,
                                          delivered=False, reason="not deposited")
        await timeline.flush()
        if not (wants_mail or to_dmp):
            await self.journal.set_state(job.message_key, MessageState.FAILED, step="dispatched",
                                         detail="nothing to deliver: no MSSanté destination, and no DMP channel",
                                         only_from=_DISPATCHABLE)
            return False
        targets = [r.address for r in job.recipients] if wants_mail else []
        targets += ["the DMP"] if to_dmp else []
        await self.journal.set_state(job.message_key, MessageState.DISPATCHED, step="dispatched",
                                     detail=f"document {job.header.document_id} to {', '.join(targets)}",
                                     only_from=_DISPATCHABLE)
        return True

    async def _event(self, key: str, job: DocumentJob, step: str, state: str, detail: str) -> None:
        await self.journal.add_event(JournalEvent(message_key=key, at=now(), step=step, state=state,
                                                  detail=detail, document_id=job.header.document_id))


def _note_pfi_recipients(job: DocumentJob, timeline: Timeline) -> None:
    """Each PRT recipient with its reason: named by the HIS; flags and whitelist are checked when sending.

    A recipient refused on reading is journaled as such; the deliver stage records its outcome and ZAM.
    """
    for recipient in job.recipients:
        who = "patient" if recipient.kind is RecipientKind.PATIENT else (recipient.identifier or "organisation")
        if recipient.refusal is not None:
            state, detail = "refused", f"PRT RCT {who}: not mailed: {recipient.refusal.reason}"
        else:
            state, detail = "kept", (f"PRT RCT {who}: address given by the HIS (PRT-15.4); the MetaDMPMSS "
                                     "flags and the MSSanté whitelist are checked when sending")
        timeline.add("recipient", state, detail, destination=recipient.address)


def message_source(parsed) -> MessageSource:
    header = parsed.header
    msh = parsed.short_text.split("\r", 1)[0]     # not .text: a large message's would be rebuilt
    return MessageSource(
        sending_application=header.sending_application, sending_facility=header.sending_facility,
        receiving_application=header.receiving_application, receiving_facility=header.receiving_facility,
        control_id=header.control_id, message_type=f"{header.message_type}^{header.trigger}",
        version=header.version, charset=header.charset, codec=parsed.codec, msh=msh)


def _encounters(message) -> tuple[str, ...]:
    """PID-18.1 then PV1-19.1 of the document message: the stay a lettre de liaison is about."""
    found = {str(segment[0]): segment for segment in reversed(list(message))}
    return tuple(value(found[seg], field) for seg, field in (("PID", 18), ("PV1", 19)) if seg in found)


def _reason(exc: PermanentError) -> str:
    details = getattr(exc, "details", None)
    text = f"{type(exc).__name__}: {exc}"
    if details:
        text += " | " + " | ".join(details[:5])
    return text
