"""Render mode, inside the ``inbound`` stage: a plain HIS event becomes a DocumentJob with a CDA we wrote.

An MDM^T02/T10/T11 (:mod:`router.mdm`) is rendered as the volet its TXA-2 asks
for, an ORU^R01 with discrete results (:mod:`router.lab`) as the registry's
laboratory volet: the stage knows no volet by name, it asks the registry
(:mod:`router.volets`) handed in by the composition root. From there the job
follows the PFI path: XSD, schematrons, dispatch, delivery.

What this stage adds to the renderers:

- **the stay**: facts the document message lacks (discharge mode, times,
  médecin traitant) come from the stay the ADT feed built in the journal;
- **versions**: every rendered document is kept in the journal under the id
  the HIS knows it by (TXA-12, the lab's filler order number). A replacement
  continues that setId with version + 1 and an RPLC to the previous id; a
  cancellation re-sends the withdrawn document with action "delete"; a
  redelivered message re-sends what it rendered the first time, byte for byte;
- **recipients**: the configured roles, looked up in the directory, every
  choice with its reason in the journal (:mod:`router.recipients_render`);
- **the DMP**: with a deposit channel configured (``deposit=True``), every
  rendered document is also for the patient's DMP, as the law expects of a
  lettre de liaison; :mod:`router.dmp_rules` decides per document.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from router.adt import AdtEvent, read_patient_visit
from router.errors import MappingError, ValidationError
from router.dmp_rules import read_consent
from router.hl7.msh import iter_segments
from router.lab import MICROBIOLOGY_SECTIONS, read_lab_report
from router.mdm import MdmDocument, read_mdm
from router.model import Action, CdaHeader, DocumentJob, Flags, MessageSource, Participant, RecipientKind
from router.ports import Directory, Journal, JournalEvent, RenderedDocument, Stay, Volets
from router.recipients_render import (
    LAB_ROLES, LETTER_ROLES, PatientPolicy, candidates_for, choose_recipients, patient_choice,
)
from router.stages.clock import now
from router.volets import RenderRequest

log = structlog.get_logger(__name__)

@dataclass(frozen=True)
class Identity:
    """The ids a new rendering gets: document id, set, version, and the document it replaces."""

    document_id: str
    set_id: str
    version: int
    parent_document_id: str = ""


class RenderStage:
    def __init__(self, journal: Journal, directory: Directory, volets: Volets, *, site: object,
                 cda_reader: Callable[[bytes], CdaHeader], tables: Mapping[str, Any] | None = None,
                 letter_roles: Sequence[str] = LETTER_ROLES, lab_roles: Sequence[str] = LAB_ROLES,
                 patient_policy: PatientPolicy = PatientPolicy(), timezone: str = "Europe/Paris",
                 deposit: bool = False, microbiology_sections: Collection[str] = MICROBIOLOGY_SECTIONS):
        self.patient_policy = patient_policy
        self.deposit = deposit
        self.journal = journal
        self.directory = directory
        self.volets = volets
        self.site = site        # the establishment: read by the volets only
        self.cda_reader = cda_reader
        self.tables = tables
        self.letter_roles = tuple(letter_roles)
        self.lab_roles = tuple(lab_roles)
        self.zone = ZoneInfo(timezone)
        self.microbiology_sections = frozenset(microbiology_sections)   # OBR-24 values of microbiology

    async def job(self, key: str, parsed, source: MessageSource, channel: str) -> DocumentJob:
        """Render (or find again) the document the message asks for; raises typed errors with reasons."""
        facility = source.sending_facility or channel
        if parsed.header.message_type.upper() == "MDM":
            job = await self._mdm_job(key, parsed.text, source, facility)
        else:
            job = await self._lab_job(key, parsed.text, source, facility)
        dmp_consent, dmp_opposition = read_consent(iter_segments(parsed.text))
        return replace(job, dmp_consent=dmp_consent, dmp_opposition=dmp_opposition,
                       flags=replace(job.flags, dest_dmp=self.deposit))

    # --- MDM: letters and other documents ---------------------------------------------------

    async def _mdm_job(self, key: str, text: str, source: MessageSource, facility: str) -> DocumentJob:
        mdm = read_mdm(text)
        patient = await self._with_stay(read_patient_visit(text), facility)
        parent_source = mdm.parent_id or mdm.unique_id
        planned = await self._identity(facility, source_id=mdm.unique_id, action=mdm.action,
                                       parent_source=parent_source, message_key=key)
        people = {"medecin_traitant": [patient.medecin_traitant], "referring": [patient.referring],
                  "attending": [patient.attending], "admitting": [patient.admitting], "copies": mdm.copies}
        if isinstance(planned, RenderedDocument):
            return await self._job(key, source, planned, patient, people, self.letter_roles,
                                   hidden_reason=_hidden(mdm))
        author = mdm.author or patient.attending
        if author is None or not author.identifier.startswith("8"):
            raise MappingError("no author with an RPPS: TXA-22, TXA-9, TXA-10, TXA-5 and PV1-7 name nobody "
                               "with an IdNat_PS", hl7_code="101", hl7_text="Required field missing",
                               hl7_location="TXA^1^22")
        type_key = mdm.type_code.split("^", 1)[0].strip().upper()
        volet = self.volets.for_document(type_key)
        request = RenderRequest(patient=patient, document_id=planned.document_id, set_id=planned.set_id,
                                version=planned.version, parent_document_id=planned.parent_document_id,
                                effective_time=self._now(), site=self.site, tables=self.tables, author=author,
                                document=mdm, type_key=type_key)
        rendered = RenderedDocument(facility=facility, source_id=mdm.unique_id, document_id=planned.document_id,
                                    set_id=planned.set_id, version=planned.version,
                                    type_code=volet.stored_type_code(request), action=mdm.action, message_key=key,
                                    cda=volet.render(request))
        await self._warn(key, planned.document_id, mdm.warnings + patient.warnings)
        return await self._job(key, source, rendered, patient, people, self.letter_roles,
                               hidden_reason=_hidden(mdm))

    # --- ORU: laboratory reports ------------------------------------------------------------

    async def _lab_job(self, key: str, text: str, source: MessageSource, facility: str) -> DocumentJob:
        report = read_lab_report(text, microbiology_sections=self.microbiology_sections)
        patient = read_patient_visit(text)
        source_id = report.filler_order or report.placer_order
        if not source_id:
            raise ValidationError("ORC-3/OBR-3 (filler order number) and ORC-2/OBR-2 (placer) are empty: the "
                                  "report cannot be identified, so its later versions could not be",
                                  hl7_code="101", hl7_text="Required field missing")
        planned = await self._identity(facility, source_id=source_id, action=report.action,
                                       parent_source=source_id, message_key=key)
        people = {"prescriber": [report.prescriber], "copies": report.copies}
        if isinstance(planned, RenderedDocument):
            return await self._job(key, source, planned, patient, people, self.lab_roles)
        volet = self.volets.for_lab_report()
        request = RenderRequest(patient=patient, document_id=planned.document_id, set_id=planned.set_id,
                                version=planned.version, parent_document_id=planned.parent_document_id,
                                effective_time=self._now(), site=self.site, tables=self.tables, report=report)
        rendered = RenderedDocument(facility=facility, source_id=source_id, document_id=planned.document_id,
                                    set_id=planned.set_id, version=planned.version,
                                    type_code=volet.stored_type_code(request), action=report.action,
                                    message_key=key, cda=volet.render(request))
        await self._warn(key, planned.document_id, report.warnings + patient.warnings)
        return await self._job(key, source, rendered, patient, people, self.lab_roles)

    # --- shared ---------------------------------------------------------------------------

    async def _identity(self, facility: str, *, source_id: str, action: Action, parent_source: str,
                        message_key: str) -> Identity | RenderedDocument:
        """New ids for this rendering, or the document already rendered (redelivery, cancellation).

        Returns the stored :class:`RenderedDocument` when this very message rendered it
        before (its CDA is re-sent unchanged) and for a cancellation (the withdrawn
        document, re-sent with action "delete").
        """
        own = await self.journal.rendered_document(facility, source_id)
        if own is not None and own.message_key == message_key:
            return own
        if action is Action.PUBLISH:
            if own is not None:
                raise ValidationError(f"document {source_id} was already published (version {own.version}); "
                                      "a new version is a replacement (MDM^T10, OBX-11=C)",
                                      hl7_code="205", hl7_text="Duplicate key identifier")
            return Identity(source_id, source_id, 1)
        parent = own if parent_source == source_id else await self.journal.rendered_document(facility, parent_source)
        if parent is None:
            raise ValidationError(f"{action.value} of document {parent_source}, which this engine never rendered",
                                  hl7_code="204", hl7_text="Unknown key identifier")
        if parent.action is Action.DELETE:
            raise ValidationError(f"document {parent_source} was cancelled; it cannot be {action.value}d",
                                  hl7_code="207", hl7_text="Application internal error")
        if action is Action.DELETE:
            return replace(parent, source_id=source_id, action=Action.DELETE, message_key=message_key)
        version = parent.version + 1
        document_id = source_id if source_id != parent_source else f"{source_id}.{version}"
        return Identity(document_id, parent.set_id, version, parent.document_id)

    async def _job(self, key: str, source: MessageSource, rendered: RenderedDocument, patient: AdtEvent,
                   people: dict, roles: Sequence[str], *, hidden_reason: str = "") -> DocumentJob:
        header = self.cda_reader(rendered.cda)
        if rendered.message_key == key:
            # What this message rendered or cancelled is the set's latest state (a redelivery rewrites the same row).
            await self.journal.record_document(rendered)
        recipients, choices = await choose_recipients(candidates_for(roles, people), self.directory)
        if "patient" in roles:
            mailbox, choice = patient_choice(patient.ins, self.patient_policy, hidden_reason=hidden_reason)
            choices.append(choice)
            if mailbox is not None:
                recipients += (mailbox,)
        for choice in choices:
            await self.journal.add_event(JournalEvent(
                message_key=key, at=now(), step="recipient", state="kept" if choice.kept else "dropped",
                detail=choice.reason, document_id=header.document_id, destination=choice.address))
        await self.journal.add_event(JournalEvent(
            message_key=key, at=now(), step="render", state=rendered.action.value,
            detail=f"{header.type_code} version {rendered.version} of set {rendered.set_id} "
                   f"for {len(recipients)} recipient(s)", document_id=header.document_id))
        return DocumentJob(job_id=f"{key}:{header.document_id}", message_key=key, source=source,
                           action=rendered.action, cda=rendered.cda, header=header,
                           flags=Flags(dest_mss_ps=any(r.kind is RecipientKind.PROFESSIONAL for r in recipients),
                                       dest_mss_patient=any(r.kind is RecipientKind.PATIENT for r in recipients),
                                       invisible_patient=bool(hidden_reason)),
                           recipients=recipients,
                           sender=Participant(), patient_ipp=patient.ipp,
                           patient_identity_status=patient.ins.reliability if patient.ins else "")

    async def _with_stay(self, patient: AdtEvent, facility: str) -> AdtEvent:
        """Fill what the document message leaves empty from the stay the ADT feed recorded."""
        if not patient.encounter:
            return patient
        stay: Stay | None = await self.journal.stay(facility, patient.encounter)
        if stay is None:
            return patient
        return replace(
            patient,
            discharge_disposition=patient.discharge_disposition or stay.discharge_disposition,
            discharge_destination=patient.discharge_destination or stay.discharge_destination,
            admit_time=patient.admit_time or self._hl7_time(stay.admitted_at),
            discharge_time=patient.discharge_time or self._hl7_time(stay.discharged_at),
            medecin_traitant=patient.medecin_traitant or _known(stay.medecin_traitant),
            referring=patient.referring or _known(stay.referring),
            attending=patient.attending or _known(stay.attending),
        )

    async def _warn(self, key: str, document_id: str, warnings: Sequence[str]) -> None:
        for warning in warnings:
            await self.journal.add_event(JournalEvent(message_key=key, at=now(), step="render", state="warning",
                                                      detail=warning, document_id=document_id))

    def _now(self) -> datetime:
        return now().astimezone(self.zone).replace(microsecond=0)

    def _hl7_time(self, moment: datetime | None) -> str:
        return moment.astimezone(self.zone).strftime("%Y%m%d%H%M%S") if moment is not None else ""


def _hidden(mdm: MdmDocument) -> str:
    """Why the patient must not receive this document in their own mailbox, or ""."""
    return "TXA-18=V, very restricted" if mdm.confidentiality == "V" else ""


def _known(identifier: str) -> Participant | None:
    return Participant(identifier=identifier) if identifier else None
