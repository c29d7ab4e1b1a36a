"""Our own laboratory ORU^R01 messages with discrete results, fictitious data only.

Built after HL7 v2.5 (ORC/OBR/OBX/NTE/SPM) as a French SIL sends them, never
copied from a real laboratory. Patients and doctors come from
:mod:`channels.testing.adt_messages` (valid INS keys, RPPS with a valid Luhn key)::

    text = make_lab_oru([glycemia()])                                 # one battery
    text = make_lab_oru([cbc(), biochemistry()], patient=CORSICA_2A)  # two chapters
    text = make_lab_oru([biochemistry(status="C")], order_control="RO")
    text = make_lab_oru([...], pdf=b"%PDF-1.4 ...")                  # the lab's own PDF (OBX ED)
    raw = encode_message(make_lab_oru([...], charset="8859/1"))       # bytes in MSH-18's charset

:data:`CORPUS` names at least 16 varied messages (see each entry) used by the
reader, renderer and PDF tests.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from channels.testing.adt_messages import (CORSICA_2A, CORSICA_2B, DR_DURAND, DR_LEFEVRE, DR_MARTIN, FINESS,
                                        INS_DEMO_OID, NIA, NO_INS, PATIENT, AdtPatient, Doctor,
                                        apply_replacements, pid_segment, xcn)

ORDER_OID = "1.2.250.1.999.1.5"          # fictitious placer order number domain
BIOLOGIST = Doctor("10000045673", "BIOLOGISTE", "Anne")
BIOLOGIST_ACCENTS = Doctor("10000098763", "GÉRARD-LŒUVRE", "Hélène")
DEMO = AdtPatient(ipp="IPP004717", ins_oid=INS_DEMO_OID, family="DÉMO-LIAISON", given="Zoé",
                  all_given="Zoé Anaïs")


@dataclass(frozen=True)
class Obx:
    """One OBX; ``code``, ``value`` and ``units`` are written as given (components with ``^``)."""

    value_type: str
    code: str
    value: str
    units: str = ""
    range: str = ""
    flags: str = ""
    status: str = "F"
    sub_id: str = ""
    time: str = "20240312101500+0100"
    validator: Doctor | None = None
    method: str = ""
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Obr:
    """One OBR with its results; ``specimen`` is SPM-4 (None: no SPM, OBR-15 ``source`` may stand in)."""

    code: str
    results: tuple[Obx, ...]
    section: str = "CH"
    collected: str = "20240312081500+0100"
    received: str = "20240312084000+0100"
    specimen: str | None = "BLDV^Sang veineux^HL70487"
    source: str = ""
    validator: Doctor | None = BIOLOGIST
    validated: str = "20240312103000+0100"
    prescriber: Doctor | None = DR_DURAND
    copies: tuple[Doctor, ...] = ()
    comments: tuple[str, ...] = ()
    parent: str = ""                      # OBR-26 (parent result OBX-3^^^OBX-4)
    placer: str = "CMD2024-0042"
    filler: str = "LAB24-1187"


def make_lab_oru(batteries: list[Obr], *, patient: AdtPatient = PATIENT, control_id: str = "LAB0001",
                 order_control: str = "NW", pdf: bytes | None = None, pdf_status: str = "F",
                 charset: str = "UNICODE UTF-8", with_pv1: bool = True,
                 replace_segments: Mapping[str, str | None] | None = None) -> str:
    """An ORU^R01 as ``\\r``-separated text (one ORC per OBR, the PDF OBX after the last battery)."""
    msh = (f"MSH|^~\\&|SIL-TEST|LABO-TEST|LIAISON|CHU-TEST|20240312103500||ORU^R01^ORU_R01|{control_id}|P|2.5"
           f"|||||FRA|{charset}|FR")
    segments = [msh, pid_segment(patient, "V2024000777")]
    if with_pv1:
        segments.append(f"PV1|1|O|LABO^^^CHU-TEST&{FINESS}&M|||||||||||||||||V2024000777^^^CHU-TEST&{FINESS}&M^VN"
                        f"|||||||||||||||||||||||||20240312080000")
    for index, obr in enumerate(batteries, start=1):
        segments += _order(index, obr, order_control)
    if pdf is not None:
        data = base64.b64encode(pdf).decode("ascii")
        segments.append(f"OBX|{_count(batteries) + 1}|ED|11502-2^CR d'examens biologiques^LN||"
                        f"^application^pdf^Base64^{data}||||||{pdf_status}")
    return apply_replacements(segments, replace_segments or {}) + "\r"


def _order(index: int, obr: Obr, order_control: str) -> list[str]:
    orc = (f"ORC|{order_control}|{obr.placer}^SIH-TEST^{ORDER_OID}^ISO|{obr.filler}^SIL-TEST||CM||||"
           f"20240311170000|||{xcn(obr.prescriber)}")
    fields = [""] * 33
    fields[1] = str(index)
    fields[2] = f"{obr.placer}^SIH-TEST^{ORDER_OID}^ISO"
    fields[3] = f"{obr.filler}^SIL-TEST"
    fields[4] = obr.code
    fields[7] = obr.collected
    fields[14] = obr.received
    fields[15] = obr.source
    fields[16] = xcn(obr.prescriber)
    fields[22] = obr.validated
    fields[24] = obr.section
    fields[25] = "F" if all(r.status == "F" for r in obr.results) else obr.results[0].status if obr.results else "F"
    fields[26] = obr.parent
    fields[28] = "~".join(xcn(d) for d in obr.copies)
    if obr.validator is not None:
        v = obr.validator
        fields[32] = (f"8{v.rpps}&{v.family}&{v.given}&&&&&&ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO"
                      f"^{obr.validated}")
    out = [orc, "OBR|" + "|".join(fields[1:])]
    out += [f"NTE|{n}|L|{_esc(c)}" for n, c in enumerate(obr.comments, start=1)]
    if obr.specimen is not None:
        out.append(f"SPM|1|{obr.placer}-S1^{obr.filler}-S1||{obr.specimen}|||||||||||||"
                   f"{obr.collected}|{obr.received}")
    for n, obx in enumerate(obr.results, start=1):
        validator = xcn(obx.validator) if obx.validator is not None else ""
        out.append(f"OBX|{n}|{obx.value_type}|{obx.code}|{obx.sub_id}|{obx.value}|{obx.units}|{obx.range}"
                   f"|{obx.flags}|||{obx.status}|||{obx.time}||{validator}|{obx.method}")
        out += [f"NTE|{k}|L|{_esc(c)}" for k, c in enumerate(obx.comments, start=1)]
    return out


def _count(batteries: list[Obr]) -> int:
    return max((len(b.results) for b in batteries), default=0)


def _esc(text: str) -> str:
    return (text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
            .replace("~", "\\R\\").replace("\n", "\\.br\\"))


# --- batteries ---------------------------------------------------------------------------------

def biochemistry(status: str = "F", **changes) -> Obr:
    """Ionogramme + créatinine: NM with ranges, H and L flags, a normal one (chapter Biochimie)."""
    results = (
        Obx("NM", "2951-2^Sodium [Moles/Volume] Sérum/Plasma^LN", "140", "mmol/l", "136-145", "N", status),
        Obx("NM", "2823-3^Potassium [Moles/Volume] Sérum/Plasma^LN", "3,2", "mmol/l", "3,5-5,1", "L", status),
        Obx("NM", "14682-9^Créatinine [Moles/Volume] Sérum/Plasma^LN", "132", "µmol/l", "45-90", "H", status),
    )
    return replace(Obr("24326-1^Ionogramme et créatinine^LN", results), **changes)


def glycemia_two_units() -> Obr:
    """Glycémie à jeun in mmol/L and g/L, as the ANS example does (one battery, two OBX)."""
    return Obr("GLY^Glycémie à jeun^L", (
        Obx("NM", "40193-5^Glucose à jeun [Moles/Volume] Sérum/Plasma^LN", "4.89", "mmol/L^^UCUM",
            "3.89-6.00", "N"),
        Obx("NM", "1558-6^Glucose à jeun [Masse/Volume] Sérum/Plasma^LN", "0.88", "g/l", "0,70-1,08", "N"),
    ))


def cbc() -> Obr:
    """Numération formule sanguine (Hématologie), units in French spellings mapped to UCUM."""
    return Obr("58410-2^Hémogramme sans plaquettes^LN", (
        Obx("NM", "6690-2^Leucocytes [Nombre/Volume] Sang^LN", "11.8", "giga/l", "4.0-10.0", "H"),
        Obx("NM", "789-8^Érythrocytes [Nombre/Volume] Sang^LN", "4.52", "tera/l", "3.8-5.9"),
        Obx("NM", "718-7^Hémoglobine [Masse/Volume] Sang^LN", "13.1", "g/dl", "12-16", "N"),
        Obx("NM", "4544-3^Hématocrite [Fraction volumique] Sang^LN", "39.5", "%", "37-47"),
        Obx("NM", "787-2^VGM [Volume d'entité] Érythrocytes^LN", "87", "fl", "80-100"),
        Obx("NM", "777-3^Plaquettes [Nombre/Volume] Sang^LN", "95", "10*9/l", "150-400", "LL",
            comments=("Contrôle sur lame : absence d'agrégats.",)),
    ), section="HM", specimen="BLD^Sang total^HL70487")


def urine_culture() -> list[Obr]:
    """ECBU: direct exam, two isolates (sub-ids 1 and 2), an antibiogram as a child OBR of isolate 1."""
    main = Obr("630-4^Bactéries identifiées Urine Culture^LN", (
        Obx("TX", "5778-6^Couleur Urine^LN", "jaune paille"),
        Obx("NM", "30405-5^Leucocytes [Nombre/Volume] Urine^LN", "120000", "/ml", "<10000", "H"),
        Obx("CWE", "11475-1^Micro-organisme identifié^LN", "112283007^Escherichia coli^SCT", sub_id="1"),
        Obx("NM", "51480-2^Bactéries [Nombre/Volume] Urine^LN", "100000", "/ml", sub_id="1.1"),
        Obx("CWE", "11475-1^Micro-organisme identifié^LN", "58800005^Streptococcus^SCT", sub_id="2",
            comments=("Flore commensale probable.",)),
        Obx("NM", "51480-2^Bactéries [Nombre/Volume] Urine^LN", "1000", "/ml", sub_id="2.1"),
    ), section="MB", specimen="UR^Urine^HL70487", comments=("Prélèvement reçu dans les délais.",))
    antibiogram = Obr("18769-0^Antibiogramme^LN", (
        Obx("SN", "20-8^Amoxicilline+clavulanate [Sensibilité] Isolat^LN", ">=^32", "mg/l", flags="R"),
        Obx("SN", "28-1^Ampicilline [Sensibilité] Isolat^LN", "<^0.128", "ug/ml", flags="S"),
        Obx("CWE", "18928-2^Gentamicine [Sensibilité] Isolat^LN", "S^Sensible^HL70078", flags="S"),
    ), section="MB", specimen=None, parent="11475-1^^^1", placer="CMD2024-0042")
    return [main, antibiogram]


def serology_coded() -> Obr:
    """Coded CE results (SNOMED CT) with POS/NEG flags (Sérologie)."""
    return Obr("HEPB^Sérologie hépatite B^L", (
        Obx("CE", "5196-1^Antigène HBs [Présence] Sérum^LN", "260385009^Négatif^SCT", flags="NEG"),
        Obx("CE", "16935-9^Anticorps anti-HBs [Présence] Sérum^LN", "10828004^Positif^SCT", flags="POS"),
    ), section="SR", specimen="SER^Sérum^HL70487")


def myelogram_text() -> Obr:
    """Text-only results: TX with repetitions and FT with a line break (Cytologie)."""
    return Obr("MYELO^Myélogramme^L", (
        Obx("TX", "MYEL-CONC^Conclusion^L", "Moelle riche.~Lignées présentes sans anomalie morphologique."),
        Obx("FT", "MYEL-COMM^Commentaire du biologiste^L",
            "Pas d'excès de blastes (< 5 %).\\.br\\Aspect compatible avec une moelle réactionnelle."),
    ), section="CP", specimen="BON^Moelle osseuse^HL70487")


def tsh_local() -> Obr:
    """TSH under a local code with its LOINC as the alternate triplet; range '< 4', method (OBX-17)."""
    return Obr("TSH^TSH^L", (
        Obx("NM", "TSH^TSH ultrasensible^L^3016-3^Thyréostimuline [Unités/Volume] Sérum/Plasma^LN", "2.1",
            "mUI/l", "0.4-4.0", "N", method="ECLIA^Électrochimiluminescence^L"),
    ), section="CH")


def crp_non_loinc() -> Obr:
    """A result with only a local code (no LOINC anywhere) and a comparator range."""
    return Obr("CRP-B^Protéine C réactive^99LAB", (
        Obx("SN", "CRP^Protéine C réactive^99LAB", "<^1", "mg/l", "< 5", "N"),
    ))


def coagulation() -> Obr:
    """Hémostase (OBR-24 given as the LOINC chapter), INR ratio unit, prothrombin time in seconds."""
    return Obr("34528-0^Bilan de coagulation^LN", (
        Obx("NM", "5902-2^Temps de prothrombine^LN", "13.2", "sec", "11-14"),
        Obx("NM", "6301-6^INR^LN", "1.1", "INR", "0.8-1.2"),
    ), section="18720-3", specimen="PLAS^Plasma^HL70487")


# --- corpus ------------------------------------------------------------------------------------

PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


def _minimal() -> Obr:
    return Obr("2345-7^Glucose [Masse/Volume] Sérum/Plasma^LN", (
        Obx("NM", "2345-7^Glucose [Masse/Volume] Sérum/Plasma^LN", "1.02", "g/l"),
    ), specimen=None, collected="", received="", prescriber=None)


#: name → builder of the message text. Every one renders to a valid CR-BIO.
CORPUS: dict[str, Callable[[], str]] = {
    # NM with ranges, H/L flags, UCUM units mapped from French spellings
    "biochemistry_flags": lambda: make_lab_oru([biochemistry()]),
    # glycemia in mmol/L (OBX-6 already UCUM) and g/L
    "glycemia_two_units": lambda: make_lab_oru([glycemia_two_units()]),
    # hematology CBC battery, an OBX comment, LL flag
    "hematology_cbc": lambda: make_lab_oru([cbc()], control_id="LAB0003"),
    # microbiology: isolates by sub-id, antibiogram as child OBR (OBR-26), SN values, coded S/R
    "microbiology_isolates": lambda: make_lab_oru(urine_culture(), control_id="LAB0004"),
    # text-only TX/FT results
    "text_only": lambda: make_lab_oru([myelogram_text()], control_id="LAB0005"),
    # coded CE results
    "coded_serology": lambda: make_lab_oru([serology_coded()], control_id="LAB0006"),
    # NTE after OBR and after OBX
    "comments": lambda: make_lab_oru([biochemistry(comments=("Sérum légèrement hémolysé.", "Résultats à "
                                                             "contrôler à 48 h."))], control_id="LAB0007"),
    # no specimen, no ranges, no prescriber, no PV1, no order times
    "missing_optional": lambda: make_lab_oru([_minimal()], control_id="LAB0008", with_pv1=False),
    # accents everywhere (UTF-8), a biologist whose name has Œ (outside Latin-1)
    "accents_utf8": lambda: make_lab_oru([biochemistry(validator=BIOLOGIST_ACCENTS, comments=(
        "Œdème signalé ; contrôle à jeun conseillé — « urgent ».",))], patient=CORSICA_2B, control_id="LAB0009"),
    # the same kind of message declared ISO 8859-1 in MSH-18 (Latin-1 characters only)
    "accents_8859_1": lambda: make_lab_oru([biochemistry(comments=("Hémolyse légère, à contrôler.",))],
                                           charset="8859/1", control_id="LAB0010"),
    # Corsican INS 2A / 2B
    "corsica_2a": lambda: make_lab_oru([glycemia_two_units()], patient=CORSICA_2A, control_id="LAB0011"),
    "corsica_2b": lambda: make_lab_oru([cbc()], patient=CORSICA_2B, control_id="LAB0012"),
    # NIA (temporary INS)
    "nia": lambda: make_lab_oru([biochemistry()], patient=NIA, control_id="LAB0013"),
    # INS under the demo OID, local codes with LOINC alternates, a method
    "demo_oid_local_codes": lambda: make_lab_oru([tsh_local(), crp_non_loinc()], patient=DEMO,
                                                 control_id="LAB0014"),
    # the lab's own PDF in an OBX ED, copies to two doctors
    "lab_pdf": lambda: make_lab_oru([biochemistry(copies=(DR_MARTIN, DR_LEFEVRE))], pdf=PDF, control_id="LAB0015"),
    # corrected report (OBX-11 C, ORC-1 RO) → replace
    "corrected": lambda: make_lab_oru([biochemistry(status="C")], order_control="RO", control_id="LAB0016"),
    # cancelled report (OBX-11 D, ORC-1 CA) → delete
    "cancelled": lambda: make_lab_oru([biochemistry(status="D")], order_control="CA", control_id="LAB0017"),
    # four chapters in one report
    "multi_chapter": lambda: make_lab_oru([biochemistry(), cbc(), serology_coded(), coagulation()],
                                          control_id="LAB0018"),
    # preliminary results (OBX-11 P) → serviceEvent and act "active"
    "preliminary": lambda: make_lab_oru([biochemistry(status="P")], control_id="LAB0019"),
    # patient without INS (IPP only), OBR-15 specimen source instead of SPM
    "no_ins_obr15": lambda: make_lab_oru([replace(glycemia_two_units(), specimen=None,
                                                  source="SER^Sérum^HL70487")], patient=NO_INS,
                                         control_id="LAB0020"),
}
