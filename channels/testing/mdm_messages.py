"""Our own render-mode MDM test messages (T02/T10/T11 with a PDF letter), fictitious data only.

The patient, visit and doctors come from :mod:`channels.testing.adt_messages` so an
MDM and the ADT of the same stay agree. Every part can be overridden::

    text = make_mdm()                                             # T02 lettre de liaison, PDF + section texts
    text = make_mdm("T10", unique_id="DOC-2", parent_id="DOC-1")  # replacement
    text = make_mdm("T11", unique_id="DOC-1")                     # cancellation (no content)
    text = make_mdm(txa2="CN")                                    # consultation note → level-1 CDA
    text = make_mdm(replace={"TXA": None})                        # drop TXA

``CORRESPONDENTS`` is the ``[[correspondents]]`` configuration that gives the
test doctors an address on the test Postfix's domain.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from collections.abc import Mapping, Sequence
from functools import lru_cache

from fpdf import FPDF

from channels.testing.adt_messages import (
    DR_DURAND, DR_LEFEVRE, DR_MARTIN, FINESS, PATIENT, AdtPatient, Doctor, apply_replacements, pid_segment, xcn,
)

DOMAIN = "hopital-test.mssante.fr"
CORRESPONDENTS = (
    {"rpps": DR_DURAND.rpps, "address": f"chloe.durand@{DOMAIN}", "name": "Dr Chloé DURAND"},
    {"rpps": DR_LEFEVRE.rpps, "address": f"etienne.lefevre@{DOMAIN}", "name": "Dr Étienne LEFÈVRE"},
    {"rpps": DR_MARTIN.rpps, "address": f"sophie.martin@{DOMAIN}", "name": "Dr Sophie MARTIN"},
)
NARRATIVE = {
    "42349-1": "Douleur thoracique aiguë ; bilan coronarien.",
    "42545-4": "Séjour en cardiologie du 10 au 15 mars.~Coronarographie sans lésion significative.",
    "10183-2": "Aspirine 75 mg : 1 cp le matin.~Atorvastatine 20 mg : 1 cp le soir.",
}


@lru_cache(maxsize=8)
def letter_pdf(title: str = "Lettre de liaison") -> bytes:
    """A small real PDF (fpdf2), deterministic for a given title."""
    pdf = FPDF()
    pdf.set_creation_date(datetime(2024, 3, 15, 15, 30, tzinfo=timezone.utc))
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text=title)
    pdf.ln()
    pdf.multi_cell(w=0, text="Patient fictif - document de test Liaison.")
    return bytes(pdf.output())


def make_mdm(trigger: str = "T02", *, patient: AdtPatient = PATIENT, control_id: str = "MDM0001",
             encounter: str = "V2024000123", txa2: str = "11490-0", unique_id: str = "DOC-LDL-0001",
             parent_id: str = "", status: str = "LA", author: Doctor | None = DR_MARTIN,
             author_field: int = 22, copies: Sequence[Doctor] = (), pdf: bytes | None = None,
             with_pdf: bool = True, narrative: Mapping[str, str] | None = None, disposition: str = "8",
             discharge_time: str = "20240315141500", attending: Doctor | None = DR_MARTIN,
             referring: Doctor | None = DR_LEFEVRE, medecin_traitant: Doctor | None = DR_DURAND,
             replace: Mapping[str, str | None] | None = None) -> str:
    """An MDM^<trigger> as ``\\r``-separated text; see the module docstring.

    ``narrative`` maps LOINC section codes to TX OBX texts (``~`` separates lines);
    None gives :data:`NARRATIVE`, ``{}`` none.
    """
    structure = "MDM_T02" if trigger in ("T02", "T10") else "MDM_T01"
    msh = (f"MSH|^~\\&|DPI-TEST|CHU-TEST|LIAISON|CHU-TEST|20240315160000||MDM^{trigger}^{structure}|{control_id}"
           f"|P|2.6|||||FRA|UNICODE UTF-8|FR")
    evn = "EVN||20240315160000"
    pid = pid_segment(patient, encounter)
    pv1 = [""] * 46
    pv1[1], pv1[2], pv1[3] = "1", "I", f"CARDIO^^^CHU-TEST&{FINESS}&M"
    pv1[7], pv1[8] = xcn(attending), xcn(referring)
    pv1[19] = f"{encounter}^^^CHU-TEST&{FINESS}&M^VN"
    pv1[36], pv1[44], pv1[45] = disposition, "20240310083000", discharge_time
    segments = [msh, evn, pid, "PV1|" + "|".join(pv1[1:])]
    if medecin_traitant is not None:
        segments.append(f"ROL||UC|ODRP^Médecin traitant^IHEFR|{xcn(medecin_traitant, rol=True)}")
    txa = [""] * 24
    txa[1], txa[2], txa[3] = "1", txa2, "AP"
    txa[4] = txa[6] = "20240315153000"
    if author is not None:
        txa[author_field] = xcn(author)
    txa[12], txa[13], txa[17] = f"{unique_id}^CHU-TEST", f"{parent_id}^CHU-TEST" if parent_id else "", status
    txa[19] = "AV"
    txa[23] = "~".join(xcn(doctor) for doctor in copies)
    segments.append("TXA|" + "|".join(txa[1:]))
    if trigger != "T11":
        number = 1
        if with_pdf:
            data = base64.b64encode(pdf if pdf is not None else letter_pdf()).decode("ascii")
            segments.append(f"OBX|{number}|ED|{txa2.split('^')[0]}^Document^LN||^AP^PDF^Base64^{data}||||||F")
            number += 1
        for code, text in (NARRATIVE if narrative is None else narrative).items():
            segments.append(f"OBX|{number}|TX|{code}^Section^LN||{text}||||||F")
            number += 1
    return apply_replacements(segments, replace or {}) + "\r"
