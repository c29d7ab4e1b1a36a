"""Render a non-structured (level-1) CDA around a PDF: the generic form of any other document.

An MDM^T02/T10 whose TXA-2 is not a model Liaison renders in structured form (a
compte rendu opératoire, d'imagerie, de consultation, ...) still has to reach the
recipient as a CI-SIS document: :func:`render_level1` wraps the PDF in the shared
French header (:mod:`mappings.cda_header_fr`) declared as IHE XDS-SD
(``1.3.6.1.4.1.19376.1.2.20``) with a ``nonXMLBody`` whose text is the base64 PDF,
as the ANS example ``DOC_NON_STRUCTURE_CDA-R2-N1.xml`` does. Its formatCode is
therefore ``urn:ihe:iti:xds-sd:pdf:2008`` (ANS table ASS_A12, application/pdf).

:func:`document_type_for` turns TXA-2 into the document's LOINC type code through the
table ``mappings/codes/txa_document_types.json`` (codes of JDV_J07, HL7 table 0270
and local keys, an explicit default); the table in force, with the site's overrides
checked against JDV_J07, is ``tables.get("txa_document_types")`` (:class:`mappings.tables.Tables`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lxml import etree

from mappings.cda_header_fr import build_header, el
from mappings.codes import load
from mappings.site import Site
from router.adt import AdtEvent
from router.errors import MappingError, ValidationError
from router.model import Participant
from router.volets import RenderRequest, Source, Volet

#: IHE XDS-SD (scanned documents), the conformance a level-1 CI-SIS document declares.
XDS_SD_TEMPLATE_ID = "1.3.6.1.4.1.19376.1.2.20"
PDF_MEDIA_TYPE = "application/pdf"
TABLE = "txa_document_types"


def document_type_for(txa2: str, table: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """(LOINC code, displayName) of the document type named by TXA-2.

    TXA-2 may be a bare code or a CWE (``34874-8^CR opératoire^LN``): its first
    component is looked up as a LOINC type of the table, then as a TXA-2 key (case
    ignored); anything else gets the table's default, never an error, so an unknown
    local code still yields a deliverable document.
    """
    table = table if table is not None else load(TABLE)
    types, by_txa2 = table["types"], table["by_txa2"]
    key = (txa2 or "").split("^", 1)[0].strip()
    code = key if key in types else by_txa2.get(key.upper(), table["default"])
    return code, types[code]


def render_level1(adt: AdtEvent, *, pdf: bytes, type_code: tuple[str, str], title: str, document_id: str,
                  set_id: str, version: int = 1, parent_document_id: str = "", author: Participant, site: Site,
                  effective_time: datetime) -> bytes:
    """The level-1 CDA (UTF-8 bytes) carrying ``pdf`` as its whole body.

    ``type_code`` is the LOINC (code, displayName), usually from :func:`document_type_for`;
    ids, version and parent are as for :func:`mappings.cda_header_fr.build_header`.
    Raises :class:`~router.errors.MappingError` when the PDF or a mandatory header fact
    is missing.
    """
    if not pdf:
        raise MappingError("a level-1 CDA needs the PDF it carries")
    doc = build_header(adt, template_ids=((XDS_SD_TEMPLATE_ID, ""),), code=type_code, title=title,
                       document_id=document_id, set_id=set_id, version=version,
                       parent_document_id=parent_document_id, author=author, site=site,
                       effective_time=effective_time, label="level-1 CDA")
    body = el(el(doc, "component"), "nonXMLBody")
    el(body, "text", text=base64.b64encode(pdf).decode("ascii"), mediaType=PDF_MEDIA_TYPE, representation="B64")
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _render(request: RenderRequest) -> bytes:
    document = request.document
    if document is None or not document.pdf:
        raise ValidationError(f"TXA-2 {request.type_key!r} is rendered as a level-1 CDA, which needs the PDF "
                              "(ED OBX)", hl7_code="100", hl7_text="Segment sequence error")
    type_code = document_type_for(document.type_code, (request.tables or {}).get(TABLE))
    return render_level1(request.patient, pdf=document.pdf, type_code=type_code, title=type_code[1],
                         document_id=request.document_id, set_id=request.set_id, version=request.version,
                         parent_document_id=request.parent_document_id, author=request.author, site=request.site,
                         effective_time=request.effective_time)


#: A level-1 CDA (XDS-SD, the PDF as its body): any document type no structured volet claims. Any level-1 CDA,
#: ours or not, declares XDS-SD; its model is the minimal-structure profile, there is no volet schematron.
VOLET = Volet(name="level-1 CDA (XDS-SD)", source=Source.DOCUMENT, render=_render, fallback=True,
              template_ids=(XDS_SD_TEMPLATE_ID,), checked_by_profiles=True, code_tables=(TABLE,))
