"""The MetaDMPMSS flags of a PFI message and the combinations the volet allows.

The HIS says where a document goes and who may see it in OBX rows whose
OBX-3.3 is ``MetaDMPMSS`` (IG ``profils-messages.md`` § "Les métadonnées
DMP/MSSanté", table ``meta-dmp-mss.md``)::

    OBX|n|CE|DESTMSSANTEPAT^Destinataire Patient^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F|
    NTE|1|||FIN|                                  <- optional: the patient may not reply

``read_flags`` turns them into :class:`router.model.Flags`;
``check_combination`` applies the IG's management matrix
(``regles-gestion-mssante.md``) plus the consistency between the flags and
the PRT recipients.

Refusals carry HL7 table 0357 codes and the field at fault (ERR-2): 103 and the
OBX-5 of the row whose value forbids the others for a forbidden combination,
101 and the PRT-15.4 that is missing for a destination without its recipient,
100 for a missing row.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable

import hl7
import structlog

from router.errors import ValidationError
from router.model import Flags
from router.recipients_pfi import segment_id, value

log = structlog.get_logger(__name__)

CODE_SYSTEM = "METADMPMSS"

#: Y/N rows the IG marks "Usage = Required": no default, a missing one is an error.
REQUIRED = (
    "MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REP_LEGAUX", "CONNEXION_SECRETE",
    "MODIF_CONF_CODE", "DESTDMP", "DESTMSSANTEPS", "DESTMSSANTEPAT",
)

_YES_NO = {
    "MASQUE_PS": "masque_ps",
    "INVISIBLE_PATIENT": "invisible_patient",
    "INVISIBLE_REP_LEGAUX": "invisible_rep_legaux",
    "CONNEXION_SECRETE": "connexion_secrete",
    "MODIF_CONF_CODE": "modif_conf_code",
    "DESTDMP": "dest_dmp",
    "DESTMSSANTEPS": "dest_mss_ps",
    "DESTMSSANTEPAT": "dest_mss_patient",
    "ACK_RECEPTION": "ack_reception",
    "ACK_LECTURE_MSS": "ack_lecture",
    "ACK_LECTURE": "ack_lecture",       # the spelling of the IG's exemples.md and change-log 2.0
}
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_BODIES = {"CORPSMAIL_PS": "body_ps", "CORPSMAIL_PATIENT": "body_patient"}
KNOWN_CODES = frozenset(_YES_NO) | frozenset(_BODIES)

_CHARSETS = {"8859/1": "latin-1", "8859/15": "iso8859-15"}


def is_meta_row(obx: hl7.Segment) -> bool:
    """True for a MetaDMPMSS OBX.

    Also true when OBX-3.3 is empty but OBX-3.1 is one of the table's codes:
    one of the IG's own examples drops the coding system on DESTDMP, and such a
    row must never be mistaken for the document.
    """
    system = value(obx, 3, 3).upper()
    return system == CODE_SYSTEM or (not system and value(obx, 3).upper() in KNOWN_CODES)


def read_flags(message: hl7.Message) -> Flags:
    """The Flags of a PFI message.

    Defaults follow the IG's usage column (profils-messages.md):

    - ACK_RECEPTION, ACK_LECTURE_MSS: optional, default N;
    - CORPSMAIL_PS, CORPSMAIL_PATIENT: optional, default None (an unreadable
      body counts as absent, see :func:`_body`);
    - ``patient_no_reply``: False unless an NTE right after the DESTMSSANTEPAT
      row has NTE-4 = FIN;
    - the eight other rows are "Required" and have no default: reading a
      missing masking flag as N would widen who sees the document, so a
      missing row is rejected (HL7 100, required segment missing).

    A value other than Y/N is rejected (103); an unknown MetaDMPMSS code is
    logged and ignored.
    """
    values: dict[str, bool] = {}
    bodies: dict[str, str | None] = {}
    no_reply = False
    previous_code = ""
    obx = 0
    for segment in message:
        kind = segment_id(segment)
        if kind == "NTE":
            if previous_code == "DESTMSSANTEPAT" and value(segment, 4).upper() == "FIN":
                no_reply = True
            continue
        previous_code = ""
        if kind != "OBX":
            continue
        obx += 1
        if not is_meta_row(segment):
            continue
        code = previous_code = value(segment, 3).upper()
        if code in _BODIES:
            bodies[_BODIES[code]] = _body(message, segment, code)
        elif code in _YES_NO:
            flag = _yes_no(segment, code, f"OBX^{obx}^5")
            name = _YES_NO[code]
            if values.get(name, flag) != flag:
                raise ValidationError(f"MetaDMPMSS {code} is given twice with different values",
                                      hl7_code="103", hl7_text="Table value not found", hl7_location=f"OBX^{obx}^5")
            values[name] = flag
        else:
            log.warning("pfi.flags.unknown_code", code=code)
    missing = [code for code in REQUIRED if _YES_NO[code] not in values]
    if missing:
        raise ValidationError(
            f"missing MetaDMPMSS rows: {', '.join(missing)}", details=missing,
            hl7_code="100", hl7_text="Segment sequence error", hl7_location=f"OBX^{obx + 1}",
        )
    return Flags(**values, patient_no_reply=no_reply, **bodies)


def decode_ed(obx: hl7.Segment, *, where: str) -> bytes:
    """The bytes of an ED OBX-5 (``^TEXT^XML^Base64^<data>``), strictly decoded.

    Whitespace inside the data is dropped (line-wrapped base64 is common);
    anything else that is not base64 is an error rather than silently skipped,
    because a half-decoded document is worse than a rejection.
    """
    encoding = value(obx, 5, 4)
    if encoding.upper() != "BASE64":
        raise ValidationError(f"{where}: OBX-5.4 must be Base64, got {encoding!r}",
                              hl7_code="102", hl7_text="Data type error")
    data = value(obx, 5, 5)
    if not _BASE64.fullmatch(data):     # most often line-wrapped; else the decoder says what is wrong
        data = "".join(data.split())
    if not data:
        raise ValidationError(f"{where}: OBX-5.5 is empty", hl7_code="101",
                              hl7_text="Required field missing")
    try:
        if _BASE64.fullmatch(data):
            # What b64decode(validate=True) does, without its ASCII bytes copy of the text (27 MB for a 20 MB PDF).
            return binascii.a2b_base64(data)
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(f"invalid base64 in OBX-5 ({where}): {exc}", hl7_code="102",
                              hl7_text="Data type error") from exc


def _yes_no(obx: hl7.Segment, code: str, location: str) -> bool:
    raw = value(obx, 5).upper()
    if raw not in ("Y", "N"):
        raise ValidationError(f"MetaDMPMSS {code}: OBX-5.1 must be Y or N, got {raw!r}",
                              hl7_code="103", hl7_text="Table value not found", hl7_location=location)
    return raw == "Y"


def _body(message: hl7.Message, obx: hl7.Segment, code: str) -> str | None:
    """A mail body: UTF-8 as in the IG examples, else the message's MSH-18 charset.

    An unreadable body is logged and treated as absent, not as an error: the
    IG has the PFI write a default body when none is given, and holding back a
    clinical document for its covering note would be the worse outcome (the
    three official V2.1 ORU samples all carry a truncated CORPSMAIL_PS).
    """
    try:
        raw = decode_ed(obx, where=code)
    except ValidationError as exc:
        log.warning("pfi.flags.body_unreadable", code=code, reason=exc.reason)
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        msh = next((seg for seg in message if segment_id(seg) == "MSH"), None)
        codec = _CHARSETS.get(value(msh, 18).upper()) if msh is not None else None
        if codec is None:
            log.warning("pfi.flags.body_unreadable", code=code, reason="not UTF-8")
            return None
        return raw.decode(codec)


# --- combinations ---------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """A forbidden combination: when ``forbidden(flags)`` holds, reject with ``reason``.

    ``row`` is the MetaDMPMSS row whose value forbids the others, named in ERR-2.
    """

    forbidden: Callable[[Flags], bool]
    reason: str
    row: str


def _any_mss(flags: Flags) -> bool:
    return flags.dest_mss_ps or flags.dest_mss_patient


#: The IG's matrix (regles-gestion-mssante.md) lists the only three allowed
#: MSSanté rows: PS + patient, PS only, patient only. Read column by column it
#: forbids what follows. Two cells are read as "Y or N" because the IG's own
#: worked examples (exemples.md) use the other value: row "PS only" lists
#: INVISIBLE_PATIENT: Y (example 2 sends to PS with N), row "patient only"
#: lists DESTDMP: N (example 1 shares on the DMP and mails the patient).
RULES = (
    Rule(lambda f: f.connexion_secrete and _any_mss(f),
         "CONNEXION_SECRETE=Y interdit tout envoi MSSanté (DESTMSSANTEPS/DESTMSSANTEPAT=Y) "
         "— a secret-connection document is never mailed", "CONNEXION_SECRETE"),
    Rule(lambda f: f.invisible_patient and f.dest_mss_patient,
         "INVISIBLE_PATIENT=Y interdit DESTMSSANTEPAT=Y "
         "— a document hidden from the patient cannot be mailed to the patient", "INVISIBLE_PATIENT"),
    Rule(lambda f: f.invisible_rep_legaux and f.dest_mss_ps,
         "INVISIBLE_REP_LEGAUX=Y interdit DESTMSSANTEPS=Y "
         "— the matrix allows it only for a patient-only exchange", "INVISIBLE_REP_LEGAUX"),
    Rule(lambda f: f.masque_ps and f.dest_mss_ps and f.dest_mss_patient,
         "MASQUE_PS=Y interdit DESTMSSANTEPS=Y avec DESTMSSANTEPAT=Y "
         "— the matrix's PS + patient row requires MASQUE_PS=N", "MASQUE_PS"),
    Rule(lambda f: not (f.dest_dmp or _any_mss(f)),
         "DESTDMP, DESTMSSANTEPS et DESTMSSANTEPAT valent N : aucune destination "
         "— the message sends the document nowhere", "DESTDMP"),
)


def check_combination(flags: Flags, *, has_ps_recipients: bool, has_patient_recipient: bool,
                      message: Iterable | None = None) -> None:
    """Raise ValidationError listing every broken rule (reasons in ``details``).

    Besides :data:`RULES`, the flags and the PRT RCT recipients must agree
    both ways: a destination flag needs its recipients, and recipients of a
    kind the flags do not ask for are refused rather than silently dropped.
    The error's HL7 code and ERR-2 are the first problem's: 103 at the OBX-5
    of the row at fault, or 101 at the PRT-15.4 of the recipient missing
    (after the message's last PRT). ``message`` (python-hl7 or the door's lazy
    segments) gives the segments' sequence numbers; without it ERR-2 names
    the segment and field only.
    """
    # (reason, HL7 code, where): the place is found only when something is wrong (the door runs this per message).
    problems: list[tuple[str, str, Callable[[_Places], str]]] = [
        (rule.reason, "103", functools.partial(_Places.row, code=rule.row)) for rule in RULES if rule.forbidden(flags)]
    if flags.dest_mss_ps and not has_ps_recipients:
        problems.append(("DESTMSSANTEPS=Y sans destinataire professionnel (PRT RCT) "
                         "— no professional recipient given", "101", _Places.missing_recipient))
    if flags.dest_mss_patient and not has_patient_recipient:
        problems.append(("DESTMSSANTEPAT=Y sans destinataire patient (PRT RCT avec INS) "
                         "— no patient recipient given", "101", _Places.missing_recipient))
    if has_ps_recipients and not flags.dest_mss_ps:
        problems.append(("destinataire professionnel (PRT RCT) avec DESTMSSANTEPS=N "
                         "— professional recipients given but not asked for", "103",
                         functools.partial(_Places.row, code="DESTMSSANTEPS")))
    if has_patient_recipient and not flags.dest_mss_patient:
        problems.append(("destinataire patient (PRT RCT) avec DESTMSSANTEPAT=N "
                         "— a patient recipient given but not asked for", "103",
                         functools.partial(_Places.row, code="DESTMSSANTEPAT")))
    if problems:
        reasons = [reason for reason, _, _ in problems]
        _, code, place = problems[0]
        raise ValidationError("; ".join(reasons), details=reasons, hl7_code=code,
                              hl7_text=_TEXTS[code], hl7_location=place(_Places.of(message)))


_TEXTS = {"101": "Required field missing", "103": "Table value not found"}


@dataclass(frozen=True)
class _Places:
    """Where the MetaDMPMSS rows and the PRT segments of a message sit, for ERR-2."""

    rows: dict[str, int]        # MetaDMPMSS code -> its OBX's sequence (1 = the message's first OBX)
    prt: int | None             # how many PRT segments; None when the message is not known

    @classmethod
    def of(cls, message: Iterable | None) -> _Places:
        if message is None:
            return cls({}, None)
        rows: dict[str, int] = {}
        obx = prt = 0
        for segment in message:
            kind = segment_id(segment)
            if kind == "PRT":
                prt += 1
            elif kind == "OBX":
                obx += 1
                if is_meta_row(segment):
                    rows.setdefault(value(segment, 3).upper(), obx)
        return cls(rows, prt)

    def row(self, code: str) -> str:
        return f"OBX^{self.rows.get(code, '')}^5"

    def missing_recipient(self) -> str:
        return f"PRT^{'' if self.prt is None else self.prt + 1}^15^1^4"
