"""The messages ``bench/e2e.py`` sends: the PFI mix, built with the shared test builders (fictitious data).

45 % ADT (A01, A03, A08 in turn, each on a stay of its own so each is recorded whatever the order the
workers take them in), 45 % PFI ORU^R01 carrying the CR-BIO sample CDA, 10 % PFI MDM^T02 carrying an
LDL-SES rendered once from an MDM with a PDF of ``pdf_kb`` KB (each copy gets its own document id).
Every document goes to two PS mailboxes with ACK_RECEPTION=Y (a ZAM^Z02 per recipient); DESTDMP=N.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from fpdf import FPDF

from channels.testing.adt_messages import make_adt
from channels.testing.mdm_messages import make_mdm
from channels.testing.messages import (DR_LEROY, DR_MARTIN, Patient, encode_message, make_cda, make_pfi_mdm,
                                       make_pfi_oru)
from mappings.cda_header import read_header
from mappings.ldl_ses import letter_narrative, render_ldl_ses
from mappings.site import Site
from router.adt import read_patient_visit
from router.mdm import read_mdm

RECIPIENTS = (DR_MARTIN, DR_LEROY)
ADDRESSES = tuple(r.address for r in RECIPIENTS)
LETTER_TYPE = ("11490-0", "Lettre de liaison a la sortie", "LN")
ADT_TRIGGERS = ("A01", "A03", "A08")
_MARKER = "E2EMDMDOCUMENTID"
_KB_PER_PAGE = 7.8                  # one page of big_pdf, uncompressed


@dataclass(frozen=True)
class Document:
    kind: str                          # ADT, ORU, MDM
    control_id: str                    # MSH-10
    raw: bytes                         # the HL7 message as sent
    recipients: tuple[str, ...] = ()   # mailboxes a ZAM^Z02 is expected for (none for an ADT)
    encounter: str = ""                # an ADT's stay


def pfi_mix(count: int, prefix: str, *, pdf_kb: int = 200, seed: int = 16) -> list[Document]:
    """``count`` messages of the 45/45/10 mix in a shuffled but reproducible order."""
    kinds = ["ADT"] * 9 + ["ORU"] * 9 + ["MDM"] * 2
    order = [kinds[i % 20] for i in range(count)]
    random.Random(seed).shuffle(order)
    documents = []
    for i, kind in enumerate(order):
        control_id = f"{prefix}{kind[0]}{i:05d}"
        if kind == "ADT":
            encounter = f"{prefix}S{i:05d}"
            text = make_adt(ADT_TRIGGERS[i % 3], control_id=control_id, encounter=encounter,
                            movement_id=f"MVT{prefix}{i:05d}")
            documents.append(Document(kind, control_id, encode_message(text), encounter=encounter))
        elif kind == "ORU":
            cda = make_cda(document_extension=f"{control_id}-CRBIO")
            text = make_pfi_oru(cda, control_id=control_id, recipients=list(RECIPIENTS))
            documents.append(Document(kind, control_id, encode_message(text), ADDRESSES))
        else:
            template, patient = letter_template(pdf_kb)
            extension = f"{control_id}-LDL"
            cda = template.replace(_MARKER.encode(), extension.encode())
            root = read_header(cda).document_id.split("^")[0]
            text = make_pfi_mdm(cda, control_id=control_id, recipients=list(RECIPIENTS), patient=patient,
                                document_type=LETTER_TYPE, txa_document_id=f"{extension}^^{root}^ISO")
            documents.append(Document(kind, control_id, encode_message(text), ADDRESSES))
    return documents


@lru_cache(maxsize=4)
def letter_template(pdf_kb: int) -> tuple[bytes, Patient]:
    """An LDL-SES carrying a PDF of about ``pdf_kb`` KB, its document id a marker to replace."""
    when = datetime(2024, 3, 15, 16, 30, tzinfo=timezone(timedelta(hours=1)))
    text = make_mdm(unique_id=_MARKER, pdf=big_pdf(pdf_kb))
    mdm, visit = read_mdm(text), read_patient_visit(text)
    cda = render_ldl_ses(visit, letter_pdf=mdm.pdf, narrative=letter_narrative(mdm.narrative),
                         document_id=mdm.unique_id, set_id=mdm.unique_id, author=mdm.author, site=Site(),
                         effective_time=when)
    return cda, Patient.of_cda(cda)


def big_pdf(kb: int) -> bytes:
    """A real PDF (fpdf2) of about ``kb`` KB: pages of pseudo-random figures, uncompressed."""
    rng = random.Random(kb)
    pdf = FPDF()
    pdf.set_compression(False)
    pdf.set_font("Helvetica", size=8)
    for _ in range(max(1, round(kb / _KB_PER_PAGE))):
        pdf.add_page()
        for _ in range(60):
            pdf.cell(text=" ".join(f"{rng.randrange(10**6):06d}" for _ in range(14)))
            pdf.ln()
    return bytes(pdf.output())
