"""The participants of a PFI message: who sends, who receives, where to reply.

In the CI-SIS volet "Transmission d'un document CDA-R2 en HL7v2" the HIS names
the MSSanté recipients itself in PRT segments (pre-adopted from HL7 v2.9) that
follow the document OBX (IG ``profils-messages.md``):

- ``PRT-4 = SB``: the sender (XCN in PRT-5, organisation XON in PRT-8 with the
  FINESS in XON.10, or a device in PRT-10). Needed for the DMP's VIHF token.
- ``PRT-4 = RCT``: one recipient each, MSSanté address in ``PRT-15.4``
  (XTN, ``^^X.400^<address>``); a patient when PRT-5 carries an INS.
- ``PRT-4 = REPLY``: the address the recipients should answer to.

The module also holds the two small python-hl7 accessors the PFI reader shares
(:func:`value`, :func:`repetitions`); they can move to ``router/hl7`` once that
package offers the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import hl7

from router.errors import ValidationError
from router.hl7.msh import Segment as LazySegment
from router.model import Participant, Recipient, RecipientKind, Refusal

#: OIDs of the INS (NIR, NIA, and the test and demo NIR) — french-interop.md §1.
INS_OIDS = frozenset({
    "1.2.250.1.213.1.4.8",
    "1.2.250.1.213.1.4.9",
    "1.2.250.1.213.1.4.10",
    "1.2.250.1.213.1.4.11",
})
PATIENT_DOMAIN = "patient.mssante.fr"

# Deliberately narrower than RFC 5322: MSSanté addresses are plain
# local@domain, and anything fancier in an HL7 field is a typing mistake.
ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%'*+/=?_`{}.-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


# --- field access over python-hl7 ------------------------------------------------

def value(segment: hl7.Segment, field: int, component: int = 1, subcomponent: int = 1,
          repetition: int = 1) -> str:
    """One leaf of a segment, unescaped and stripped; "" when absent.

    Uses HL7 numbering for every segment, MSH included: with python-hl7,
    ``msh[1]`` is the field separator, so ``value(msh, 9)`` is MSH-9.
    python-hl7 nests a field as a plain string, repetitions, components or
    subcomponents depending on which separators occur; its ``extract_field``
    follows the first branch when the tree is deeper than asked and raises
    ``IndexError`` when it is shallower, which here means "absent".
    A lazy segment (the door's, :class:`router.hl7.msh.Segment`) is read the same way.
    """
    if isinstance(segment, LazySegment):
        return segment.leaf(field, component, subcomponent, repetition).strip()
    try:
        found = segment.extract_field(None, field, repetition, component, subcomponent)
    except IndexError:
        return ""
    return str(found).strip()


def repetitions(segment: hl7.Segment, field: int) -> int:
    """How many repetitions a field holds (1 for an empty or simple field)."""
    if isinstance(segment, LazySegment):
        return segment.repetitions(field)
    if field >= len(segment):
        return 0
    return max(1, len(segment[field]))


def segment_id(segment: hl7.Segment) -> str:
    if isinstance(segment, LazySegment):
        return segment.id.upper()
    return str(segment[0]).strip().upper()


def validate_address(raw: str, *, where: str) -> str:
    """A stripped mail address, or ValidationError naming it and where it was."""
    address = raw.strip()
    if not ADDRESS.match(address):
        raise address_error(address, where=where)
    return address


def address_error(address: str, *, where: str) -> ValidationError:
    return ValidationError(f"malformed MSSanté address {address!r} in {where}", hl7_code="102",
                           hl7_text="Data type error")


def is_patient_address(address: str) -> bool:
    return address.lower().endswith("@" + PATIENT_DOMAIN)


# --- PRT ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Participants:
    """What the PRT segments of one message say."""

    sender: Participant | None
    recipients: tuple[Recipient, ...]
    reply_to: str

    @property
    def has_ps_recipients(self) -> bool:
        return any(r.kind is RecipientKind.PROFESSIONAL for r in self.recipients)

    @property
    def has_patient_recipient(self) -> bool:
        return any(r.kind is RecipientKind.PATIENT for r in self.recipients)


def read_participants(message: hl7.Message) -> Participants:
    """Sender, recipients (de-duplicated by address) and reply-to from the PRT segments.

    The first SB and the first REPLY win: the volet allows one of each.
    Recipients keep their first occurrence when an address is repeated;
    addresses are compared without case (the same mailbox typed twice by a
    HIS often differs only in case). A malformed recipient address refuses
    that recipient alone (:attr:`Recipient.refusal`); a malformed REPLY
    address, or an RCT with no address at all, refuses the message.
    """
    sender: Participant | None = None
    reply_to = ""
    recipients: list[Recipient] = []
    seen: set[str] = set()
    prt = 0
    for index, segment in enumerate(message, start=1):
        if segment_id(segment) != "PRT":
            continue
        prt += 1
        role = value(segment, 4).upper()
        where = f"PRT {role or '?'} (segment {index})"
        if role == "SB" and sender is None:
            sender = _participant(segment)
        elif role == "REPLY" and not reply_to:
            addresses = _addresses(segment, where=where)
            reply_to = addresses[0] if addresses else ""
        elif role == "RCT":
            addresses = _raw_addresses(segment)
            if not addresses:
                raise ValidationError(f"{where} has no MSSanté address in PRT-15.4",
                                      hl7_code="101", hl7_text="Required field missing",
                                      hl7_location=f"PRT^{prt}^15^1^4")
            for address in addresses:
                if address.lower() in seen:
                    continue
                seen.add(address.lower())
                recipients.append(_recipient(segment, address, where=where))
    return Participants(sender=sender, recipients=tuple(recipients), reply_to=reply_to)


def _addresses(segment: hl7.Segment, *, where: str) -> list[str]:
    """Every e-mail address in PRT-15, each checked (ValidationError for the first malformed one)."""
    return [validate_address(raw, where=where) for raw in _raw_addresses(segment)]


def _raw_addresses(segment: hl7.Segment) -> list[str]:
    """Every e-mail address in PRT-15 (XTN, repeatable): XTN.4 of X.400/Internet entries, unchecked."""
    found = []
    for rep in range(1, repetitions(segment, 15) + 1):
        raw = value(segment, 15, 4, repetition=rep)
        equipment = value(segment, 15, 3, repetition=rep).upper()
        if raw and equipment in ("", "X.400", "INTERNET"):
            found.append(raw)
    return found


def _participant(segment: hl7.Segment) -> Participant:
    return Participant(
        identifier=value(segment, 5) or value(segment, 10),
        family=value(segment, 5, 2),
        given=value(segment, 5, 3),
        organisation_id=value(segment, 8, 10),
        organisation_name=value(segment, 8),
    )


def _recipient(segment: hl7.Segment, address: str, *, where: str) -> Recipient:
    authority = {value(segment, 5, 9, sub) for sub in (1, 2)}
    is_patient = (
        value(segment, 5, 13).upper() == "INS"
        or bool(authority & INS_OIDS)
        or is_patient_address(address)
    )
    person = " ".join(p for p in (value(segment, 5, 3), value(segment, 5, 2)) if p)
    refusal = None
    if not ADDRESS.match(address):
        refusal = refusal_of(address_error(address, where=where))
    return Recipient(
        address=address,
        kind=RecipientKind.PATIENT if is_patient else RecipientKind.PROFESSIONAL,
        identifier=value(segment, 5) or value(segment, 8, 10) or value(segment, 10),
        name=person or value(segment, 8) or value(segment, 10),
        refusal=refusal,
    )


def refusal_of(error: ValidationError) -> Refusal:
    """The error that refuses one recipient, kept on it instead of refusing the message."""
    return Refusal(error.reason, error.hl7_code, error.hl7_text)


def refusal_error(refusal: Refusal) -> ValidationError:
    """A recipient's refusal as the error that refuses its message (when no destination is left)."""
    return ValidationError(refusal.reason, hl7_code=refusal.hl7_code, hl7_text=refusal.hl7_text)
