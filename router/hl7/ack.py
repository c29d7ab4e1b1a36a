"""HL7 v2 transport acknowledgements (ACK): build the ones we send, read the ones we get.

Built by hand because python-hl7's ``create_ack`` drops MSH-17/18/19/21, writes
no MSA-3/ERR and stamps naive UTC (spec/hl7-libraries.md P11). Ours:

* MSH with sender and receiver swapped, the original's delimiters, MSH-7 local
  time with offset, MSH-9 ``ACK^<trigger>^ACK``, a fresh MSH-10, MSH-11/12/18
  copied, and MSH-17/19/21 copied when present;
* MSA-1 code, MSA-2 the original MSH-10, MSA-3 the text (escaped);
* on AE/AR an ERR: ``ERR||<where>|<code>^<text>^<table>|<severity>|`` (ERR-3, HL7
  2.5+), ERR-2 naming the segment and field at fault when known (ERL
  ``OBX^7^5``: OBX-5 of the seventh OBX); for 2.1–2.4 both go in ERR-1 instead
  (ELD ``OBX^7^5^code&text&table``), the only place those versions have. The
  table is ``HL70357`` for codes of HL7 table 0357 and ``messageErrorCondition``
  (the ANS table, e.g. 902 "Identifiant de patient inconnu") for the others, as
  the ANS samples write it.

Builders return ``str``; the caller encodes with the message's codec
(:func:`router.hl7.charset.encode`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from router.errors import ParseError
from router.hl7.charset import hl7_name
from router.hl7.escape import escape, unescape
from router.hl7.msh import MshHeader, iter_segments, read_header
from router.hl7.segments import normalise_segments
from router.hl7.writer import hl7_timestamp, message, new_control_id, segment

ACK_CODES = frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})
#: HL7 table 0357 (message error condition codes).
HL70357 = frozenset({"0", "100", "101", "102", "103", "200", "201", "202", "203", "204", "205", "206", "207"})
ANS_ERROR_TABLE = "messageErrorCondition"
_LEGACY_ERR_VERSIONS = ("2.1", "2.2", "2.3", "2.3.1", "2.4")


def error_table(code: str) -> str:
    """The coding system name for ERR-3: ``HL70357`` or the ANS ``messageErrorCondition``."""
    return "HL70357" if code in HL70357 else ANS_ERROR_TABLE


def build_ack(header: MshHeader, code: str, *, text: str = "", error_code: str = "", error_text: str = "",
              severity: str = "E", now: datetime | None = None, control_id: str | None = None,
              table: str | None = None, error_location: str = "") -> str:
    """The ACK answering ``header``; an ERR segment is added on AE/AR (and CE/CR).

    ``error_code`` defaults to 207 "Application internal error" on a negative
    code; ``table`` overrides the ERR-3 coding system name; ``error_location``
    (ERL written with ``^``, e.g. ``PRT^2^15^1^4``) fills ERR-2.
    """
    if code not in ACK_CODES:
        raise ValueError(f"ACK code must be one of {sorted(ACK_CODES)}, not {code!r}")
    sep, enc = header.field_sep, header.encoding_chars
    comp = enc[0]
    msh9 = comp.join(("ACK", header.trigger, "ACK")) if header.trigger else "ACK"
    msh = segment(
        "MSH", enc,
        header.receiving_application_raw, header.receiving_facility_raw,
        header.sending_application_raw, header.sending_facility_raw,
        hl7_timestamp(now), "", msh9, control_id or new_control_id(),
        header.processing_id or "P", header.version or "2.5",
        "", "", "", "",                     # MSH-13..16
        header.country, header.charset, header.language, "", header.profile,
        sep=sep,
    )
    msa = segment("MSA", code, header.control_id, _esc(text, header), sep=sep)
    segments = [msh, msa]
    if code[1] != "A" or error_code:
        segments.append(_err(header, error_code or "207", error_text or _default_text(error_code),
                             severity, table, error_location))
    return message(*segments)


def build_minimal_nack(reason: str, *, error_code: str = "100", error_text: str = "Segment sequence error",
                       codec: str = "utf-8", now: datetime | None = None, control_id: str | None = None) -> str:
    """An AR for a frame whose MSH cannot be read: no MSA-2 is known, receivers get the reason in MSA-3.

    MSH-18 names ``codec`` (the channel default), which the caller encodes with.
    """
    msh = segment("MSH", "^~\\&", "", "", "", "", hl7_timestamp(now), "", "ACK", control_id or new_control_id(),
                  "P", "2.5", "", "", "", "", "", hl7_name(codec))
    msa = segment("MSA", "AR", "", escape(reason))
    err = segment("ERR", "", "", f"{error_code}^{escape(error_text)}^{error_table(error_code)}", "E") + "|"
    return message(msh, msa, err)


def _err(header: MshHeader, code: str, text: str, severity: str, table: str | None, location: str) -> str:
    sep, enc = header.field_sep, header.encoding_chars
    comp, sub = enc[0], enc[3]
    table = table or error_table(code)
    where = [_esc(part, header) for part in location.split("^")] if location else []
    if header.version_id in _LEGACY_ERR_VERSIONS:       # ERR-1 ELD: segment^seq^field^CE (as subcomponents)
        place = (where + ["", "", ""])[:3]
        return segment("ERR", comp.join((*place, sub.join((code, _esc(text, header), table)))), sep=sep)
    # written with ERR-4's trailing separator, as the brief and most samples show it
    return segment("ERR", "", comp.join(where), comp.join((code, _esc(text, header), table)), severity,
                   sep=sep) + sep


def _esc(value: str, header: MshHeader) -> str:
    return escape(value, header.encoding_chars, field_sep=header.field_sep)


def _default_text(code: str) -> str:
    return {"": "Application internal error", "100": "Segment sequence error", "101": "Required field missing",
            "102": "Data type error", "103": "Table value not found", "200": "Unsupported message type",
            "201": "Unsupported event code", "202": "Unsupported processing id",
            "203": "Unsupported version id", "204": "Unknown key identifier", "205": "Duplicate key identifier",
            "206": "Application record locked", "207": "Application internal error"}.get(code, "")


# ------------------------------------------------------------------ reading

@dataclass(frozen=True)
class AckReply:
    """What a peer answered: MSA-1/2/3 and the first ERR code, text and location (unescaped)."""

    code: str                 # MSA-1
    control_id: str           # MSA-2: the MSH-10 it acknowledges
    text: str = ""            # MSA-3
    error_code: str = ""      # ERR-3.1 (or ERR-1.4.1 before 2.5)
    error_text: str = ""      # ERR-3.2 (or ERR-1.4.2)
    header: MshHeader | None = None
    error_location: str = ""  # ERR-2 (or ERR-1.1..3) written with ^, e.g. "OBX^7^5"; "" when not given

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")


def read_ack(text: str) -> AckReply:
    """Read an ACK (any segment terminators). Raises ParseError without MSH/MSA."""
    text = normalise_segments(text)
    header = read_header(text)
    enc, sep = header.encoding_chars, header.field_sep
    comp, sub = enc[0], enc[3]
    msa = err = None
    for seg in iter_segments(text):
        if seg.id == "MSA" and msa is None:
            msa = seg
        elif seg.id == "ERR" and err is None:
            err = seg
    if msa is None:
        raise ParseError("acknowledgement without MSA segment")

    def un(v: str) -> str:
        return unescape(v, enc, field_sep=sep)

    error_code = error_text = location = ""
    if err is not None:
        cwe = err.field(3)
        if cwe:
            parts = cwe.split(comp)
            place = err.field(2).split(comp)
        else:
            eld = err.field(1).split(comp)
            parts = eld[3].split(sub) if len(eld) > 3 else []
            place = eld[:3]
        error_code = un(parts[0]) if parts else ""
        error_text = un(parts[1]) if len(parts) > 1 else ""
        location = "^".join(un(p) for p in place).rstrip("^")
    return AckReply(code=msa.field(1).strip(), control_id=msa.field(2).strip(), text=un(msa.field(3)),
                    error_code=error_code, error_text=error_text, header=header, error_location=location)
