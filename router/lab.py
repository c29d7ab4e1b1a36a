"""A laboratory's ORU^R01 with discrete results, read into plain dataclasses (render mode, CR-BIO).

A laboratory information system (SIL) sends its results as HL7 v2.5 ORU^R01:
ORC/OBR per ordered battery, OBX per result, NTE comments, SPM specimens.
:func:`read_lab_report` turns that into a :class:`LabReport` that
:mod:`mappings.cr_bio` renders; the patient and visit are read separately
(:func:`router.adt.read_patient_visit`). Fields:

- order ids: ORC-2 / OBR-2 (placer), ORC-3 / OBR-3 (filler); ORC-1 order control;
- battery (OBR): OBR-4 code, OBR-24 diagnostic service section (HL7 table 0074,
  or a LOINC chapter code), OBR-7 collection time, OBR-14 received time,
  OBR-15 specimen source, OBR-22 report time, OBR-25 status, OBR-32 validating
  biologist (NDL: ``id&family&given...^start``), OBR-16 / ORC-12 prescriber,
  OBR-28 copies (repeating);
- specimen: SPM-2 id, SPM-4 type (table 0487), SPM-17 collection, SPM-18 receipt;
  without SPM, OBR-7 / OBR-14 / OBR-15 stand in;
- result (OBX): OBX-2 value type, OBX-3 code (a LOINC in OBX-3.4-6 is preferred
  by the renderer), OBX-4 sub-id, OBX-5 value, OBX-6 units, OBX-7 range, OBX-8
  flags (repeating), OBX-11 status, OBX-14 time, OBX-16 validator, OBX-17 method;
- NTE after OBR → battery comments; NTE after OBX → result comments;
- an OBX of type ED whose data subtype is PDF (``^application^pdf^Base64^...``,
  ``^AP^PDF^Base64^...``) is the lab's own report: :attr:`LabReport.pdf`, never a result.

**Microbiology isolates.** Two layouts, both from HL7 v2.5.1 lab practice:

1. *sub-ids*: a coded (CE/CWE) OBX whose OBX-4 is a plain sub-id ``n`` is the
   organism of isolate ``n``; OBX whose OBX-4 is ``n.m`` belong to that isolate
   (counts, antibiogram lines);
2. *child OBR*: an OBR whose OBR-26 names a parent result (``OBX-3^^^OBX-4``,
   i.e. OBR-26.1 code and OBR-26.4 sub-id) is the antibiogram of that isolate;
   its OBX become a battery inside the isolate.

A coded OBX with a plain sub-id is an isolate when something hangs under it
(rule 1 or 2) or when its battery is in the microbiology section (OBR-24 ``MB``, or what the
caller names: the LOINC chapter too, ``mappings.lab_codes``).

**Action.** From the OBX-11 statuses of the results (the PDF OBX included):
every one ``D`` (deleted) → ``delete``; else any ``C`` (corrected) or any ``D``
among other results → ``replace``; else ``publish``. ORC-1 ``CA`` (cancel)
also means ``delete``. That is the PFI volet's rule (F/C/D ↔ NW/RO/CA) applied
to discrete results.

Problems that do not stop rendering (an NM value that is not a number, an
unknown flag) are recorded in ``warnings``, which name fields, never data.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from router.adt import xcn_participant
from router.errors import UnsupportedMessageError, ValidationError
from router.hl7.msh import Segment, iter_segments, read_header
from router.hl7.segments import normalise_segments
from router.identity import RPPS_OID, idnat_ps, rpps_ok, text
from router.lab_model import Battery, Coded, Isolate, LabReport, LabResult, Specimen, all_results  # noqa: F401
from router.model import Action, Participant
from router.recipients_pfi import repetitions, value
CODED_TYPES = frozenset({"CE", "CWE", "CNE"})
TEXT_TYPES = frozenset({"ST", "TX", "FT"})
#: OBR-24 values of a microbiology battery when the caller names none: HL7 table 0074's ``MB``. The
#: render stage is handed the CR-BIO volet's (``mappings.lab_codes.microbiology_sections``: the LOINC chapter too).
MICROBIOLOGY_SECTIONS = frozenset({"MB"})
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")
_PDF_SUBTYPES = frozenset({"PDF", "APPLICATION/PDF"})


def read_lab_report(message, *, microbiology_sections: Collection[str] = MICROBIOLOGY_SECTIONS) -> LabReport:
    """Read an ORU^R01 (``\\r``-separated text or a python-hl7 message) with discrete results.

    Raises :class:`UnsupportedMessageError` for another message type and
    :class:`ValidationError` when the message has no OBR, an OBX comes before
    any OBR, or an embedded PDF is not base64.
    """
    raw = normalise_segments(message if isinstance(message, str) else str(message))
    header = read_header(raw)
    if header.message_type.upper() != "ORU" or header.trigger.upper() != "R01":
        raise UnsupportedMessageError(f"{header.event} is not a laboratory ORU^R01")
    reader = _Reader()
    for segment in iter_segments(raw):
        reader.feed(segment)
    groups = reader.finish()
    if not groups:
        raise ValidationError("ORU^R01 has no OBR segment: no results to render", hl7_code="100",
                              hl7_text="Segment sequence error")
    batteries = _link(groups, reader.warnings, frozenset(s.upper() for s in microbiology_sections))
    statuses = [r.status.upper() for b in batteries for r in all_results(b)] + reader.pdf_statuses
    return LabReport(
        control_id=header.control_id,
        message_time=header.datetime,
        sending_facility=header.sending_facility,
        order_control=reader.order_control,
        placer_order=next((b.placer_order for b in batteries if b.placer_order), ""),
        filler_order=next((b.filler_order for b in batteries if b.filler_order), ""),
        order_authority=reader.order_authority,
        batteries=batteries,
        pdf=reader.pdf,
        action=action_for(statuses, reader.order_control),
        warnings=tuple(reader.warnings),
    )


def action_for(statuses: list[str], order_control: str = "") -> Action:
    """publish / replace / delete from OBX-11 statuses and ORC-1 (see the module docstring)."""
    statuses = [s for s in statuses if s]
    if order_control.upper() == "CA" or (statuses and all(s == "D" for s in statuses)):
        return Action.DELETE
    if any(s in ("C", "D") for s in statuses):
        return Action.REPLACE
    return Action.PUBLISH


def coded(segment, field_no: int, repetition: int = 1) -> Coded:
    """A CE/CWE field (escape sequences resolved in the texts)."""
    return Coded(
        code=value(segment, field_no, 1, repetition=repetition),
        display=text(segment, field_no, 2, repetition=repetition),
        system=value(segment, field_no, 3, repetition=repetition),
        alt_code=value(segment, field_no, 4, repetition=repetition),
        alt_display=text(segment, field_no, 5, repetition=repetition),
        alt_system=value(segment, field_no, 6, repetition=repetition),
        original_text=text(segment, field_no, 9, repetition=repetition),
    )


def number(raw: str) -> str | None:
    """A decimal as CDA writes it (``4,89`` → ``4.89``, ``.5`` → ``0.5``), or None."""
    raw = raw.strip()
    if not _NUMBER.match(raw):
        return None
    raw = raw.replace(",", ".")
    sign = raw[0] if raw[0] in "+-" else ""
    digits = raw.lstrip("+-")
    if digits.startswith("."):
        digits = "0" + digits
    if digits.endswith("."):
        digits = digits[:-1]
    return ("-" if sign == "-" else "") + digits


# --- reading ---------------------------------------------------------------------------------

@dataclass
class _Group:
    """An OBR being read, with its ORC and the segments that follow it."""

    obr: Segment
    orc: Segment | None
    spm: list[Segment] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)     # {"obx": Segment, "comments": [...]}


class _Reader:
    """Walks the segments once, grouping OBX/NTE/SPM under their OBR."""

    def __init__(self):
        self.groups: list[_Group] = []
        self.orc: Segment | None = None
        self.order_control = ""
        self.order_authority = ""
        self.pdf: bytes | None = None
        self.pdf_statuses: list[str] = []
        self.warnings: list[str] = []
        self._last: str = ""

    def feed(self, segment: Segment) -> None:
        kind = segment.id.upper()
        if kind == "ORC":
            self.orc = segment
            self.order_control = self.order_control or value(segment, 1).upper()
        elif kind == "OBR":
            self.groups.append(_Group(obr=segment, orc=self.orc))
            if not self.order_authority:
                source = self.orc if self.orc is not None and value(self.orc, 2) else segment
                self.order_authority = value(source, 2, 3)
        elif kind == "OBX":
            group = self._current("OBX")
            if self._is_pdf(segment):
                self._read_pdf(segment)
                self._last = "PDF"
                return
            group.results.append({"obx": segment, "comments": []})
        elif kind == "NTE":            # attaches to the OBX or OBR it follows; several NTE in a row all do
            comment = _nte(segment) if self.groups else ""
            if comment and self._last == "OBX" and self.groups[-1].results:
                self.groups[-1].results[-1]["comments"].append(comment)
            elif comment and self._last in ("OBR", "SPM"):
                self.groups[-1].comments.append(comment)
            return
        elif kind == "SPM" and self.groups:
            self.groups[-1].spm.append(segment)
        else:
            return
        self._last = kind

    def finish(self) -> list[_Group]:
        return self.groups

    def _current(self, what: str) -> _Group:
        if not self.groups:
            raise ValidationError(f"{what} before any OBR: results must follow their battery", hl7_code="100",
                                  hl7_text="Segment sequence error")
        return self.groups[-1]

    @staticmethod
    def _is_pdf(obx: Segment) -> bool:
        if value(obx, 2).upper() not in ("ED", "RP"):
            return False
        return (value(obx, 5, 3).upper() in _PDF_SUBTYPES or value(obx, 5, 2).upper() in _PDF_SUBTYPES
                or f"{value(obx, 5, 2)}/{value(obx, 5, 3)}".upper() in _PDF_SUBTYPES)

    def _read_pdf(self, obx: Segment) -> None:
        encoding, data = value(obx, 5, 4).upper(), value(obx, 5, 5)
        if encoding not in ("BASE64", "B64"):
            raise ValidationError(f"OBX-5.4: embedded PDF (OBX-1 {value(obx, 1)}) must be Base64, not "
                                  f"{encoding or 'empty'}")
        try:
            pdf = base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError(f"OBX-5.5: embedded PDF (OBX-1 {value(obx, 1)}) is not valid base64") from exc
        if not pdf.startswith(b"%PDF"):
            raise ValidationError(f"OBX-5.5: embedded document (OBX-1 {value(obx, 1)}) is not a PDF")
        self.pdf = pdf
        self.pdf_statuses.append(value(obx, 11).upper())


def _nte(nte: Segment) -> str:
    """NTE-3 (repeating) as one text, lines kept."""
    lines = [text(nte, 3, repetition=rep) for rep in range(1, max(1, repetitions(nte, 3)) + 1)]
    return "\n".join(line for line in lines if line).strip()


def _link(groups: list[_Group], warnings: list[str], microbiology: frozenset[str]) -> tuple[Battery, ...]:
    """Batteries, with child OBR (OBR-26) moved under the isolate they describe."""
    built = [(g, _battery(g, warnings)) for g in groups]
    children: dict[tuple[int, str], list[Battery]] = {}
    top: list[tuple[int, Battery]] = []
    for index, (group, battery) in enumerate(built):
        parent_sub = battery.parent[1]
        if parent_sub or battery.parent[0]:
            owner = _parent_index(built[:index], battery.parent)
            if owner is None:
                warnings.append(f"OBR-26: parent result of OBR {index + 1} not found; read as a battery")
                top.append((index, battery))
            else:
                children.setdefault(owner, []).append(battery)
            continue
        top.append((index, battery))
    out = []
    for index, battery in top:
        out.append(_with_isolates(battery, index, children, warnings, microbiology))
    return tuple(out)


def _parent_index(previous, parent: tuple[str, str]) -> tuple[int, str] | None:
    code, sub_id = parent
    for index in range(len(previous) - 1, -1, -1):
        for result in previous[index][1].results:
            if result.value_type.upper() in CODED_TYPES and result.sub_id == sub_id and \
                    (not code or code in (result.code.code, result.code.alt_code)):
                return index, sub_id
    return None


def _with_isolates(battery: Battery, index: int, children, warnings, microbiology: frozenset[str]) -> Battery:
    """Split a battery's results into plain results and isolates (module docstring, rules 1-2)."""
    results = list(battery.results)
    dotted = {r.sub_id.split(".", 1)[0] for r in results if "." in r.sub_id}
    child_subs = {sub for (owner, sub) in children if owner == index}
    micro = battery.section.upper() in microbiology
    isolates, used, organisms = [], set(), set()
    for result in results:
        is_isolate = (result.value_type.upper() in CODED_TYPES and result.sub_id and "." not in result.sub_id
                      and (result.sub_id in dotted or result.sub_id in child_subs or micro)
                      and result.sub_id not in used)
        if is_isolate:
            used.add(result.sub_id)
            organisms.add(id(result))
            isolates.append(Isolate(
                organism=result.coded_value or Coded(display=result.value), sub_id=result.sub_id,
                status=result.status, time=result.time,
                results=tuple(r for r in results if r.sub_id.startswith(result.sub_id + ".")),
                batteries=tuple(children.get((index, result.sub_id), ())),
                comments=result.comments))
    taken = organisms | {id(r) for isolate in isolates for r in isolate.results}
    plain = [r for r in results if id(r) not in taken]
    for owner, sub in children:
        if owner == index and sub not in used:
            warnings.append(f"OBR-26: parent sub-id of a child OBR is not an isolate of OBR {index + 1}")
    return replace(battery, results=tuple(plain), isolates=tuple(isolates))


def _battery(group: _Group, warnings: list[str]) -> Battery:
    obr, orc = group.obr, group.orc
    prescriber = None
    if orc is not None:
        prescriber = xcn_participant(orc, 12, "ORC-12", warnings)
    if prescriber is None:
        prescriber = xcn_participant(obr, 16, "OBR-16", warnings)
    copies = tuple(p for p in (xcn_participant(obr, 28, "OBR-28", warnings, repetition=rep)
                               for rep in range(1, max(1, repetitions(obr, 28)) + 1)) if p is not None)
    return Battery(
        code=coded(obr, 4),
        section=value(obr, 24),
        placer_order=(value(orc, 2) if orc is not None else "") or value(obr, 2),
        filler_order=(value(orc, 3) if orc is not None else "") or value(obr, 3),
        observation_time=value(obr, 7),
        received_time=value(obr, 14),
        report_time=value(obr, 22),
        status=value(obr, 25).upper(),
        specimen=_specimen(group),
        validator=_ndl(obr, 32, warnings),
        validated_time=value(obr, 32, 2),
        prescriber=prescriber,
        copies=copies,
        parent=(value(obr, 26, 1), value(obr, 26, 4) or value(obr, 26, 2)),
        results=tuple(_result(r["obx"], tuple(r["comments"]), warnings) for r in group.results),
        comments=tuple(group.comments),
    )


def _ndl(obr: Segment, field_no: int, warnings: list[str]) -> Participant | None:
    """OBR-32 (NDL): its CNN name is subcomponents of component 1 (id&family&given&...&authority)."""
    ident = value(obr, field_no, 1, 1)
    family = text(obr, field_no, 1, 2)
    if not (ident or family):
        return None
    if value(obr, field_no, 1, 10) == RPPS_OID or (len(ident) == 11 and ident.isdigit()):
        ident = idnat_ps(ident)
        if ident.startswith("8") and not (len(ident) == 12 and rpps_ok(ident[1:])):
            warnings.append(f"OBR-{field_no}: RPPS check digit (Luhn) does not match")
    return Participant(identifier=ident, family=family, given=text(obr, field_no, 1, 3))


def _specimen(group: _Group) -> Specimen | None:
    obr = group.obr
    if group.spm:
        spm = group.spm[0]
        return Specimen(id=value(spm, 2, 1) or value(spm, 2, 2), type=coded(spm, 4),
                        collected=value(spm, 17, 1) or value(obr, 7), received=value(spm, 18) or value(obr, 14))
    source = coded(obr, 15)
    if not (source or value(obr, 7)):
        return None
    return Specimen(type=source, collected=value(obr, 7), received=value(obr, 14))


def _result(obx: Segment, comments: tuple[str, ...], warnings: list[str]) -> LabResult:
    value_type = value(obx, 2).upper()
    where = f"OBX-5 (OBX-1 {value(obx, 1)})"
    base = dict(set_id=value(obx, 1), value_type=value_type, code=coded(obx, 3), sub_id=value(obx, 4),
                units=coded(obx, 6), reference_range=text(obx, 7),
                flags=tuple(f for f in (value(obx, 8, repetition=r).upper()
                                        for r in range(1, max(1, repetitions(obx, 8)) + 1)) if f),
                status=value(obx, 11).upper(), time=value(obx, 14),
                validator=xcn_participant(obx, 16, "OBX-16", warnings), method=coded(obx, 17),
                comments=comments)
    if value_type == "NM":
        raw = text(obx, 5)
        num = number(raw)
        if num is None:
            warnings.append(f"{where}: NM value is not a number; kept as text")
            return LabResult(**base, kind="text", value=raw)
        return LabResult(**base, kind="numeric", value=num)
    if value_type == "SN":
        return _structured_numeric(obx, base, where, warnings)
    if value_type in CODED_TYPES:
        found = coded(obx, 5)
        return LabResult(**base, kind="coded", value=found.label, coded_value=found)
    lines = [text(obx, 5, repetition=rep) for rep in range(1, max(1, repetitions(obx, 5)) + 1)]
    if value_type not in TEXT_TYPES:
        warnings.append(f"OBX-2 (OBX-1 {value(obx, 1)}): value type {value_type or 'empty'} read as text")
    return LabResult(**base, kind="text", value="\n".join(lines).strip())


def _structured_numeric(obx: Segment, base: dict, where: str, warnings: list[str]) -> LabResult:
    """SN: ``<^0.5`` (bound), ``^5^-^10`` (range), ``^1^:^40`` (ratio, kept as text), ``^5``."""
    comparator, first, separator, second = (value(obx, 5, i) for i in (1, 2, 3, 4))
    one, two = number(first), number(second) if second else None
    raw = "".join((comparator, first, separator, second))
    if one is None or (second and two is None):
        warnings.append(f"{where}: SN value is not numeric; kept as text")
        return LabResult(**base, kind="text", value=raw)
    if separator == "-" and two is not None:
        return LabResult(**base, kind="range", value=f"{one}-{two}", low=one, high=two)
    if separator in (":", "/") and two is not None:
        return LabResult(**base, kind="text", value=f"{one}{separator}{two}")
    if comparator in ("<", "<="):
        return LabResult(**base, kind="range", value=one, comparator=comparator, high=one)
    if comparator in (">", ">="):
        return LabResult(**base, kind="range", value=one, comparator=comparator, low=one)
    return LabResult(**base, kind="numeric", value=one)
