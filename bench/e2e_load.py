"""The messages ``bench/e2e.py`` sends: the PFI and render mixes, built with the shared test builders
(fictitious data).

Both mixes: 45 % ADT (A01, A03, A08 in turn, each on a stay of its own so each is recorded whatever the
order the workers take them in), 45 % ORU^R01, 10 % MDM^T02; every document to two PS mailboxes and the
patient's DMP (a ZAM^Z01 each).

- **PFI** (the HIS writes the CDA): the ORU carries the CR-BIO sample CDA, the MDM an LDL-SES rendered once
  from an MDM with a PDF of ``pdf_kb`` KB (each copy gets its own document id); MetaDMPMSS DESTDMP=Y,
  DESTMSSANTEPS=Y, ACK_RECEPTION=Y (a ZAM^Z02 per recipient as well).
- **render** (Liaison writes the CDA): the ORU has discrete results → CR-BIO, half with the lab's PDF,
  half with a PDF copy Liaison draws; the MDM carries the letter as a PDF of ``pdf_kb`` KB → LDL-SES. The
  recipients come from the configured roles (:data:`RENDER_ROLES`) and ``[[correspondents]]``; render mode
  sends no ZAM^Z02, and Liaison assigns the document ids.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from fpdf import FPDF

from channels.testing.adt_messages import DR_DURAND, DR_LEFEVRE, make_adt
from channels.testing.lab_messages import biochemistry, make_lab_oru
from channels.testing.mdm_messages import CORRESPONDENTS, letter_pdf, make_mdm
from channels.testing.messages import (DR_LEROY, DR_MARTIN, Patient, encode_message, make_cda, make_pfi_mdm,
                                       make_pfi_oru)
from mappings.cda_header import read_header
from mappings.ldl_ses import letter_narrative, render_ldl_ses
from mappings.site import Site
from router.adt import read_patient_visit
from router.mdm import read_mdm

RECIPIENTS = (DR_MARTIN, DR_LEROY)
ADDRESSES = tuple(r.address for r in RECIPIENTS)
PFI_FLAGS = {"DESTDMP": "Y", "DESTMSSANTEPS": "Y", "ACK_RECEPTION": "Y"}
#: ``[render]`` roles that send a letter to the médecin traitant and the referring doctor, a lab report to
#: its prescriber and its copy: two PS each (DR_DURAND and DR_LEFEVRE in the builders), no patient mailbox.
RENDER_ROLES = {"letter_roles": ["medecin_traitant", "referring"], "lab_roles": ["prescriber", "copies"]}
RENDER_ADDRESSES = tuple(c["address"] for c in CORRESPONDENTS if c["rpps"] in (DR_DURAND.rpps, DR_LEFEVRE.rpps))
LAB_PDF = letter_pdf("Compte rendu de biologie")   # "the lab's PDF": a small real PDF
MIXES = ("pfi", "render")
LETTER_TYPE = ("11490-0", "Lettre de liaison a la sortie", "LN")
ADT_TRIGGERS = ("A01", "A03", "A08")
_MARKER = "E2EMDMDOCUMENTID"
_KB_PER_PAGE = 7.8                  # one page of big_pdf, uncompressed


@dataclass(frozen=True)
class Document:
    kind: str                          # ADT, ORU, MDM
    control_id: str                    # MSH-10
    raw: bytes                         # the HL7 message as sent
    recipients: tuple[str, ...] = ()   # mailboxes the relay must get it for, once each (none for an ADT)
    encounter: str = ""                # an ADT's stay
    zams: bool = False                 # a ZAM^Z02 per recipient expected (PFI, ACK_RECEPTION=Y)
    dmp: bool = False                  # a DMP deposit and its ZAM^Z01 expected
    unique_id: str = ""                # the uniqueId the DMP must store ("" when Liaison assigns it)


def mix(name: str, count: int, prefix: str, *, pdf_kb: int = 200, seed: int = 16) -> list[Document]:
    """``count`` messages of the 45/45/10 mix ``name`` (pfi or render), shuffled but reproducible."""
    kinds = ["ADT"] * 9 + ["ORU"] * 9 + ["MDM"] * 2
    order = [kinds[i % 20] for i in range(count)]
    random.Random(seed).shuffle(order)
    build = {"pfi": _pfi_document, "render": _render_document}[name]
    documents = []
    for i, kind in enumerate(order):
        control_id = f"{prefix}{kind[0]}{i:05d}"
        if kind == "ADT":
            encounter = f"{prefix}S{i:05d}"
            text = make_adt(ADT_TRIGGERS[i % 3], control_id=control_id, encounter=encounter,
                            movement_id=f"MVT{prefix}{i:05d}")
            documents.append(Document(kind, control_id, encode_message(text), encounter=encounter))
        else:
            documents.append(build(kind, control_id, i, pdf_kb))
    return documents


def pfi_mix(count: int, prefix: str, *, pdf_kb: int = 200, seed: int = 16) -> list[Document]:
    return mix("pfi", count, prefix, pdf_kb=pdf_kb, seed=seed)


def _pfi_document(kind: str, control_id: str, i: int, pdf_kb: int) -> Document:
    if kind == "ORU":
        cda = make_cda(document_extension=f"{control_id}-CRBIO")
        text = make_pfi_oru(cda, control_id=control_id, recipients=list(RECIPIENTS), flags=PFI_FLAGS)
    else:
        template, patient = letter_template(pdf_kb)
        extension = f"{control_id}-LDL"
        cda = template.replace(_MARKER.encode(), extension.encode())
        root = read_header(cda).document_id.split("^")[0]
        text = make_pfi_mdm(cda, control_id=control_id, recipients=list(RECIPIENTS), patient=patient,
                            document_type=LETTER_TYPE, txa_document_id=f"{extension}^^{root}^ISO", flags=PFI_FLAGS)
    return Document(kind, control_id, encode_message(text), ADDRESSES, zams=True, dmp=True,
                    unique_id=read_header(cda).document_id)


def _render_document(kind: str, control_id: str, i: int, pdf_kb: int) -> Document:
    if kind == "ORU":
        battery = biochemistry(copies=(DR_LEFEVRE,), placer=f"{control_id}-P", filler=f"{control_id}-F")
        text = make_lab_oru([battery], control_id=control_id, pdf=LAB_PDF if i % 2 else None)
    else:
        text = make_mdm(control_id=control_id, unique_id=f"{control_id}-LDL", pdf=big_pdf(pdf_kb))
    return Document(kind, control_id, encode_message(text), RENDER_ADDRESSES, dmp=True)


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


@lru_cache(maxsize=4)
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
