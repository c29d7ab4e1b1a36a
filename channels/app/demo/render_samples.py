"""The demo's render-mode messages: plain HIS events from which Liaison writes the CDA itself.

A discharge (ADT^A03) records the stay and starts the lettre de liaison
deadline; the MDM^T02 that follows carries the letter as a PDF and a few
section texts, and Liaison renders the LDL-SES, picks the médecin traitant
and the referring doctor from the message, and finds their mailboxes in the
demo's correspondents. Everything is invented: patient (INS with a valid key
on the test OID), doctors (RPPS with valid Luhn keys), hospital and mailboxes.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from fpdf import FPDF

from channels.app.demo.samples import Sample

RPPS_AUTHORITY = "ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO"
AUTHOR = f"810000543214^BERNARD^Louise^^^^^^{RPPS_AUTHORITY}^D^^^IDNPS"
MEDECIN_TRAITANT = f"810000123454^DURAND^Paul^^^^^^{RPPS_AUTHORITY}^L^^^IDNPS"
REFERRING = f"810000987650^LEFÈVRE^Hélène^^^^^^{RPPS_AUTHORITY}^D^^^IDNPS"
#: the demo's ``[[correspondents]]``: where the doctors the HIS names by RPPS receive mail.
CORRESPONDENTS = (
    {"rpps": "10000123454", "address": "paul.durand@ch-test.mssante.fr", "name": "Dr Paul DURAND"},
    {"rpps": "10000987650", "address": "helene.lefevre@cabinet-test.mssante.fr", "name": "Dr Hélène LEFÈVRE"},
)
PATIENT_IDS = ("IPP70001^^^CH-TEST&1.2.250.1.999.1.1&ISO^PI~"
               "178036912345661^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS")
PATIENT_NAME = "RENDU^Jérôme^Jérôme André^^^^L"
ENCOUNTER = "V70001^^^CH-TEST&1.2.250.1.999.1.2&ISO^VN"


def render_messages(stamp: str, first_number: int = 3) -> list[Sample]:
    """ADT^A03 then MDM^T02 (PDF letter), in sending order; control ids continue the PFI samples'."""
    adt_id, mdm_id = f"DEMO{stamp}{first_number:02d}", f"DEMO{stamp}{first_number + 1:02d}"
    day = stamp[:8]
    pid = (f"PID|1||{PATIENT_IDS}||{PATIENT_NAME}||19780315|M|||3 place Bellecour^^Lyon^^69002^FRA^H~"
           f"^^Lyon^^^^BDL^^69123|||||||V70001^^^CH-TEST&1.2.250.1.999.1.2&ISO^AN||||||||||||||VALI")
    pv1 = ["PV1", "1", "I", "CARDIO^^^CH-TEST", "", "", "", AUTHOR, REFERRING] + [""] * 10 + [ENCOUNTER] + \
        [""] * 16 + ["8", ""] + [""] * 6 + [f"{day}080000", f"{day}110000"]
    rol = f"ROL||UC|ODRP^Médecin traitant^IHEFR|{MEDECIN_TRAITANT}"
    adt = "\r".join([
        f"MSH|^~\\&|GAM-DEMO|CH-TEST|LIAISON|CH-TEST|{stamp}||ADT^A03^ADT_A03|{adt_id}|P|2.5^FRA^2.11|||||FRA|"
        f"UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM",
        f"EVN||{stamp}||||{day}110000", pid, "|".join(pv1), rol]) + "\r"
    pdf = base64.b64encode(letter_pdf()).decode("ascii")
    mdm = "\r".join([
        f"MSH|^~\\&|DPI-DEMO|CH-TEST|LIAISON|CH-TEST|{stamp}||MDM^T02^MDM_T02|{mdm_id}|P|2.6|||||FRA|"
        f"UNICODE UTF-8|FR",
        f"EVN||{stamp}", pid, "|".join(pv1), rol,
        f"TXA|1|11490-0|AP|{stamp}||{stamp}||||||LDL-DEMO-{stamp}^CH-TEST|||||LA||AV|||{AUTHOR}",
        f"OBX|1|ED|11490-0^Lettre de liaison^LN||^AP^PDF^Base64^{pdf}||||||F",
        "OBX|2|TX|42349-1^Motif^LN||Palpitations et malaise ; bilan rythmologique.||||||F",
        "OBX|3|TX|42545-4^Synthèse^LN||Fibrillation atriale paroxystique, réduite.~Échographie normale.||||||F",
        "OBX|4|TX|10183-2^Traitements^LN||Apixaban 5 mg matin et soir.||||||F",
    ]) + "\r"
    addresses = (*(entry["address"] for entry in CORRESPONDENTS), "178036912345661@patient.mssante.fr")
    return [
        Sample("discharge", adt_id, "ADT^A03: the stay ends, the letter is due today", adt.encode("utf-8"),
               "stay recorded, lettre de liaison due", recipients=()),
        Sample("rendered-letter", mdm_id, "MDM^T02 with a PDF: Liaison renders the LDL-SES", mdm.encode("utf-8"),
               "11490-0 LDL-SES rendered by Liaison", recipients=addresses),
    ]


def letter_pdf() -> bytes:
    """A one-page letter (fpdf2, Latin-1 core font), the same bytes on every run."""
    pdf = FPDF()
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=timezone.utc))
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.cell(text="Lettre de liaison à la sortie - CH de Test (démonstration)")
    pdf.ln(12)
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(w=0, text="Patient fictif. Séjour en cardiologie pour fibrillation atriale paroxystique, "
                             "réduite. Traitement de sortie : apixaban 5 mg matin et soir. Document de "
                             "démonstration produit par Liaison, sans valeur médicale.")
    return bytes(pdf.output())
