"""Render mode: what an MDM^T02/T10/T11 with a PDF letter says about the document to produce.

A hospital that cannot produce CI-SIS CDA itself sends its documents as
ordinary MDM messages: TXA describes the document, an ED OBX carries the PDF
(``OBX|1|ED|...||^AP^PDF^Base64^<data>``, or ``^application^pdf^...``), and
TX/FT OBX rows coded with a section code (OBX-3, LOINC) may carry the narrative
of a section; which sections a volet fills from them is the volet's business.
:func:`read_mdm` reads them into an :class:`MdmDocument`; nothing here knows CDA.

TXA fields used (HL7 v2.5/2.6): TXA-2 document type, TXA-4/6 activity and
origination times, TXA-5 primary activity provider, TXA-9 originator, TXA-10
assigned authenticator, TXA-12 unique document number, TXA-13 parent document
number, TXA-17 completion status, TXA-18 confidentiality (``V``, very
restricted, keeps the document from the patient's own mailbox until a doctor
has talked to them, as INVISIBLE_PATIENT does in PFI mode), TXA-22
authentication person, TXA-23
distributed copies. The author is the first of TXA-22, TXA-9, TXA-10, TXA-5
that names someone: the person who authenticated the letter signs it.

Triggers: T02 publishes, T10 replaces (TXA-13 names the replaced document;
without it, TXA-12 is the document being replaced), T11 cancels (no content).
A document whose TXA-17 says it is not finished (``IP`` in progress, ``DI``
dictated, ``IN`` incomplete, ``PA`` pre-authenticated) is refused: a letter is
sent once a doctor has authenticated it, never before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.adt import xcn_participant
from router.errors import UnsupportedMessageError, ValidationError
from router.flags import decode_ed
from router.hl7.msh import Segment, iter_segments, read_header
from router.hl7.segments import normalise_segments
from router.identity import text
from router.model import Action, Participant
from router.recipients_pfi import repetitions, value

TRIGGERS = {"T02": Action.PUBLISH, "T10": Action.REPLACE, "T11": Action.DELETE}
#: TXA-17 values of a document that is not ready to leave the hospital (HL7 table 0271).
UNFINISHED = {"IP": "in progress", "DI": "dictated", "IN": "incomplete", "PA": "pre-authenticated"}
PDF_SUBTYPES = {"PDF"}


@dataclass(frozen=True)
class MdmDocument:
    """What an MDM asks for: which document, by whom, with which content."""

    trigger: str
    action: Action
    type_code: str                      # TXA-2 as sent (first component)
    unique_id: str                      # TXA-12.1
    parent_id: str = ""                 # TXA-13.1
    completion_status: str = ""         # TXA-17
    confidentiality: str = ""           # TXA-18 (HL7 table 0272: V very restricted, R restricted, U usual)
    activity_time: str = ""             # TXA-4, else TXA-6
    author: Participant | None = None
    copies: tuple[Participant, ...] = ()
    pdf: bytes = field(default=b"", repr=False)
    narrative: dict[str, str] = field(default_factory=dict, repr=False)
    warnings: tuple[str, ...] = ()


def read_mdm(message) -> MdmDocument:
    """Read a render-mode MDM (``\\r``-separated text or a python-hl7 message).

    Raises :class:`UnsupportedMessageError` for another message or trigger and
    :class:`ValidationError`, naming the field, for a TXA or PDF that cannot
    make a document.
    """
    raw = normalise_segments(message if isinstance(message, str) else str(message))
    header = read_header(raw)
    trigger = header.trigger.upper()
    if header.message_type.upper() != "MDM" or trigger not in TRIGGERS:
        raise UnsupportedMessageError(f"{header.event}: render mode takes MDM^T02, T10 and T11",
                                      hl7_code="201", hl7_text="Unsupported event code")
    segments = list(iter_segments(raw))
    txa = next((segment for segment in segments if segment.id == "TXA"), None)
    if txa is None:
        raise ValidationError(f"{header.event} without TXA", hl7_code="100", hl7_text="Segment sequence error")
    warnings: list[str] = []
    action = TRIGGERS[trigger]
    unique_id = value(txa, 12)
    if not unique_id:
        raise ValidationError("TXA-12 (unique document number) is empty", hl7_code="101",
                              hl7_text="Required field missing")
    status = value(txa, 17).upper()
    if action is not Action.DELETE and status in UNFINISHED:
        raise ValidationError(f"TXA-17={status} ({UNFINISHED[status]}): the document is not authenticated "
                              "and is not sent", hl7_code="103", hl7_text="Table value not found")
    pdf = b""
    narrative: dict[str, str] = {}
    if action is not Action.DELETE:
        pdf = _pdf(segments)
        narrative = _narrative(segments)
        if not pdf and not narrative:
            raise ValidationError(f"{header.event} carries neither a PDF (ED OBX) nor section text (TX/FT OBX)",
                                  hl7_code="100", hl7_text="Segment sequence error")
    return MdmDocument(
        trigger=trigger,
        action=action,
        type_code=value(txa, 2),
        unique_id=unique_id,
        parent_id=value(txa, 13),
        completion_status=status,
        confidentiality=value(txa, 18).upper(),
        activity_time=value(txa, 4) or value(txa, 6),
        author=_author(txa, warnings),
        copies=tuple(found for rep in range(1, repetitions(txa, 23) + 1)
                     if (found := xcn_participant(txa, 23, "TXA-23", warnings, repetition=rep)) is not None),
        pdf=pdf,
        narrative=narrative,
        warnings=tuple(warnings),
    )


def _author(txa: Segment, warnings: list[str]) -> Participant | None:
    """TXA-22, TXA-9, TXA-10, TXA-5: the first naming someone with an identifier."""
    for field_number in (22, 9, 10, 5):
        found = xcn_participant(txa, field_number, f"TXA-{field_number}", warnings)
        if found is not None and found.identifier:
            return found
    return None


def _pdf(segments: list[Segment]) -> bytes:
    """The first ED OBX whose type/subtype says PDF, decoded and checked to be one."""
    for obx in segments:
        if obx.id != "OBX" or value(obx, 2).upper() != "ED":
            continue
        subtype = value(obx, 5, 3).upper()
        if subtype not in PDF_SUBTYPES:
            raise ValidationError(f"OBX-{value(obx, 1) or '?'}: ED of subtype {subtype!r}; render mode takes PDF "
                                  "letters (a CDA belongs in a PFI message)", hl7_code="102",
                                  hl7_text="Data type error")
        data = decode_ed(obx, where=f"OBX-{value(obx, 1) or '?'}")
        if not data.startswith(b"%PDF-"):
            raise ValidationError(f"OBX-{value(obx, 1) or '?'}: the decoded data is not a PDF (no %PDF- header)",
                                  hl7_code="102", hl7_text="Data type error")
        return data
    return b""


def _narrative(segments: list[Segment]) -> dict[str, str]:
    """Section texts by OBX-3 code, from TX/FT/ST OBX rows (repetitions are lines)."""
    found: dict[str, list[str]] = {}
    for obx in segments:
        if obx.id != "OBX" or value(obx, 2).upper() not in ("TX", "FT", "ST"):
            continue
        key = value(obx, 3)
        if not key:
            continue
        lines = [text(obx, 5, repetition=rep) for rep in range(1, max(1, repetitions(obx, 5)) + 1)]
        found.setdefault(key, []).extend(line for line in lines if line)
    return {key: "\n".join(lines) for key, lines in found.items() if lines}
