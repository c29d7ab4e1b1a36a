"""Render a lettre de liaison à la sortie (CI-SIS LDL-SES 2022.01) from a discharge event.

Render mode gets an ADT^A03 (:class:`~router.adt.AdtEvent`) and, usually, the
letter itself as a PDF. :func:`render_ldl_ses` writes the French header (shared, see
:mod:`mappings.cda_header_fr`) and the four mandatory sections: status (GEN-065),
reason for referral (42349-1), stay synthesis (42545-4, with the ORG-074
discharge-mode entry) and discharge medications (10183-2). The section texts
come from ``narrative`` (keys :data:`NARRATIVE_KEYS`), else say the letter is
attached.

The PDF travels in a **FR-Document-PDF-copie** section (``1.2.250.1.213.1.1.2.243``,
LOINC 55108-5) holding a FR-Document-attache organizer (``1.2.250.1.213.1.1.3.18``):
a type observation (69764-9 → 55108-5) and an ``observationMedia`` with the base64
PDF. It is the richest form the CI-SIS offers: the structured sections the volet
demands *and* the letter as signed (a nonXMLBody would drop the sections); the
LDL-SES volet does not restrict sections and CI-SIS_Modeles_ANS.sch checks it.

Structure modelled on the ANS example ``LDL-SES_2022.01.xml``; ids of sections
and entries are UUIDs derived from the document id, so a render is reproducible.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lxml import etree

from mappings.cda_header_fr import LOINC, XSI, build_header
from mappings.cda_header_fr import el as _el
from mappings.codes import load
from mappings.site import Site
from router.adt import AdtEvent
from router.errors import ValidationError
from router.model import Participant
from router.volets import RenderRequest, Source, Volet

SNOMED = "2.16.840.1.113883.6.96"
TA_ASIP = "1.2.250.1.213.1.1.4.322"
TEMPLATE_ID = "1.2.250.1.213.1.1.1.29"
DOCUMENT_CODE = ("11490-0", "Lettre de liaison à la sortie d'un établissement de soins")
TITLE = "Lettre de liaison à la sortie"
#: narrative keys → the section they fill.
NARRATIVE_KEYS = ("reason", "synthesis", "discharge_medications")
#: The section code (LOINC) of an MDM's TX/FT OBX row → the narrative key it fills.
SECTION_CODES = {"42349-1": "reason", "42545-4": "synthesis", "10183-2": "discharge_medications"}
ATTACHED = "Voir le document joint (lettre de liaison au format PDF)."
NOT_GIVEN = "Non renseigné par le système source : voir la lettre de liaison transmise."

#: The table PV1-36 (PMSI mode de sortie) → ORG-074 value: ``mappings/codes/discharge_modes.json``,
#: every code from JDV_ModaliteSortie_CISIS (1.2.250.1.213.1.1.5.74); a site overrides it through
#: :class:`mappings.tables.Tables`. Décès (9) has no code in that JDV, so it falls to the default.
DISCHARGE_TABLE = "discharge_modes"


def _coded(entry: Mapping[str, str]) -> tuple[str, str, str]:
    return entry["code"], entry["system"], entry["display"]


#: The built-in table as (code, codeSystem, displayName) tuples (what a site does not override).
DISCHARGE_MODES: dict[str, tuple[str, str, str]] = {
    mode: _coded(entry) for mode, entry in load(DISCHARGE_TABLE)["by_pv1_36"].items()}
OTHER_DESTINATION = _coded(load(DISCHARGE_TABLE)["default"])
#: The letter is final when rendered: JDV_StatutDoc_CISIS "réalisé".
DOCUMENT_STATUS = ("398166005", SNOMED, "réalisé")


def discharge_mode(disposition: str, table: Mapping[str, Any] | None = None) -> tuple[str, str, str]:
    """(code, codeSystem, displayName) of the ORG-074 entry for a PV1-36 value.

    ``table`` is the ``discharge_modes`` table in force (``tables.get("discharge_modes")``),
    the built-in one when None.
    """
    table = table if table is not None else load(DISCHARGE_TABLE)
    return _coded(table["by_pv1_36"].get((disposition or "").strip(), table["default"]))


def render_ldl_ses(adt: AdtEvent, *, letter_pdf: bytes | None, narrative: dict[str, str] | None,
                   document_id: str, set_id: str, version: int = 1, parent_document_id: str = "",
                   author: Participant, site: Site, effective_time: datetime, tables: Any = None) -> bytes:
    """The LDL-SES CDA (UTF-8 bytes) of a discharge.

    ``document_id`` and ``set_id`` are extensions under the site's roots;
    ``parent_document_id`` is the replaced document as :class:`~router.model.CdaHeader`
    writes ids (``root^extension``; a bare value is an extension under the site's
    document root). ``tables`` is the :class:`~mappings.tables.Tables` in force (anything
    with ``get(name)``), the built-in tables when None. Raises :class:`~router.errors.MappingError` when a mandatory fact is missing.
    """
    doc = build_header(adt, template_ids=((TEMPLATE_ID, "2022.01"),), code=DOCUMENT_CODE,
                       title=f"{TITLE} - {site.name}", document_id=document_id, set_id=set_id, version=version,
                       parent_document_id=parent_document_id, author=author, site=site,
                       effective_time=effective_time, label="LDL-SES")
    texts = {key: (narrative or {}).get(key, "").strip() for key in NARRATIVE_KEYS}
    now = effective_time.strftime("%Y%m%d%H%M%S%z")
    ids = _Ids(document_id)
    body = _el(_el(doc, "component"), "structuredBody")
    fallback = ATTACHED if letter_pdf else NOT_GIVEN
    _status_section(body, ids, now[:8])
    _section(body, ids, ("1.3.6.1.4.1.19376.1.5.3.1.3.1", "1.2.250.1.213.1.1.2.127"),
             ("42349-1", "Raison de la recommandation"), "Motif de l'hospitalisation", texts["reason"] or fallback)
    modes = tables.get(DISCHARGE_TABLE) if tables is not None else None
    _synthesis_section(body, ids, adt, texts["synthesis"] or fallback, (adt.discharge_time or now)[:8], modes)
    _section(body, ids, ("1.3.6.1.4.1.19376.1.5.3.1.3.22", "1.2.250.1.213.1.1.2.146"),
             ("10183-2", "Traitements à la sortie"), "Traitements à la sortie",
             texts["discharge_medications"] or fallback)
    if letter_pdf:
        _pdf_section(body, ids, letter_pdf)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# --- body ------------------------------------------------------------------------------------

class _Ids:
    """Reproducible UUIDs for sections and entries, derived from the document id."""

    def __init__(self, document_id: str):
        self._base = uuid.uuid5(uuid.NAMESPACE_URL, f"liaison:ldl-ses:{document_id}")
        self._count = 0

    def next(self) -> str:
        self._count += 1
        return str(uuid.uuid5(self._base, str(self._count))).upper()


def _section(body, ids: _Ids, templates: tuple[str, ...], code: tuple[str, str], title: str, text: str):
    section = _el(_el(body, "component"), "section")
    for root in templates:
        _el(section, "templateId", root=root)
    _el(section, "id", root=ids.next())
    _el(section, "code", code=code[0], codeSystem=LOINC, codeSystemName="LOINC", displayName=code[1])
    _el(section, "title", text=title)
    narrative = _el(section, "text")
    for paragraph in [p.strip() for p in text.splitlines() if p.strip()] or [text]:
        _el(narrative, "paragraph", text=paragraph)
    return section, narrative


def _observation(parent, ids: _Ids, templates: tuple[str, ...], code: tuple[str, str, str], ref: str,
                 day: str, value: tuple[str, str, str]) -> None:
    """A FR-Simple-Observation (code, text reference, completed, effectiveTime, CD value)."""
    obs = _el(parent, "observation", classCode="OBS", moodCode="EVN")
    for root in ("1.3.6.1.4.1.19376.1.5.3.1.4.13", "1.2.250.1.213.1.1.3.48", *templates):
        _el(obs, "templateId", root=root)
    _el(obs, "id", root=ids.next())
    _el(obs, "code", code=code[0], codeSystem=code[1], displayName=code[2])
    _el(_el(obs, "text"), "reference", value=f"#{ref}")
    _el(obs, "statusCode", code="completed")
    _el(obs, "effectiveTime", value=day) if day else _el(obs, "effectiveTime", nullFlavor="NA")
    _el(obs, "value", code=value[0], codeSystem=value[1], displayName=value[2]).set(f"{{{XSI}}}type", "CD")


def _status_section(body, ids: _Ids, day: str) -> None:
    section, narrative = _section(body, ids, ("1.2.250.1.213.1.1.2.35", "1.2.250.1.213.1.1.2.35.1"),
                                  ("33557-0", "Etat d'achèvement"), "Statut du document", "")
    narrative.clear()
    _el(_el(narrative, "paragraph"), "content", text=f"Document {DOCUMENT_STATUS[2]}", ID="statut-document")
    _observation(_el(section, "entry"), ids, ("1.2.250.1.213.1.1.3.48.16", "1.2.250.1.213.1.1.3.48.16.1"),
                 ("GEN-065", TA_ASIP, "Statut du document"), "statut-document", day, DOCUMENT_STATUS)


def _synthesis_section(body, ids: _Ids, adt: AdtEvent, text: str, day: str,
                       modes: Mapping[str, Any] | None) -> None:
    section, narrative = _section(body, ids, ("1.3.6.1.4.1.19376.1.5.3.1.1.21.2.9",
                                              "1.3.6.1.4.1.19376.1.7.3.1.1.13.7",
                                              "1.2.250.1.213.1.1.2.163", "1.2.250.1.213.1.1.2.163.1"),
                                  ("42545-4", "Evènements observés"), "Synthèse médicale du séjour", text)
    mode = discharge_mode(adt.discharge_disposition, modes)
    _el(_el(narrative, "paragraph", text="Modalité de sortie : "), "content", text=mode[2], ID="modalite-sortie")
    _observation(_el(section, "entry"), ids, ("1.2.250.1.213.1.1.3.48.7",),
                 ("ORG-074", TA_ASIP, "Modalité de sortie"), "modalite-sortie", day, mode)


def _pdf_section(body, ids: _Ids, pdf: bytes) -> None:
    section = _el(_el(body, "component"), "section")
    _el(section, "templateId", root="1.2.250.1.213.1.1.2.243")
    _el(section, "id", root=ids.next())
    _el(section, "code", code="55108-5", codeSystem=LOINC, codeSystemName="LOINC", displayName="Copie du document")
    _el(section, "title", text="Copie du document")
    _el(_el(_el(section, "text"), "paragraph"), "renderMultiMedia", referencedObject="lettre-pdf")
    org = _el(_el(section, "entry"), "organizer", classCode="CLUSTER", moodCode="EVN")
    _el(org, "templateId", root="1.2.250.1.213.1.1.3.18")
    _el(org, "id", root=ids.next())
    _el(org, "code", code="55107-7", codeSystem=LOINC, codeSystemName="LOINC", displayName="Document attaché")
    _el(org, "statusCode", code="completed")
    _observation(_el(org, "component"), ids, ("1.2.250.1.213.1.1.3.48.18",), ("69764-9", LOINC, "Type de document"),
                 "lettre-pdf", "", ("55108-5", LOINC, "Copie du document"))
    media = _el(_el(org, "component"), "observationMedia", classCode="OBS", moodCode="EVN", ID="lettre-pdf")
    _el(media, "value", text=base64.b64encode(pdf).decode("ascii"), mediaType="application/pdf",
        representation="B64")


def letter_narrative(sections: Mapping[str, str]) -> dict[str, str]:
    """The narrative keys this volet fills, from an MDM's section texts (keyed by OBX-3 section code)."""
    return {key: sections[code] for code, key in SECTION_CODES.items() if code in sections}


def _render(request: RenderRequest) -> bytes:
    letter = request.document
    narrative = letter_narrative(letter.narrative) if letter else {}
    if letter is not None and not letter.pdf and not narrative:
        raise ValidationError(f"MDM^{letter.trigger} carries neither a PDF (ED OBX) nor section text (TX/FT OBX "
                              f"coded {', '.join(SECTION_CODES)})", hl7_code="100", hl7_text="Segment sequence error")
    return render_ldl_ses(request.patient, letter_pdf=(letter.pdf if letter else b"") or None,
                          narrative=narrative, document_id=request.document_id,
                          set_id=request.set_id, version=request.version,
                          parent_document_id=request.parent_document_id, author=request.author, site=request.site,
                          effective_time=request.effective_time, tables=request.tables)


#: The lettre de liaison à la sortie: rendered for an MDM whose TXA-2 names a letter.
VOLET = Volet(
    name="LDL-SES 2022.01", source=Source.DOCUMENT, render=_render, template_ids=(TEMPLATE_ID,),
    type_code=DOCUMENT_CODE[0], txa2=frozenset({DOCUMENT_CODE[0], "LDL", "LDL-SES", "LLS"}),
    schematron="CI-SIS_LDL-SES_2022.01.sch", code_tables=(DISCHARGE_TABLE,), stay_letter=True,
)
