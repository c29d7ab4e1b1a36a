"""ADT events (IHE PAM-FR 2.11) read into the facts the journal keeps about a stay.

Render mode needs the encounter behind a lettre de liaison: admission and
discharge times, unit, doctors, médecin traitant, discharge disposition and
destination, and the patient's INS. :func:`read_adt` takes A01/A04 (admission),
A03 (discharge), A11/A13 (cancel admission/discharge), A08 (update) and the
patient-level A28/A31 (add/update person: no PV1 needed) and returns an
:class:`AdtEvent`; every other trigger is an
:class:`~router.errors.UnsupportedMessageError`. Fields (french-interop.md §5.1):

- PID-3 ``PI`` → IPP; PID-3 ``INS`` → :class:`~router.identity.InsIdentity`;
  PID-18 account number, PV1-19 visit number;
- PV1-2 class, PV1-3 unit, PV1-7/8/17 attending/referring/admitting doctors,
  PV1-36 discharge disposition, PV1-37 destination, PV1-44/45 admit/discharge;
- médecin traitant: the ROL whose ROL-3 is ``ODRP`` (ROL-4), else PD1-4;
- ZBE movement: id, start, action INSERT/UPDATE/CANCEL, original trigger,
  UF of medical and nursing responsibility, nature;
- ZFA, the patient's DMP status and consent, every field
  (:func:`router.dmp_rules.read_zfa`).

Pure: a string (or python-hl7 message) in, a frozen dataclass out. Problems
that must not reject a movement (a shifted ZBE, an RPPS with a bad Luhn key)
are listed in ``AdtEvent.warnings``, which hold no patient data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.dmp_rules import read_zfa
from router.errors import UnsupportedMessageError, ValidationError
from router.hl7.msh import Segment, iter_segments, read_header
from router.hl7.segments import normalise_segments
from router.identity import RPPS_OID, InsIdentity, idnat_ps, read_ins, rpps_ok, text
from router.model import DmpConsent, Participant
from router.recipients_pfi import repetitions, value

#: trigger → what it means for the stay.
TRIGGERS: dict[str, str] = {
    "A01": "admission",
    "A04": "admission",
    "A03": "discharge",
    "A11": "cancel_admission",
    "A13": "cancel_discharge",
    "A08": "update",
    "A28": "patient",
    "A31": "patient",
}
#: patient-level triggers: no encounter, PV1 optional.
PATIENT_TRIGGERS = frozenset(trigger for trigger, kind in TRIGGERS.items() if kind == "patient")
ZBE_ACTIONS = ("INSERT", "UPDATE", "CANCEL")
_PS_TYPES = ("IDNPS", "RPPS", "ADELI")


@dataclass(frozen=True)
class Movement:
    """The ZBE segment of a movement message."""

    id: str                         # ZBE-1.1
    start: str = ""                 # ZBE-2 as sent
    action: str = ""                # ZBE-4: INSERT / UPDATE / CANCEL
    historic: str = ""              # ZBE-5: Y/N
    original_trigger: str = ""      # ZBE-6, for UPDATE / CANCEL
    medical_unit: str = ""          # ZBE-7 XON.10: UF of medical responsibility
    medical_unit_name: str = ""     # ZBE-7 XON.1
    nursing_unit: str = ""          # ZBE-8 XON.10
    nature: str = ""                # ZBE-9 (S, H, M, ..., HMS)
    shifted: bool = False           # read one field to the right (see read_zbe)


@dataclass(frozen=True)
class AdtEvent:
    """What one ADT message says about a patient's stay."""

    trigger: str                            # A01, A03, ...
    kind: str                               # TRIGGERS[trigger]
    control_id: str
    message_time: str                       # MSH-7
    event_time: str = ""                    # EVN-6 (event occurred), else EVN-2
    ipp: str = ""                           # PID-3 of type PI
    ipp_authority: str = ""                 # its CX.4.2 (else CX.4.1)
    ins: InsIdentity | None = None
    family: str = field(default="", repr=False)   # PID-5.1 of the first repetition (for display)
    given: str = field(default="", repr=False)
    birth_date: str = field(default="", repr=False)   # PID-7 (the header's birthTime when there is no INS)
    sex: str = ""                                     # PID-8
    name_type: str = ""                               # PID-5.7 of the first repetition (L: birth name in PAM-FR)
    account_number: str = ""                # PID-18.1
    visit_number: str = ""                  # PV1-19.1
    patient_class: str = ""                 # PV1-2 (I, O, E, R, ...)
    unit: str = ""                          # PV1-3.1 point of care
    unit_facility: str = ""                 # PV1-3.4.1
    attending: Participant | None = None    # PV1-7
    referring: Participant | None = None    # PV1-8
    admitting: Participant | None = None    # PV1-17
    medecin_traitant: Participant | None = None
    discharge_disposition: str = ""         # PV1-36
    discharge_destination: str = ""         # PV1-37.1 (e.g. a FINESS)
    admit_time: str = ""                    # PV1-44.1
    discharge_time: str = ""                # PV1-45.1
    movement: Movement | None = None
    dmp_consent: DmpConsent | None = field(default=None, repr=False)   # the ZFA segment, when present
    warnings: tuple[str, ...] = ()

    @property
    def encounter(self) -> str:
        """The stay number: PID-18, else PV1-19."""
        return self.account_number or self.visit_number


def read_adt(message) -> AdtEvent:
    """Read an ADT message (``\\r``-separated text or a python-hl7 message).

    Raises :class:`UnsupportedMessageError` for a message that is not ADT or a
    trigger outside :data:`TRIGGERS`, :class:`ValidationError` when PID or PV1
    is missing or the INS is wrong (see :func:`router.identity.read_ins`).
    """
    raw = normalise_segments(message if isinstance(message, str) else str(message))
    header = read_header(raw)
    if header.message_type.upper() != "ADT" or header.trigger.upper() not in TRIGGERS:
        raise UnsupportedMessageError(f"{header.event} is not an ADT event this engine takes "
                                      f"({', '.join(sorted(TRIGGERS))})")
    return read_patient_visit(raw, require_pv1=header.trigger.upper() not in PATIENT_TRIGGERS)


def read_patient_visit(message, *, require_pv1: bool = False) -> AdtEvent:
    """The patient (PID, PD1/ROL, ZFD, ZFA) and visit (PV1, ZBE) of any HL7 v2 message.

    Render mode reads the same facts from the MDM or ORU that carries a document
    as from an ADT feed, so the CDA header is written from one shape. ``kind`` is
    the ADT event kind for ADT triggers, else empty. A missing PV1 is an error
    only with ``require_pv1`` (an ADT); otherwise the visit fields stay empty.
    """
    raw = normalise_segments(message if isinstance(message, str) else str(message))
    header = read_header(raw)
    trigger = header.trigger.upper()
    segments: dict[str, list[Segment]] = {}
    for segment in iter_segments(raw):
        segments.setdefault(segment.id.upper(), []).append(segment)
    pid = _one(segments, "PID", header.event)
    pv1 = _one(segments, "PV1", header.event) if require_pv1 else segments.get("PV1", [None])[0]
    if pv1 is None:
        pv1 = Segment("PV1")
    warnings: list[str] = []
    zfd = segments.get("ZFD", [None])[0]
    insi = zfd is not None and value(zfd, 5).upper() == "INSI"
    evn = segments.get("EVN", [None])[0]
    ipp, ipp_authority = _ipp(pid)
    movement = read_zbe(segments["ZBE"][0], warnings) if "ZBE" in segments else None
    return AdtEvent(
        trigger=trigger,
        kind=TRIGGERS.get(trigger, "") if header.message_type.upper() == "ADT" else "",
        control_id=header.control_id,
        message_time=header.datetime,
        event_time=(value(evn, 6) or value(evn, 2)) if evn is not None else "",
        ipp=ipp,
        ipp_authority=ipp_authority,
        ins=read_ins(pid, insi=insi),
        family=text(pid, 5, 1),
        given=text(pid, 5, 2),
        birth_date=value(pid, 7),
        sex=value(pid, 8).upper(),
        name_type=value(pid, 5, 7).upper(),
        account_number=value(pid, 18),
        visit_number=value(pv1, 19),
        patient_class=value(pv1, 2),
        unit=text(pv1, 3),
        unit_facility=value(pv1, 3, 4),
        attending=xcn_participant(pv1, 7, "PV1-7", warnings),
        referring=xcn_participant(pv1, 8, "PV1-8", warnings),
        admitting=xcn_participant(pv1, 17, "PV1-17", warnings),
        medecin_traitant=_medecin_traitant(segments, warnings),
        discharge_disposition=value(pv1, 36),
        discharge_destination=value(pv1, 37),
        admit_time=value(pv1, 44),
        discharge_time=value(pv1, 45),
        movement=movement,
        dmp_consent=read_zfa(segments["ZFA"][0]) if "ZFA" in segments else None,
        warnings=tuple(warnings),
    )


def read_zbe(zbe, warnings: list[str]) -> Movement:
    """The movement of a ZBE segment, lenient with a ZBE shifted one field to the right.

    IHE France forbids ZBE-3 (end) and puts the action in ZBE-4. The ANS
    sample ``SGL/sortie.er7`` fills ZBE-3, leaves ZBE-4 empty and has INSERT in
    ZBE-5, followed by the flag, the UF and the nature each one field late.
    When ZBE-4 is not an action but ZBE-5 is, every field from ZBE-4 on is read
    one place to the right (ZBE-3 is ignored) and a warning is recorded. An
    action found nowhere is left empty, with a warning.
    """
    offset = 0
    action = value(zbe, 4).upper()
    if action not in ZBE_ACTIONS and value(zbe, 5).upper() in ZBE_ACTIONS:
        offset = 1
        action = value(zbe, 5).upper()
        warnings.append("ZBE: action found in ZBE-5 instead of ZBE-4; fields read shifted by one")
    elif action not in ZBE_ACTIONS:
        warnings.append("ZBE-4: no INSERT/UPDATE/CANCEL action")
        action = ""
    return Movement(
        id=value(zbe, 1),
        start=value(zbe, 2),
        action=action,
        historic=value(zbe, 5 + offset).upper(),
        original_trigger=value(zbe, 6 + offset).upper(),
        medical_unit=value(zbe, 7 + offset, 10),
        medical_unit_name=text(zbe, 7 + offset, 1),
        nursing_unit=value(zbe, 8 + offset, 10),
        nature=value(zbe, 9 + offset).upper(),
        shifted=bool(offset),
    )


def xcn_participant(segment, field: int, where: str, warnings: list[str],
                    repetition: int = 1) -> Participant | None:
    """A professional from an XCN (PV1-7, PD1-4, ROL-4...), RPPS normalised to 8+RPPS.

    XCN.1 is read as an IdNat_PS when the assigning authority (XCN.9.2) is the
    RPPS OID or the type code (XCN.13) is IDNPS/RPPS/ADELI; other ids (local
    doctor codes) are kept as sent. An RPPS whose Luhn key fails is kept and
    warned about, never rejected (french-interop.md §5.1).
    """
    ident = value(segment, field, 1, repetition=repetition)
    family = text(segment, field, 2, repetition=repetition)
    given = text(segment, field, 3, repetition=repetition)
    if not (ident or family):
        return None
    type_code = value(segment, field, 13, repetition=repetition).upper()
    authority = value(segment, field, 9, 2, repetition=repetition)
    if authority == RPPS_OID or type_code in _PS_TYPES:
        ident = idnat_ps(ident, type_code)
        if ident.startswith("8") and not (len(ident) == 12 and rpps_ok(ident[1:])):
            warnings.append(f"{where}: RPPS check digit (Luhn) does not match")
    return Participant(identifier=ident, family=family, given=given)


def _medecin_traitant(segments: dict[str, list[Segment]], warnings: list[str]) -> Participant | None:
    """ROL with ROL-3 = ODRP first (the PAM-FR way), else PD1-4 (the older HL7 place)."""
    for rol in segments.get("ROL", []):
        if value(rol, 3).upper() == "ODRP":
            found = xcn_participant(rol, 4, "ROL-4", warnings)
            if found is not None:
                return found
    pd1 = segments.get("PD1", [None])[0]
    return xcn_participant(pd1, 4, "PD1-4", warnings) if pd1 is not None else None


def _ipp(pid) -> tuple[str, str]:
    for rep in range(1, max(1, repetitions(pid, 3)) + 1):
        if value(pid, 3, 5, repetition=rep).upper() == "PI":
            authority = value(pid, 3, 4, 2, repetition=rep) or value(pid, 3, 4, 1, repetition=rep)
            return value(pid, 3, 1, repetition=rep), authority
    return "", ""


def _one(segments: dict[str, list[Segment]], segment_id: str, event: str) -> Segment:
    found = segments.get(segment_id)
    if not found:
        raise ValidationError(f"{event} has no {segment_id} segment", hl7_code="100",
                              hl7_text="Segment sequence error")
    return found[0]
