"""A fast, lazy HL7 v2 reader for the ingest hot path: the MSH header and segments on demand.

The listener must journal and answer every message at thousands per second;
python-hl7's full parse costs milliseconds on an ORU (spec/performance.md), so
the door only splits the MSH line and, when asked, other segments one by one.
No escape sequences are resolved here: header values are returned raw except
for the components we pick out (HD.1, MSG.1–3).

Field numbering follows HL7: ``MSH-1`` is the field separator itself, so in
``line.split(sep)`` MSH-n sits at index n-1; for other segments field n sits
at index n.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from router.errors import ParseError

_LEADING = " \t\r\n\x00\ufeff"


@dataclass(frozen=True, slots=True)
class MshHeader:
    """The MSH fields the engine routes, journals and answers on (raw strings, ``""`` when absent)."""

    field_sep: str
    encoding_chars: str
    sending_application: str       # MSH-3.1 (HD.1)
    sending_facility: str          # MSH-4.1
    receiving_application: str     # MSH-5.1
    receiving_facility: str        # MSH-6.1
    datetime: str                  # MSH-7.1 as sent
    message_type: str              # MSH-9.1, e.g. "ORU"
    trigger: str                   # MSH-9.2, e.g. "R01"
    structure: str                 # MSH-9.3, e.g. "ORU_R01"
    control_id: str                # MSH-10
    processing_id: str             # MSH-11 raw, e.g. "P"
    version: str                   # MSH-12 raw, e.g. "2.5" or "2.5^FRA^2.11"
    charset: str                   # MSH-18 raw
    profile: str                   # MSH-21 raw, e.g. "2.1^CISIS_CDA_HL7_V2"
    sending_application_raw: str = ""    # MSH-3 as sent (all HD components)
    sending_facility_raw: str = ""       # MSH-4
    receiving_application_raw: str = ""  # MSH-5
    receiving_facility_raw: str = ""     # MSH-6
    country: str = ""              # MSH-17
    language: str = ""             # MSH-19

    @property
    def event(self) -> str:
        """``"ORU^R01"`` style type and trigger (always with ``^``), for routing and journals."""
        return f"{self.message_type}^{self.trigger}" if self.trigger else self.message_type

    @property
    def version_id(self) -> str:
        """MSH-12.1 only, e.g. ``"2.5"``."""
        return self.version.split(self.encoding_chars[0], 1)[0]


def read_header(text: str) -> MshHeader:
    """Read the MSH of a decoded message (``\\r``, ``\\n`` or ``\\r\\n`` terminated).

    Raises :class:`ParseError` naming the problem: no MSH, a bad MSH-1/MSH-2, or no MSH-10.
    """
    if not text.startswith("MSH"):
        stripped = text.lstrip(_LEADING)
        if not stripped.startswith("MSH"):
            head = stripped[:3]
            if head in ("FHS", "BHS"):
                raise ParseError(f"batch messages ({head}) are not accepted: send one message per frame")
            raise ParseError("no MSH segment at the start of the message")
        text = stripped
    if len(text) < 8:
        raise ParseError("MSH segment too short")
    sep = text[3]
    if sep.isalnum() or sep in _LEADING:
        raise ParseError(f"bad field separator (MSH-1) {sep!r}")
    end = text.find("\r")
    lf = text.find("\n", 0, end if end >= 0 else len(text))
    if lf >= 0:
        end = lf
    line = text if end < 0 else text[:end]
    f = line.split(sep)
    enc = f[1]
    if (len(enc) not in (4, 5) or len(set(enc)) != len(enc) or sep in enc
            or any(c.isalnum() or c.isspace() for c in enc)):
        raise ParseError(f"bad encoding characters (MSH-2) {enc!r}")
    n = len(f)

    def get(i: int) -> str:            # MSH-i
        return f[i - 1] if i - 1 < n else ""

    comp = enc[0]
    control_id = get(10).strip()
    if not control_id:
        raise ParseError("MSH-10 (message control id) is empty")
    msg = get(9).split(comp)
    msg += [""] * (3 - len(msg))
    s_app, s_fac, r_app, r_fac = get(3), get(4), get(5), get(6)
    return MshHeader(
        field_sep=sep,
        encoding_chars=enc,
        sending_application=s_app.split(comp, 1)[0],
        sending_facility=s_fac.split(comp, 1)[0],
        receiving_application=r_app.split(comp, 1)[0],
        receiving_facility=r_fac.split(comp, 1)[0],
        datetime=get(7).split(comp, 1)[0],
        message_type=msg[0],
        trigger=msg[1],
        structure=msg[2],
        control_id=control_id,
        processing_id=get(11),
        version=get(12),
        charset=get(18),
        profile=get(21),
        sending_application_raw=s_app,
        sending_facility_raw=s_fac,
        receiving_application_raw=r_app,
        receiving_facility_raw=r_fac,
        country=get(17),
        language=get(19),
    )


class Segment:
    """One segment line; fields are split the first time they are asked for."""

    __slots__ = ("line", "field_sep", "id", "_fields", "_tree")

    def __init__(self, line: str, field_sep: str = "|"):
        self.line = line
        self.field_sep = field_sep
        self.id = line[:3]
        self._fields: list[str] | None = None
        self._tree: dict[int, list[list[str]]] | None = None

    @property
    def fields(self) -> list[str]:
        """``line.split(field_sep)``: index 0 is the segment id."""
        if self._fields is None:
            self._fields = self.line.split(self.field_sep)
        return self._fields

    def field(self, n: int) -> str:
        """Field n in HL7 numbering (``MSH-n`` accounted for), ``""`` when absent."""
        if self.id == "MSH":
            if n == 1:
                return self.field_sep
            n -= 1
        fields = self.fields
        return fields[n] if 0 < n < len(fields) else ""

    def leaf(self, n: int, component: int = 1, subcomponent: int = 1, repetition: int = 1,
             encoding_chars: str = "^~\\&") -> str:
        """One leaf (field n, repetition, component, subcomponent; all 1-based), raw, ``""`` when absent.

        The lazy counterpart of python-hl7's ``extract_field``: the PFI checks
        run on it at the door, where building python-hl7's tree costs too much.
        A field is split into repetitions and components once, on first use.
        """
        if self.id == "MSH" and n in (1, 2):
            return self.field(n)
        if self._tree is None:
            self._tree = {}
        reps = self._tree.get(n)
        if reps is None:
            comp, rep = encoding_chars[0], encoding_chars[1]
            reps = self._tree[n] = [r.split(comp) for r in self.field(n).split(rep)]
        if repetition > len(reps):
            return ""
        components = reps[repetition - 1]
        if component > len(components):
            return ""
        value = components[component - 1]
        if subcomponent == 1 and encoding_chars[3] not in value:
            return value
        pieces = value.split(encoding_chars[3])
        return pieces[subcomponent - 1] if subcomponent <= len(pieces) else ""

    def repetitions(self, n: int, encoding_chars: str = "^~\\&") -> int:
        value = self.field(n)
        return value.count(encoding_chars[1]) + 1 if n < len(self.fields) + (self.id == "MSH") else 0

    def __repr__(self) -> str:
        return f"Segment({self.id})"


def iter_segments(text: str) -> Iterator[Segment]:
    """Yield the segments of a normalised (``\\r``-separated) message, lazily; blank ones skipped."""
    sep = text[3] if text.startswith("MSH") and len(text) > 3 else "|"
    pos = 0
    length = len(text)
    while pos < length:
        end = text.find("\r", pos)
        if end < 0:
            end = length
        if end > pos:
            yield Segment(text[pos:end], sep)
        pos = end + 1


def segment_ids(text: str) -> list[str]:
    """The segment ids of a normalised message, in order (``["MSH", "PID", ...]``)."""
    return [line[:3] for line in text.split("\r") if line]


def first_segment(text: str, segment_id: str) -> Segment | None:
    """The first segment with that id, or ``None``; cheap presence check (e.g. PID)."""
    for seg in iter_segments(text):
        if seg.id == segment_id:
            return seg
    return None
