"""Render a compte rendu d'examens de biologie médicale (CI-SIS CR-BIO 2024.01) from a lab ORU.

Render mode gets the laboratory's ORU^R01 read into a :class:`~router.lab.LabReport`
(results) and an :class:`~router.adt.AdtEvent` (patient and visit, from the same
message). :func:`render_cr_bio` writes the shared French header
(:mod:`mappings.cda_header_fr`) with the CR-BIO roles, then the body:

- header: author, legal authenticator and ``authenticator``
  (``1.3.6.1.4.1.19376.1.3.3.1.5``) are the biologist of the latest validation
  (OBX-16 / OBR-32); the prescriber (ORC-12 / OBR-16) is a ``REF`` participant
  (``1.3.6.1.4.1.19376.1.3.3.1.6``); copies (OBR-28) are informationRecipients;
  the placer order is ``inFulfillmentOf/order``; one ``documentationOf`` per
  chapter, the first with ``lab:statusCode`` and the laboratory as performer
  (``1.3.6.1.4.1.19376.1.3.3.1.7``); the biologist is the encounter's
  ``responsibleParty``. The laboratory is the site (:class:`~mappings.site.Site`).
- body: one FR-CR-BIO-Chapitre section per chapter (OBR-24, ``lab_chapters``),
  one FR-CR-BIO-Sous-Chapitre section per battery (OBR) with its narrative table
  and one ``DRIV`` entry "Résultats d'examens" (act): validating biologist,
  specimen (FR-Prelevement), the battery organizer (or the single observation when
  OBR-4 = OBX-3), microbiology isolates (organism + counts + antibiogram battery),
  comments (FR-Commentaire-ER). Observations carry LOINC (else a local code in a
  ``translation``), PQ/IVL_PQ values in UCUM (``lab_units``), CD for coded results,
  ST for text, ``interpretationCode`` from OBX-8 (``lab_interpretation``) and the
  OBX-7 range as ``referenceRange/observationRange`` ``EVN.CRT``.
- the mandatory FR-Document-PDF-copie section carries the lab's PDF when it sent
  one, else the one :mod:`mappings.report_pdf` draws.

Statuses: an observation is ``aborted`` when OBX-11 is D or X, else ``completed``
(the volet allows nothing else); the act, organizers and the first serviceEvent
are ``active`` while any result is preliminary (OBX-11 P, I, R, S, A), else
``completed``.

Structure modelled on the ANS examples ``BIO-CR-BIO_2024.01_*.xml`` (glycémie,
TSH, microbiologie). Section and entry ids are UUIDs derived from the document
id; narrative IDs are sequential, so a render is reproducible.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime

from lxml import etree

from mappings.cda_header_fr import LOINC, XSI, Party, ServiceEvent, build_header, el
from mappings.lab_codes import (Tables, chapter_for, code_system, interpretation, interpretation_system, loinc_of,
                                table, ucum_unit)
from mappings.report_pdf import (COLUMNS, display_interpretation, display_time, display_value, display_with_status,
                                 render_report_pdf)
from mappings.site import Site
from router.adt import AdtEvent
from router.errors import MappingError
from router.lab_model import Battery, Coded, Isolate, LabReport, LabResult, Specimen, all_results
from router.volets import RenderRequest, Source, Volet

TEMPLATE_IDS = (("1.3.6.1.4.1.19376.1.3.3", ""), ("1.2.250.1.213.1.1.1.55", "2024.01"))
DOCUMENT_CODE = ("11502-2", "CR d'examens biologiques")
TITLE = "Compte rendu d'examens biologiques"
AUTHENTICATOR_TEMPLATE = "1.3.6.1.4.1.19376.1.3.3.1.5"
PRESCRIBER_TEMPLATE = "1.3.6.1.4.1.19376.1.3.3.1.6"
LABORATORY_TEMPLATE = "1.3.6.1.4.1.19376.1.3.3.1.7"
CHAPTER_TEMPLATES = ("1.3.6.1.4.1.19376.1.3.3.2.1", "1.2.250.1.213.1.1.2.70")
SUB_CHAPTER_TEMPLATES = ("1.3.6.1.4.1.19376.1.3.3.2.2", "1.2.250.1.213.1.1.2.71")
RESULTS_ENTRY_TEMPLATES = ("1.3.6.1.4.1.19376.1.3.1", "1.2.250.1.213.1.1.3.21")
BATTERY_TEMPLATES = ("1.3.6.1.4.1.19376.1.3.1.4", "1.2.250.1.213.1.1.3.78")
ISOLATE_TEMPLATES = ("1.3.6.1.4.1.19376.1.3.1.5", "1.2.250.1.213.1.1.3.79")
SPECIMEN_TEMPLATES = ("1.3.6.1.4.1.19376.1.3.1.2", "1.2.250.1.213.1.1.3.77")
RECEIVED_TEMPLATES = ("1.3.6.1.4.1.19376.1.3.1.3", "1.2.250.1.213.1.1.3.107")
OBSERVATION_TEMPLATES = ("1.3.6.1.4.1.19376.1.3.1.6", "1.2.250.1.213.1.1.3.80")
COMMENT_TEMPLATES = ("2.16.840.1.113883.10.20.1.40", "1.3.6.1.4.1.19376.1.5.3.1.4.2", "1.2.250.1.213.1.1.3.32")
PARTICIPANT_TEMPLATE = "1.2.250.1.213.1.1.3.109"
PDF_COPY_TEMPLATE = "1.2.250.1.213.1.1.2.243"
ABORTED = frozenset({"D", "X"})
PRELIMINARY = frozenset({"P", "I", "R", "S", "A"})
_BOUND = re.compile(r"^\s*(<=|>=|<|>|≤|≥)\s*([0-9]+(?:[.,][0-9]+)?)\s*$")
_BETWEEN = re.compile(r"^\s*([0-9]+(?:[.,][0-9]+)?)\s*(?:-|à|a|–)\s*([0-9]+(?:[.,][0-9]+)?)\s*$")


def render_cr_bio(report: LabReport, patient: AdtEvent, *, report_pdf: bytes | None, document_id: str,
                  set_id: str, version: int = 1, parent_document_id: str = "", site: Site,
                  effective_time: datetime, tables: Tables = None) -> bytes:
    """The CR-BIO 2024.01 CDA (UTF-8 bytes) of a lab report.

    ``report_pdf`` is the lab's own PDF (``report.pdf``); when None a PDF is drawn
    from the results. Ids, version and parent are as for
    :func:`mappings.cda_header_fr.build_header`; ``tables`` overrides code tables
    by name (``lab_chapters``, ``lab_units``, ``lab_interpretation``,
    ``lab_code_systems``). Raises :class:`~router.errors.MappingError` without a
    validating biologist identified by an IdNat_PS or without any result.
    """
    validator, validated = report.validation
    if validator is None or not validator.identifier:
        raise MappingError("CR-BIO needs the validating biologist (OBX-16 or OBR-32) with an IdNat_PS")
    batteries = [b for b in report.batteries if b.results or b.isolates]
    if not batteries:
        raise MappingError("CR-BIO needs at least one result (OBX) under an OBR")
    now = effective_time.strftime("%Y%m%d%H%M%S%z")
    validated = validated or now
    chapters: dict[tuple[str, str], list[Battery]] = {}
    for battery in batteries:
        chapters.setdefault(chapter_for(battery, tables), []).append(battery)
    status = _status(batteries)
    lab = Party(who=validator, time=validated, template_id=LABORATORY_TEMPLATE, at_site=True)
    # the structuration minimale wants a valued low: reception, else collection, else first result, else validation
    start = _received(batteries) or report.collected or _first_result(batteries) or validated
    events = [ServiceEvent(code=(code, LOINC, name), start=start, stop=validated, status=status, performer=lab if index == 0 else None,
                           with_time=index == 0)
              for index, (code, name) in enumerate(chapters)]
    prescriber = report.prescriber
    participants = [Party(who=prescriber, time=report.collected, template_id=PRESCRIBER_TEMPLATE, type_code="REF")
                    ] if prescriber is not None else []
    orders = [(report.order_authority if _is_oid(report.order_authority) else
               table("lab_code_systems", tables)["order_root"],
               report.placer_order)] if report.placer_order else []
    doc = build_header(patient, template_ids=TEMPLATE_IDS, code=DOCUMENT_CODE, title=TITLE,
                       document_id=document_id, set_id=set_id, version=version,
                       parent_document_id=parent_document_id, author=validator, site=site,
                       effective_time=effective_time, label="CR-BIO", service_events=events,
                       authenticators=[Party(who=validator, time=validated, template_id=AUTHENTICATOR_TEMPLATE,
                                             at_site=True)],
                       participants=participants, orders=orders,
                       responsible=Party(who=validator, at_site=True), recipients=report.copies)
    writer = _Writer(document_id, site, tables)
    body = el(el(doc, "component"), "structuredBody")
    for (code, name), members in chapters.items():
        section = el(el(body, "component"), "section")
        for root in CHAPTER_TEMPLATES:
            el(section, "templateId", root=root)
        el(section, "id", root=writer.uuid())
        el(section, "code", code=code, codeSystem=LOINC, codeSystemName="LOINC", displayName=name)
        el(section, "title", text=name)
        for battery in members:
            writer.sub_chapter(section, battery, (code, name), validated)
    pdf = report_pdf or render_report_pdf(report, patient, site=site, created=effective_time, tables=tables)
    writer.pdf_section(body, pdf)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def reference_range(raw: str) -> tuple[str, str, str, str] | None:
    """(low, high, low inclusive, high inclusive) of an OBX-7 like ``3.89-6.00``, ``< 5``, ``>=1,2``; else None."""
    found = _BETWEEN.match(raw)
    if found:
        return found[1].replace(",", "."), found[2].replace(",", "."), "true", "true"
    found = _BOUND.match(raw)
    if found:
        op, bound = found[1], found[2].replace(",", ".")
        inclusive = "true" if op in ("<=", ">=", "≤", "≥") else "false"
        return ("", bound, "", inclusive) if op in ("<", "<=", "≤") else (bound, "", inclusive, "")
    return None


def _status(batteries: list[Battery]) -> str:
    statuses = {r.status for b in batteries for r in all_results(b)}
    return "active" if statuses & PRELIMINARY else "completed"


def _received(batteries: list[Battery]) -> str:
    times = [t for b in batteries for t in ((b.specimen.received if b.specimen else ""), b.received_time) if t]
    return min(times, key=lambda t: t[:14]) if times else ""


def _first_result(batteries: list[Battery]) -> str:
    times = [r.time for b in batteries for r in all_results(b) if r.time]
    return min(times, key=lambda t: t[:14]) if times else ""


def _is_oid(text: str) -> bool:
    return bool(re.fullmatch(r"[0-2](\.(0|[1-9][0-9]*))+", text))


class _Writer:
    """Writes the body; holds the reproducible ids and the narrative ID counter."""

    def __init__(self, document_id: str, site: Site, tables: Tables):
        self._base = uuid.uuid5(uuid.NAMESPACE_URL, f"liaison:cr-bio:{document_id}")
        self._count = 0
        self._refs = 0
        self.site = site
        self.tables = tables

    def uuid(self) -> str:
        self._count += 1
        return str(uuid.uuid5(self._base, str(self._count))).upper()

    def ref(self) -> str:
        self._refs += 1
        return f"r{self._refs}"

    # --- sections ----------------------------------------------------------------------

    def sub_chapter(self, chapter, battery: Battery, chapter_code: tuple[str, str], validated: str) -> None:
        section = el(el(chapter, "component"), "section")
        for root in SUB_CHAPTER_TEMPLATES:
            el(section, "templateId", root=root)
        el(section, "id", root=self.uuid())
        loinc = loinc_of(battery.code)
        code, name = loinc or chapter_code
        el(section, "code", code=code, codeSystem=LOINC, codeSystemName="LOINC", displayName=name)
        el(section, "title", text=battery.code.label or chapter_code[1])
        text = el(section, "text")
        entry = el(section, "entry", typeCode="DRIV")
        for root in RESULTS_ENTRY_TEMPLATES:
            el(entry, "templateId", root=root)
        act = el(entry, "act", classCode="ACT", moodCode="EVN")
        el(act, "code", code=chapter_code[0], codeSystem=LOINC, codeSystemName="LOINC", displayName=chapter_code[1])
        el(act, "statusCode", code=_status([battery]))
        if battery.validator is not None:
            self._authen(act, battery, validated)
        if battery.specimen is not None:
            self._specimen(act, text, battery.specimen)
        rows = el(self._table(text), "tbody")
        if battery.results:
            single = (len(battery.results) == 1 and battery.results[0].code.code == battery.code.code
                      and not battery.results[0].sub_id)
            if single:
                self._observation(el(act, "entryRelationship", typeCode="COMP"), rows, battery.results[0],
                                  battery)
            else:
                self._battery(el(act, "entryRelationship", typeCode="COMP"), rows, battery)
        for isolate in battery.isolates:
            self._isolate(el(act, "entryRelationship", typeCode="COMP"), rows, isolate, battery)
        for comment in (*battery.comments, *(c for i in battery.isolates for c in i.comments)):
            self._comment(act, text, comment, inversion=False)

    def pdf_section(self, body, pdf: bytes) -> None:
        section = el(el(body, "component"), "section")
        el(section, "templateId", root=PDF_COPY_TEMPLATE)
        el(section, "id", root=self.uuid())
        el(section, "code", code="55108-5", codeSystem=LOINC, codeSystemName="LOINC", displayName="Copie du document")
        el(section, "title", text="Copie du document")
        el(_el_path(section, "text", "table", "tbody", "tr", "td"), "renderMultiMedia", referencedObject="doc-pdf")
        org = el(el(section, "entry"), "organizer", classCode="CLUSTER", moodCode="EVN")
        el(org, "templateId", root="1.2.250.1.213.1.1.3.18")
        el(org, "id", root=self.uuid())
        el(org, "code", code="55107-7", codeSystem=LOINC, codeSystemName="LOINC", displayName="Document attaché")
        el(org, "statusCode", code="completed")
        obs = el(el(org, "component"), "observation", classCode="OBS", moodCode="EVN")
        for root in ("1.3.6.1.4.1.19376.1.5.3.1.4.13", "1.2.250.1.213.1.1.3.48", "1.2.250.1.213.1.1.3.48.18"):
            el(obs, "templateId", root=root)
        el(obs, "id", root=self.uuid())
        el(obs, "code", code="69764-9", codeSystem=LOINC, codeSystemName="LOINC", displayName="Type de document")
        el(el(obs, "text"), "reference", value="#doc-pdf")
        el(obs, "statusCode", code="completed")
        el(obs, "effectiveTime", nullFlavor="NA")
        _typed(el(obs, "value", code="55108-5", codeSystem=LOINC, codeSystemName="LOINC",
                  displayName="Copie du document"), "CD")
        media = el(el(org, "component"), "observationMedia", classCode="OBS", moodCode="EVN", ID="doc-pdf")
        el(media, "value", text=base64.b64encode(pdf).decode("ascii"), mediaType="application/pdf",
           representation="B64")

    # --- entries -----------------------------------------------------------------------

    def _authen(self, act, battery: Battery, validated: str) -> None:
        who = battery.validator
        part = el(act, "participant", typeCode="AUTHEN")
        el(part, "templateId", root="1.3.6.1.4.1.19376.1.3.3.1.5")
        el(part, "templateId", root=PARTICIPANT_TEMPLATE)
        el(el(part, "time"), "high", value=battery.validated_time or battery.report_time or validated)
        role = el(part, "participantRole")
        if who.identifier:
            el(role, "id", root="1.2.250.1.71.4.2.1", extension=who.identifier)
        else:
            el(role, "id", nullFlavor="UNK")
        name = el(el(role, "playingEntity"), "name")
        if who.given:
            el(name, "given", text=who.given)
        el(name, "family", text=who.family or "Inconnu")

    def _specimen(self, act, text, specimen: Specimen) -> None:
        ref = self.ref()
        paragraph = el(text, "paragraph", text="Échantillon : ")
        el(paragraph, "content", text=specimen.type.label or "non précisé", ID=ref)
        if specimen.collected:
            el(paragraph, "content", text=f" - prélevé le {display_time(specimen.collected)}")
        if specimen.received:
            el(paragraph, "content", text=f" - reçu le {display_time(specimen.received)}")
        proc = el(el(act, "entryRelationship", typeCode="COMP"), "procedure", classCode="PROC", moodCode="EVN")
        for root in SPECIMEN_TEMPLATES:
            el(proc, "templateId", root=root)
        if specimen.collected:
            el(el(proc, "effectiveTime"), "high", value=specimen.collected)
        role = el(el(proc, "participant", typeCode="PRD"), "participantRole", classCode="SPEC")
        self._coded(el(role, "playingEntity"), "code", specimen.type, ref)
        if specimen.received:
            received = el(el(proc, "entryRelationship", typeCode="COMP"), "act", classCode="ACT", moodCode="EVN")
            for root in RECEIVED_TEMPLATES:
                el(received, "templateId", root=root)
            el(received, "code", code="SPRECEIVE", codeSystem="1.3.5.1.4.1.19376.1.5.3.2",
               codeSystemName="IHEActCode", displayName="Échantillon reçu")
            el(received, "effectiveTime", value=specimen.received)

    def _battery(self, parent, rows, battery: Battery):
        organizer = el(parent, "organizer", classCode="BATTERY", moodCode="EVN")
        for root in BATTERY_TEMPLATES:
            el(organizer, "templateId", root=root)
        el(organizer, "id", root=self.uuid())
        ref = self.ref()
        self._code(organizer, battery.code, ref)
        self._heading_row(rows, battery.code.label or "Examens", ref)
        el(organizer, "statusCode", code=_status([battery]))
        for result in battery.results:
            self._observation(el(organizer, "component"), rows, result, battery)
        return organizer

    def _isolate(self, parent, rows, isolate: Isolate, battery: Battery) -> None:
        organizer = el(parent, "organizer", classCode="CLUSTER", moodCode="EVN")
        for root in ISOLATE_TEMPLATES:
            el(organizer, "templateId", root=root)
        el(organizer, "id", root=self.uuid())
        el(organizer, "statusCode", code="aborted" if isolate.status in ABORTED else "completed")
        if isolate.time:
            el(organizer, "effectiveTime", value=isolate.time)
        ref = self.ref()
        self._heading_row(rows, f"Isolat {isolate.sub_id} : {isolate.organism.label}", ref)
        role = el(el(organizer, "specimen", typeCode="SPC"), "specimenRole", classCode="SPEC")
        self._coded(el(role, "specimenPlayingEntity", classCode="MIC"), "code", isolate.organism, ref)
        for result in isolate.results:
            self._observation(el(organizer, "component"), rows, result, battery)
        for child in isolate.batteries:
            self._battery(el(organizer, "component"), rows, child)

    def _observation(self, parent, rows, result: LabResult, battery: Battery) -> None:
        obs = el(parent, "observation", classCode="OBS", moodCode="EVN")
        for root in OBSERVATION_TEMPLATES:
            el(obs, "templateId", root=root)
        el(obs, "id", root=self.uuid())
        ref, value_ref = self.ref(), self.ref()
        self._code(obs, result.code, ref)
        el(obs, "statusCode", code="aborted" if result.status in ABORTED else "completed")
        when = result.time or battery.observation_time
        el(obs, "effectiveTime", value=when) if when else el(obs, "effectiveTime", nullFlavor="UNK")
        unit = ucum_unit(result.units, self.tables)
        self._value(obs, result, unit, value_ref)
        flags = [f for f in (interpretation(flag, self.tables) for flag in result.flags) if f]
        for code, display in flags:
            el(obs, "interpretationCode", code=code, codeSystem=interpretation_system(self.tables),
               displayName=display)
        if result.method:
            self._coded(obs, "methodCode", result.method, None)
        comment_refs = [self._comment(obs, None, c, inversion=True) for c in result.comments]
        if result.reference_range:
            self._range(obs, result.reference_range, unit)
        tr = el(rows, "tr")
        el(el(tr, "td"), "content", text=result.code.label or result.code.code, ID=ref)
        el(el(tr, "td"), "content", text=display_with_status(result), ID=value_ref)
        el(tr, "td", text=(unit if unit else result.units.code or result.units.display) or "")
        el(tr, "td", text=result.reference_range)
        el(tr, "td", text=display_interpretation(result, self.tables))
        for comment_ref, comment in zip(comment_refs, result.comments):
            row = el(rows, "tr")
            el(el(row, "td", colspan="5"), "content", text=comment, ID=comment_ref, styleCode="Italics")

    def _value(self, obs, result: LabResult, unit: str | None, ref: str) -> None:
        numeric = result.kind in ("numeric", "range")
        if numeric and unit is None:            # a unit we cannot state in UCUM: keep what the lab wrote
            raw_unit = result.units.code or result.units.display
            _typed(el(obs, "value", text=f"{display_value(result)} {raw_unit}".strip()), "ST")
            return
        units = {"unit": unit} if unit else {}
        if result.kind == "numeric":
            _typed(el(obs, "value", value=result.value, **units), "PQ")
        elif result.kind == "range":
            value = _typed(el(obs, "value"), "IVL_PQ")
            inclusive = "false" if result.comparator in ("<", ">") else "true"
            if result.low:
                el(value, "low", value=result.low, inclusive=inclusive, **units)
            if result.high:
                el(value, "high", value=result.high, inclusive=inclusive, **units)
        elif result.kind == "coded" and result.coded_value is not None:
            self._coded(obs, "value", result.coded_value, ref, xsi_type="CD")
        else:
            _typed(el(obs, "value", text=result.value), "ST")

    def _range(self, obs, raw: str, unit: str | None) -> None:
        observation = el(el(obs, "referenceRange", typeCode="REFV"), "observationRange", classCode="OBS",
                         moodCode="EVN.CRT")
        bounds = reference_range(raw) if unit is not None else None
        if bounds is None:
            el(observation, "text", text=raw)
        else:
            low, high, low_inclusive, high_inclusive = bounds
            units = {"unit": unit} if unit else {}
            value = _typed(el(observation, "value"), "IVL_PQ")
            if low:
                el(value, "low", value=low, inclusive=low_inclusive, **units)
            if high:
                el(value, "high", value=high, inclusive=high_inclusive, **units)
        el(observation, "interpretationCode", code="N", codeSystem=interpretation_system(self.tables),
           displayName="Normal")

    def _comment(self, parent, text, comment: str, *, inversion: bool) -> str:
        ref = self.ref()
        if text is not None:
            el(text, "paragraph", text=comment, ID=ref, styleCode="Italics")
        rel = el(parent, "entryRelationship", typeCode="SUBJ", **({"inversionInd": "true"} if inversion else {}))
        act = el(rel, "act", classCode="ACT", moodCode="EVN")
        for root in COMMENT_TEMPLATES:
            el(act, "templateId", root=root)
        el(act, "code", code="48767-8", codeSystem=LOINC, codeSystemName="LOINC", displayName="Commentaire")
        el(el(act, "text"), "reference", value=f"#{ref}")
        el(act, "statusCode", code="completed")
        return ref

    # --- codes and narrative -----------------------------------------------------------

    def _code(self, parent, code: Coded, ref: str) -> None:
        """A LOINC code (displayName required), else no code attributes and the local code in a translation."""
        loinc = loinc_of(code)
        if loinc is not None:
            element = el(parent, "code", code=loinc[0], codeSystem=LOINC, codeSystemName="LOINC",
                         displayName=loinc[1])
        else:
            element = el(parent, "code")
        el(el(element, "originalText"), "reference", value=f"#{ref}")
        local = (code.code, code.display, code.system) if loinc is None or loinc[0] != code.code else \
            (code.alt_code, code.alt_display, code.alt_system)
        if local[0] and (loinc is None or local[0] != loinc[0]):
            oid, is_local = code_system(local[2], self.tables)
            names = table("lab_code_systems", self.tables)
            el(element, "translation", code=local[0], displayName=local[1] or code.label or local[0],
               codeSystem=oid, codeSystemName=names["local_name"] if is_local else local[2])

    def _coded(self, parent, tag: str, code: Coded, ref: str | None, *, xsi_type: str = "") -> None:
        """A CD/CE from a CWE: code and system when there is a code, the narrative as originalText."""
        attrs: dict[str, str] = {}
        if code.code:
            oid, is_local = code_system(code.system, self.tables)
            attrs = {"code": code.code, "codeSystem": oid, "displayName": code.label}
            if is_local:
                attrs["codeSystemName"] = table("lab_code_systems", self.tables)["local_name"]
        elif not ref:
            attrs = {"nullFlavor": "UNK"}
        element = el(parent, tag, **attrs)
        if xsi_type:
            _typed(element, xsi_type)
        if ref:
            el(el(element, "originalText"), "reference", value=f"#{ref}")

    @staticmethod
    def _table(text):
        table_el = el(text, "table", border="0")
        head = el(el(table_el, "thead"), "tr")
        for column in COLUMNS:
            el(head, "th", text=column)
        return table_el

    @staticmethod
    def _heading_row(rows, label: str, ref: str) -> None:
        cell = el(el(rows, "tr"), "td", colspan="5", styleCode="Bold")
        el(cell, "content", text=label, ID=ref)


def _typed(element, xsi_type: str):
    element.set(f"{{{XSI}}}type", xsi_type)
    return element


def _el_path(parent, *tags: str):
    for tag in tags:
        parent = el(parent, tag)
    return parent


def _render(request: RenderRequest) -> bytes:
    report = request.report
    if report is None:
        raise MappingError("a CR-BIO is rendered from a laboratory report (ORU^R01)")
    return render_cr_bio(report, request.patient, report_pdf=report.pdf or None, document_id=request.document_id,
                         set_id=request.set_id, version=request.version,
                         parent_document_id=request.parent_document_id, site=request.site,
                         effective_time=request.effective_time, tables=request.tables)


#: The compte rendu d'examens de biologie médicale: rendered for an ORU^R01 with discrete results.
VOLET = Volet(
    name="CR-BIO 2024.01", source=Source.LAB_REPORT, render=_render, template_ids=(TEMPLATE_IDS[1][0],),
    type_code=DOCUMENT_CODE[0], schematron="CI-SIS_BIO-CR-BIO_2024.01.sch",
    code_tables=("lab_chapters", "lab_units", "lab_interpretation", "lab_code_systems"),
)
