"""Our own PAM-FR ADT test messages (A01/A04/A03/A11/A13/A08/A28/A31), fictitious data only.

Built after IHE PAM-FR 2.11 as summarised in french-interop.md §5.1, never
copied from the ANS samples. Every part can be overridden so a test breaks or
drops exactly one thing::

    text = make_adt("A01")                                     # admission, qualified test INS
    text = make_adt("A03", disposition="9", destination="")    # discharge, deceased
    text = make_adt("A03", patient=CORSICA_2A)                 # Corsican INS (2A)
    text = make_adt("A01", patient=replace(PATIENT, ins=WRONG_KEY_INS))
    text = make_adt("A03", medecin_traitant=DR_DURAND, medecin_traitant_in="PD1")
    text = make_adt("A01", replace={"PID": None})              # drop PID
    text = make_adt("A03", zbe_shifted=True)                   # ZBE laid out like SGL/sortie.er7
    text = make_adt("A01", zfa=zfa(feeding="IO"))               # DMP consent: objection to feeding
    text = make_adt("A31", zfa=zfa(consultation="INC"))         # patient update, no encounter (PV1|1|N)

Segments are joined with ``\\r``. INS matricules carry keys computed here
independently of router.identity (97 - number mod 97, 2A → 19, 2B → 18).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

INS_PROD_OID = "1.2.250.1.213.1.4.8"
INS_NIA_OID = "1.2.250.1.213.1.4.9"
INS_TEST_OID = "1.2.250.1.213.1.4.10"
INS_DEMO_OID = "1.2.250.1.213.1.4.11"
IPP_OID = "1.2.250.1.999.1.1"            # fictitious hospital IPP domain
RPPS_OID = "1.2.250.1.71.4.2.1"
FINESS = "999000017"                     # fictitious establishment


def with_key(nir13: str) -> str:
    """A 15-character NIR: the body plus its key (Corsica: 2A counts as 19, 2B as 18)."""
    digits = nir13.replace("2A", "19", 1) if nir13[5:7] == "2A" else nir13
    digits = digits.replace("2B", "18", 1) if nir13[5:7] == "2B" else digits
    return f"{nir13}{97 - int(digits) % 97:02d}"


@dataclass(frozen=True)
class AdtPatient:
    ipp: str = "IPP004711"
    ins: str = with_key("2850575123456")          # F, 1985-05, Paris
    ins_oid: str = INS_TEST_OID
    reliability: str = "QUAL"
    family: str = "TESTLIAISON"
    given: str = "Hélène"
    all_given: str = "Hélène Marie Josée"
    birth_date: str = "19850512"
    sex: str = "F"
    birthplace_cog: str = "75056"
    birthplace_city: str = "Paris"
    used_family: str = ""                         # a second PID-5 repetition of type D when set


PATIENT = AdtPatient()
PROVISIONAL = AdtPatient(ipp="IPP004712", ins=with_key("1920133012045"), reliability="PROV",
                         family="ESSAI-PROVISOIRE", given="Léo", all_given="Léo",
                         birth_date="19920115", sex="M", birthplace_cog="33063",
                         birthplace_city="Bordeaux")
CORSICA_2A = AdtPatient(ipp="IPP004713", ins=with_key("185032A004012"), family="ÉPREUVE-SUD",
                        given="Ange", all_given="Ange Toussaint", birth_date="19850301", sex="M",
                        birthplace_cog="2A004", birthplace_city="Ajaccio")
CORSICA_2B = AdtPatient(ipp="IPP004714", ins=with_key("292112B033045"), family="ÉPREUVE-NORD",
                        given="Marie-Ève", all_given="Marie-Ève Colomba", birth_date="19921103",
                        sex="F", birthplace_cog="2B033", birthplace_city="Bastia")
NIA = AdtPatient(ipp="IPP004715", ins=with_key("1910599123456"), ins_oid=INS_NIA_OID,
                 family="ESSAI-NIA", given="Jörg", all_given="Jörg", birth_date="19910520",
                 sex="M", birthplace_cog="99109", birthplace_city="")
NO_INS = AdtPatient(ipp="IPP004716", ins="", family="SANSINS", given="Noé", all_given="",
                    reliability="PROV", birthplace_cog="", birthplace_city="")
#: the body of PATIENT with a key off by one
WRONG_KEY_INS = PATIENT.ins[:13] + f"{(int(PATIENT.ins[13:]) % 97) + 1:02d}"


@dataclass(frozen=True)
class Doctor:
    rpps: str                       # 11 digits
    family: str
    given: str
    style: str = "IDNPS"            # IDNPS: XCN.1 = 8+RPPS; RPPS: raw number; LOCAL: hospital code


DR_MARTIN = Doctor("10000023084", "MARTIN", "Sophie")
DR_LEFEVRE = Doctor("01234567897", "LEFÈVRE", "Étienne", style="RPPS")
DR_DURAND = Doctor("12345678903", "DURAND", "Chloé")
DR_BADKEY = Doctor("12345678901", "FAUXCLE", "Luc")          # Luhn fails
DR_LOCAL = Doctor("MED0042", "INTERNE", "Paul", style="LOCAL")


def xcn(doctor: Doctor | None, *, rol: bool = False) -> str:
    if doctor is None:
        return ""
    if doctor.style == "LOCAL":
        return f"{doctor.rpps}^{doctor.family}^{doctor.given}^^^^^^CHU-TEST&{IPP_OID}&ISO^L^^^EI"
    ident = "8" + doctor.rpps if doctor.style == "IDNPS" else doctor.rpps
    kind = "L" if rol else "D"
    return (f"{ident}^{doctor.family}^{doctor.given}^^^^^^ASIP-SANTE-PS&{RPPS_OID}&ISO"
            f"^{kind}^^^{doctor.style}")


_ZBE_ACTION = {"A01": "INSERT", "A04": "INSERT", "A03": "INSERT", "A11": "CANCEL", "A13": "CANCEL"}
_ORIGINAL = {"A11": "A01", "A13": "A03"}
_STRUCTURE = {"A01": "ADT_A01", "A04": "ADT_A01", "A08": "ADT_A01", "A03": "ADT_A03",
              "A11": "ADT_A09", "A13": "ADT_A01", "A28": "ADT_A05", "A31": "ADT_A05"}
_PATIENT_LEVEL = ("A28", "A31")


def zfa(status: str = "ACTIF", feeding: str = "INO", consultation: str = "IC",
        date: str = "20240310083000") -> str:
    """A PAM-FR ZFA segment: ZFA-1 DMP status, ZFA-9 feeding, ZFA-11 consultation, each with its date.

    Laid out after PAM-FR 2.11.1 (ZFA-3 to ZFA-8 left empty, as in the Ségur samples).
    """
    return f"ZFA|{status}|{date}|||||||{feeding}|{date}|{consultation}|{date}"


def make_adt(trigger: str, *, patient: AdtPatient = PATIENT, control_id: str = "ADT0001",
             encounter: str = "V2024000123", patient_class: str = "I", unit: str = "CARDIO",
             admit_time: str = "20240310083000", discharge_time: str | None = None,
             disposition: str = "8", destination: str = "",
             attending: Doctor | None = DR_MARTIN, referring: Doctor | None = DR_LEFEVRE,
             admitting: Doctor | None = DR_MARTIN,
             medecin_traitant: Doctor | None = DR_DURAND, medecin_traitant_in: str = "ROL",
             movement_id: str = "MVT0001", uf: str = "2101", uf_name: str = "Cardiologie",
             zbe_action: str | None = None, zbe_shifted: bool = False, insi: bool = False,
             zfa: str | None = None, replace: Mapping[str, str | None] | None = None) -> str:
    """An ADT^<trigger> message as ``\\r``-separated text; see the module docstring.

    ``discharge_time`` defaults to a time on A03/A13 and to empty otherwise;
    disposition and destination are written on A03/A13 only. A28/A31 are
    patient-level: PV1 is the pseudo-visit ``PV1|1|N`` and PID-18 is empty.
    ``zfa`` is a whole ZFA line (see :func:`zfa`), written last. ``replace``
    maps a segment id to a whole new line, or to None to drop that segment.
    """
    discharging = trigger in ("A03", "A13")
    if discharge_time is None:
        discharge_time = "20240315141500" if discharging else ""
    msh = (f"MSH|^~\\&|GAM-TEST|CHU-TEST|LIAISON|CHU-TEST|20240315141600||ADT^{trigger}^"
           f"{_STRUCTURE.get(trigger, 'ADT_A01')}|{control_id}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR"
           f"||2.11^IHE_FRANCE-2.11-PAM")
    evn = f"EVN||20240315141600||||{discharge_time or admit_time}"
    pid = pid_segment(patient, encounter)
    pv1_fields = [""] * 46
    pv1_fields[1] = "1"
    pv1_fields[2] = patient_class
    pv1_fields[3] = f"{unit}^^^CHU-TEST&{FINESS}&M"
    pv1_fields[7] = xcn(attending)
    pv1_fields[8] = xcn(referring)
    pv1_fields[17] = xcn(admitting)
    pv1_fields[19] = f"{encounter}^^^CHU-TEST&{FINESS}&M^VN"
    if discharging:
        pv1_fields[36] = disposition
        pv1_fields[37] = destination
    pv1_fields[44] = admit_time
    pv1_fields[45] = discharge_time
    pv1 = "PV1|" + "|".join(pv1_fields[1:])
    if trigger in _PATIENT_LEVEL:
        pid, pv1 = pid_segment(patient, ""), "PV1|1|N"
    segments = [msh, evn, pid]
    if medecin_traitant is not None and medecin_traitant_in == "PD1":
        segments.append(f"PD1||||{xcn(medecin_traitant)}")
    segments.append(pv1)
    if medecin_traitant is not None and medecin_traitant_in == "ROL":
        segments.append(f"ROL||UC|ODRP^Médecin traitant^IHEFR|{xcn(medecin_traitant, rol=True)}")
    if trigger in _ZBE_ACTION:
        action = zbe_action or _ZBE_ACTION[trigger]
        ufs = f"{uf_name}^^^^^CHU-TEST&{FINESS}&M^UF^^^{uf}"
        start = discharge_time if trigger == "A03" else admit_time
        if zbe_shifted:
            segments.append(f"ZBE|{movement_id}^CHU-TEST^{FINESS}|{start}|{start}||{action}|N|"
                            f"{_ORIGINAL.get(trigger, '')}|{ufs}||HMS")
        else:
            segments.append(f"ZBE|{movement_id}^CHU-TEST^{FINESS}|{start}||{action}|N|"
                            f"{_ORIGINAL.get(trigger, '')}|{ufs}|{ufs}|HMS")
    if insi:
        segments.append("ZFD|||N|N|INSI|20240310")
    if zfa is not None:
        segments.append(zfa)
    return apply_replacements(segments, replace or {}) + "\r"


def pid_segment(patient: AdtPatient, encounter: str) -> str:
    """PID with the IPP, the INS (when the patient has one), birth traits, BDL birthplace and PID-32."""
    ids = f"{patient.ipp}^^^CHU-TEST&{IPP_OID}&ISO^PI"
    if patient.ins:
        ids += f"~{patient.ins}^^^ASIP-SANTE-INS-NIR&{patient.ins_oid}&ISO^INS^^20200101"
    names = f"{patient.family}^{patient.given}^{patient.all_given}^^^^L"
    if patient.used_family:
        names += f"~{patient.used_family}^{patient.given}^^^^^D"
    addresses = "12 rue des Essais^^Lyon^^69003^FRA^H"
    if patient.birthplace_cog or patient.birthplace_city:
        addresses += f"~^^{patient.birthplace_city}^^^^BDL^^{patient.birthplace_cog}"
    return (f"PID|1||{ids}||{names}||{patient.birth_date}|{patient.sex}|||{addresses}"
            f"|||||||{encounter}^^^CHU-TEST&{FINESS}&M^AN||||||||||||||{patient.reliability}")


def apply_replacements(segments: list[str], replace: Mapping[str, str | None]) -> str:
    """Join segments with ``\\r``, replacing a segment by id with a new line, or dropping it (None)."""
    out = []
    for line in segments:
        seg_id = line[:3]
        if seg_id in replace:
            if replace[seg_id] is None:
                continue
            line = replace[seg_id]
        out.append(line)
    return "\r".join(out)
