"""Patient and professional identity: the INS read from PID, its NIR key, RPPS numbers.

The INS (identité nationale de santé) travels in PID-3 as a CX whose CX.4.2 is
one of the INS OIDs and whose CX.5 is ``INS`` (french-interop.md §1.1, §5.1)::

    279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS^^20101207

:func:`read_ins` returns it with the identity reliability of PID-32 and the
birth traits the CI-SIS header needs when an INS is present (birth name, first
birth given name, all birth given names, birth date, sex, COG birthplace).
A matricule whose key is wrong, or an INS under an OID we do not know, is a
:class:`~router.errors.ValidationError`; the reason never quotes the INS itself
(it is patient data and reasons end up in the journal and the logs).

Everything here is a pure function over strings or segments (python-hl7's or
the lazy :class:`router.hl7.msh.Segment`, both read through
:func:`router.recipients_pfi.value`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.errors import ValidationError
from router.hl7.escape import unescape
from router.recipients_pfi import INS_OIDS, repetitions, value

#: INS OID → kind (french-interop.md §1.1; FR Core INS slices).
INS_KINDS: dict[str, str] = {
    "1.2.250.1.213.1.4.8": "production",
    "1.2.250.1.213.1.4.9": "nia",
    "1.2.250.1.213.1.4.10": "test",
    "1.2.250.1.213.1.4.11": "demo",
}
INS_C_OID = "1.2.250.1.213.1.4.2"          # the old computed INS-C, no longer an INS
#: The other patient identifiers under the same arc: a NIR or NIA used as social security number, not as
#: INS (FR Core 2.2 Patient slices NSS-NIR / NSS-NIA; the CI-SIS médico-social volets' patientRole/id).
NSS_OIDS: dict[str, str] = {
    "1.2.250.1.213.1.4.13": "NSS-NIR",
    "1.2.250.1.213.1.4.14": "NSS-NIA",
}
RPPS_OID = "1.2.250.1.71.4.2.1"

#: PID-32 identity statuses of the French table 0445 (FR Core FRCoreCodeSystemIdentityReliability);
#: the other codes of that table (DOUB, DESA, ...) are attributes and may repeat next to a status.
IDENTITY_STATUSES = ("VIDE", "PROV", "VALI", "RECUP", "QUAL")

_CORSICA = {"2A": "19", "2B": "18"}


# --- check keys ------------------------------------------------------------------

def nir_key(nir13: str) -> int | None:
    """The two-digit key of a 13-character NIR body, or None if the body is malformed.

    key = 97 − (number mod 97). For Corsica the department (characters 6–7)
    ``2A`` counts as ``19`` and ``2B`` as ``18`` before the division — the
    same thing as writing 0 for the letter and subtracting 1 000 000 (2A) or
    2 000 000 (2B) from the number. Sources: docs.rs ``worker_matcher::
    identifiers::parse_fr_nir`` ("2A" → "19", "2B" → "18") and the PHP check
    gist ``julienV/fd6b5d75a44c0f13cbf83193047daa15`` (A→0 then −1 000 000,
    B→0 then −2 000 000); both agree. Replacing the letter by 0 alone (seen in
    some snippets) is wrong.
    """
    body = nir13.strip().upper()
    if len(body) != 13:
        return None
    department = body[5:7]
    if department in _CORSICA:
        body = body[:5] + _CORSICA[department] + body[7:]
    if not body.isdigit():
        return None
    return 97 - int(body) % 97


def nir_key_ok(nir15: str) -> bool:
    """True when a 15-character NIR/NIA (13 + key) carries the right key; see :func:`nir_key`."""
    nir = nir15.strip().upper()
    if len(nir) != 15 or not nir[13:].isdigit():
        return False
    key = nir_key(nir[:13])
    return key is not None and key == int(nir[13:])


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check on a string of digits."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def rpps_ok(rpps11: str) -> bool:
    """True for an 11-digit RPPS whose last digit is its Luhn key (e.g. ``10000023084``)."""
    rpps = rpps11.strip()
    return len(rpps) == 11 and luhn_ok(rpps)


def idnat_ps(xcn_id: str, type_code: str = "") -> str:
    """The IdNat_PS of a professional: ``8``+RPPS (or ``0``+ADELI) from what an XCN.1 holds.

    PAM-FR fills XCN.1 with the IdNat (``801234567897``, XCN.13 = ``IDNPS``) or
    the raw number (``10000023084``, XCN.13 = ``RPPS``; ADELI with ``ADELI``).
    A raw 11-digit number is taken as an RPPS even without a type code; anything
    else (local ids) is returned stripped and unchanged.
    """
    ident = xcn_id.strip()
    kind = type_code.strip().upper()
    if kind == "ADELI" and len(ident) == 9:
        return "0" + ident
    if len(ident) == 11 and ident.isdigit() and kind in ("", "RPPS"):
        return "8" + ident
    return ident


def searchable_identifiers(pid) -> tuple[tuple[str, str], ...]:
    """The patient identifiers of a PID segment people search the journal by: ``("ipp", ...)`` for PID-3 of
    type PI, ``("ins", ...)`` for type INS or an INS OID; as sent, unchecked (the worker checks them).

    The journal stores them only as keyed digests (``channels/journal/digests.py``).
    """
    found = []
    for rep in range(1, max(1, repetitions(pid, 3)) + 1):
        identifier = value(pid, 3, repetition=rep)
        if not identifier:
            continue
        id_type = value(pid, 3, 5, repetition=rep).upper()
        if id_type == "INS" or value(pid, 3, 4, 2, repetition=rep) in INS_OIDS:
            found.append(("ins", identifier))
        elif id_type == "PI":
            found.append(("ipp", identifier))
    return tuple(found)


# --- INS -------------------------------------------------------------------------

@dataclass(frozen=True)
class InsIdentity:
    """The INS of a patient with its reliability and the INS birth traits.

    ``qualified`` follows the RNIV: an identity is *qualified* when it is
    validated (checked against an identity document) **and** its INS was
    retrieved or verified through the INSi teleservice. PAM-FR 2.11 codes that
    status ``QUAL`` in PID-32; ``VALI`` alone means validated without INSi
    (and ``RECUP`` INSi without validation), so neither is qualified. When an
    older sender still writes ``VALI`` but says elsewhere that the identity came
    from INSi (ZFD-5 = ``INSI`` in the Ségur samples), the caller passes
    ``insi=True`` and VALI + INSi counts as qualified.
    """

    matricule: str = field(repr=False)     # patient data: kept out of reprs (logs, tracebacks)
    oid: str
    reliability: str = ""                  # PID-32 identity status (VIDE/PROV/VALI/RECUP/QUAL), "" if none
    attributes: tuple[str, ...] = ()       # the other PID-32 codes (DOUB, HOMA, ...)
    insi: bool = False                     # the sender says the INS came from INSi
    birth_name: str = field(default="", repr=False) # PID-5 (type L) XPN.1
    first_given: str = field(default="", repr=False) # XPN.2: first birth given name
    given_names: str = field(default="", repr=False) # XPN.3 when sent (all birth given names), else XPN.2
    birth_date: str = field(default="", repr=False) # PID-7.1 as sent (YYYYMMDD…)
    sex: str = ""                          # PID-8 (F, M, U…)
    birthplace_cog: str = field(default="", repr=False) # PID-11 (type BDL) XAD.9: INSEE COG code
    birthplace_city: str = field(default="", repr=False) # PID-11 (type BDL) XAD.3

    @property
    def kind(self) -> str:
        """``production``, ``nia``, ``test`` or ``demo`` from the OID."""
        return INS_KINDS.get(self.oid, "")

    @property
    def qualified(self) -> bool:
        return self.reliability == "QUAL" or (self.reliability == "VALI" and self.insi)

    @property
    def traits_complete(self) -> bool:
        """All six traits the SMDS schematron demands next to an INS are present."""
        return all((self.birth_name, self.first_given, self.given_names, self.birth_date,
                    self.sex, self.birthplace_cog))


def read_ins(pid, *, insi: bool = False) -> InsIdentity | None:
    """The INS of a PID segment, or None when PID-3 carries none.

    An identifier is taken as an INS when its CX.5 is ``INS`` or its CX.4.2 is
    an INS OID. Raises :class:`ValidationError` for an INS under an unknown OID
    (including the retired INS-C), a matricule that is not 15 characters, or a
    wrong NIR key. ``insi`` is what the message says elsewhere about INSi (see
    :class:`InsIdentity`).
    """
    for rep in range(1, max(1, repetitions(pid, 3)) + 1):
        type_code = value(pid, 3, 5, repetition=rep).upper()
        oid = value(pid, 3, 4, 2, repetition=rep)
        if type_code != "INS" and oid not in INS_KINDS:
            continue
        if oid not in INS_KINDS:
            problem = "the retired INS-C OID" if oid == INS_C_OID else f"unknown OID {oid!r}"
            raise ValidationError(f"PID-3 repetition {rep}: INS under {problem}",
                                  hl7_code="102", hl7_text="Data type error")
        matricule = value(pid, 3, 1, repetition=rep).upper()
        if len(matricule) != 15:
            raise ValidationError(f"PID-3 repetition {rep}: the INS matricule is not 15 characters",
                                  hl7_code="102", hl7_text="Data type error")
        if not nir_key_ok(matricule):
            raise ValidationError(f"PID-3 repetition {rep}: the INS key does not match the NIR "
                                  f"(97 - number mod 97)", hl7_code="102", hl7_text="Data type error")
        status, attributes = _reliability(pid)
        birth_name, first_given, given_names = _birth_name(pid)
        cog, city = _birthplace(pid)
        return InsIdentity(
            matricule=matricule, oid=oid, reliability=status, attributes=attributes, insi=insi,
            birth_name=birth_name, first_given=first_given, given_names=given_names,
            birth_date=value(pid, 7), sex=value(pid, 8).upper(),
            birthplace_cog=cog, birthplace_city=city,
        )
    return None


def text(segment, field: int, component: int = 1, subcomponent: int = 1, repetition: int = 1) -> str:
    """:func:`value` with the HL7 escape sequences resolved (names, free text)."""
    return unescape(value(segment, field, component, subcomponent, repetition))


def _reliability(pid) -> tuple[str, tuple[str, ...]]:
    """PID-32 split into the identity status and the attribute codes (the field may repeat)."""
    status = ""
    attributes: list[str] = []
    for rep in range(1, max(1, repetitions(pid, 32)) + 1):
        code = value(pid, 32, repetition=rep).upper()
        if not code:
            continue
        if code in IDENTITY_STATUSES and not status:
            status = code
        else:
            attributes.append(code)
    return status, tuple(attributes)


def _birth_name(pid) -> tuple[str, str, str]:
    """Birth name, first birth given name, all birth given names from PID-5.

    PAM-FR carries the birth identity in the PID-5 repetition of type ``L``:
    XPN.1 birth name, XPN.2 first birth given name, XPN.3 the list of birth
    given names (the first one included, as in FR Core's "prénoms de l'acte de
    naissance" and the ANS sample ``PAT-TROIS^DOMINIQUE^DOMINIQUE^^^^L``).
    When XPN.3 is empty the list is the first given name alone. Without a
    typed repetition, an untyped first repetition is read the same way.
    """
    count = max(1, repetitions(pid, 5))
    chosen = 0
    for rep in range(1, count + 1):
        if value(pid, 5, 7, repetition=rep).upper() == "L":
            chosen = rep
            break
    if not chosen and not value(pid, 5, 7):
        chosen = 1
    if not chosen:
        return "", "", ""
    family = text(pid, 5, 1, repetition=chosen)
    first = text(pid, 5, 2, repetition=chosen)
    given = text(pid, 5, 3, repetition=chosen) or first
    return family, first, given


def _birthplace(pid) -> tuple[str, str]:
    """COG code (XAD.9) and city (XAD.3) of the PID-11 repetition of type ``BDL``."""
    for rep in range(1, max(1, repetitions(pid, 11)) + 1):
        if value(pid, 11, 7, repetition=rep).upper() == "BDL":
            return value(pid, 11, 9, repetition=rep).upper(), text(pid, 11, 3, repetition=rep)
    return "", ""
