"""Render a lettre de liaison à la sortie (CI-SIS LDL-SES 2022.01) from a discharge event.

Render mode gets an ADT^A03 (:class:`~router.adt.AdtEvent`) and, usually, the
letter itself as a PDF. :func:`render_ldl_ses` writes the French header
(structuration minimale) and the four mandatory sections: status (GEN-065),
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
from datetime import datetime

from lxml import etree

from mappings.site import FACILITY_TYPE_SYSTEM, FINESS_OID, PRACTICE_SETTING_SYSTEM, Site
from router.adt import AdtEvent
from router.errors import MappingError
from router.identity import RPPS_OID
from router.model import Participant

HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
LOINC = "2.16.840.1.113883.6.1"
SNOMED = "2.16.840.1.113883.6.96"
TA_ASIP = "1.2.250.1.213.1.1.4.322"
TEMPLATE_ID = "1.2.250.1.213.1.1.1.29"
DOCUMENT_CODE = ("11490-0", "Lettre de liaison à la sortie d'un établissement de soins")
TITLE = "Lettre de liaison à la sortie"
#: narrative keys → the section they fill.
NARRATIVE_KEYS = ("reason", "synthesis", "discharge_medications")
ATTACHED = "Voir le document joint (lettre de liaison au format PDF)."
NOT_GIVEN = "Non renseigné par le système source : voir la lettre de liaison transmise."

#: PV1-36 (PMSI mode de sortie) → ORG-074 value, every code from JDV_ModaliteSortie_CISIS
#: (1.2.250.1.213.1.1.5.74). Décès (9) has no code in that JDV (419620001 is only in the
#: broader JDV_ModeSortie_CISIS), so it falls to "autre destination" like any unknown mode.
DISCHARGE_MODES: dict[str, tuple[str, str, str]] = {
    "8": ("160849004", SNOMED, "retour au domicile"),
    "7": ("GEN-092.06.01", TA_ASIP, "Autre établissement de santé"),
    "6": ("GEN-092.06.01", TA_ASIP, "Autre établissement de santé"),
}
OTHER_DESTINATION = ("GEN-092.06.03", TA_ASIP, "Autre destination")
#: The letter is final when rendered: JDV_StatutDoc_CISIS "réalisé".
DOCUMENT_STATUS = ("398166005", SNOMED, "réalisé")
_GENDERS = {"F": ("F", "Féminin"), "M": ("M", "Masculin")}


def discharge_mode(disposition: str) -> tuple[str, str, str]:
    """(code, codeSystem, displayName) of the ORG-074 entry for a PV1-36 value."""
    return DISCHARGE_MODES.get(disposition.strip(), OTHER_DESTINATION)


def render_ldl_ses(adt: AdtEvent, *, letter_pdf: bytes | None, narrative: dict[str, str] | None,
                   document_id: str, set_id: str, version: int = 1, parent_document_id: str = "",
                   author: Participant, site: Site, effective_time: datetime) -> bytes:
    """The LDL-SES CDA (UTF-8 bytes) of a discharge.

    ``document_id`` and ``set_id`` are extensions under the site's roots;
    ``parent_document_id`` is the replaced document as :class:`~router.model.CdaHeader`
    writes ids (``root^extension``; a bare value is an extension under the site's
    document root). Raises :class:`MappingError` when a mandatory fact is missing.
    """
    if not document_id or not set_id or version < 1:
        raise MappingError("LDL-SES needs a document id, a set id and a version >= 1")
    if not author.identifier:
        raise MappingError("LDL-SES needs an author with an IdNat_PS (8+RPPS)")
    if not (adt.ipp or adt.ins):
        raise MappingError("LDL-SES needs a patient identifier (IPP or INS)")
    texts = {key: (narrative or {}).get(key, "").strip() for key in NARRATIVE_KEYS}
    now = effective_time.strftime("%Y%m%d%H%M%S%z")
    ids = _Ids(document_id)
    doc = etree.Element(f"{{{HL7}}}ClinicalDocument", nsmap={None: HL7, "xsi": XSI})
    _el(doc, "realmCode", code="FR")
    _el(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    _el(doc, "templateId", root="2.16.840.1.113883.2.8.2.1")
    _el(doc, "templateId", root="1.2.250.1.213.1.1.1.1")
    _el(doc, "templateId", root=TEMPLATE_ID, extension="2022.01")
    _el(doc, "id", root=site.document_id_root, extension=document_id)
    _el(doc, "code", code=DOCUMENT_CODE[0], codeSystem=LOINC, codeSystemName="LOINC", displayName=DOCUMENT_CODE[1])
    _el(doc, "title", text=f"{TITLE} - {site.name}")
    _el(doc, "effectiveTime", value=now)
    _el(doc, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25", displayName="Normal")
    _el(doc, "languageCode", code="fr-FR")
    _el(doc, "setId", root=site.set_id_root, extension=set_id)
    _el(doc, "versionNumber", value=str(version))
    _record_target(doc, adt, site)
    author_el = _el(doc, "author")
    _el(author_el, "time", value=now)
    _person(_el(author_el, "assignedAuthor", classCode="ASSIGNED"), author, "assignedPerson", site)
    _custodian(doc, site)
    legal = _el(doc, "legalAuthenticator")
    _el(legal, "time", value=now)
    _el(legal, "signatureCode", code="S")
    _person(_el(legal, "assignedEntity"), author, "assignedPerson", site)
    if adt.medecin_traitant is not None and adt.medecin_traitant.identifier:
        part = _el(doc, "participant", typeCode="INF")
        _el(part, "functionCode", code="PCP", codeSystem="2.16.840.1.113883.5.88", displayName="Médecin traitant")
        _el(part, "time", nullFlavor="NA")
        _person(_el(part, "associatedEntity", classCode="PROV"), adt.medecin_traitant, "associatedPerson", None)
    start, stop = adt.admit_time, adt.discharge_time
    event = _el(_el(doc, "documentationOf"), "serviceEvent", classCode="ACT", moodCode="EVN")
    _el(event, "code", code="IMP", codeSystem="2.16.840.1.113883.5.4",
        displayName="Hospitalisation (établissement, y compris HAD)")
    _interval(event, start, stop)
    performer = _el(_el(event, "performer", typeCode="PRF"), "assignedEntity")
    _person(performer, adt.attending or author, "assignedPerson", None)
    org = _el(performer, "representedOrganization")
    _el(org, "name", text=site.name)
    _el(org, "standardIndustryClassCode", code=site.practice_setting_code, codeSystem=PRACTICE_SETTING_SYSTEM,
        displayName=site.practice_setting_display)
    if parent_document_id:
        root, _, ext = parent_document_id.partition("^")
        if not ext:
            root, ext = site.document_id_root, parent_document_id
        parent = _el(_el(doc, "relatedDocument", typeCode="RPLC"), "parentDocument")
        _el(parent, "id", root=root, extension=ext)
    encounter = _el(_el(doc, "componentOf"), "encompassingEncounter")
    if adt.encounter:
        _el(encounter, "id", root=site.encounter_root, extension=adt.encounter)
    _interval(encounter, start, stop)
    _el(_el(_el(encounter, "location"), "healthCareFacility"), "code", code=site.facility_type_code,
        codeSystem=FACILITY_TYPE_SYSTEM, displayName=site.facility_type_display)
    body = _el(_el(doc, "component"), "structuredBody")
    fallback = ATTACHED if letter_pdf else NOT_GIVEN
    _status_section(body, ids, now[:8])
    _section(body, ids, ("1.3.6.1.4.1.19376.1.5.3.1.3.1", "1.2.250.1.213.1.1.2.127"),
             ("42349-1", "Raison de la recommandation"), "Motif de l'hospitalisation", texts["reason"] or fallback)
    _synthesis_section(body, ids, adt, texts["synthesis"] or fallback, (stop or now)[:8])
    _section(body, ids, ("1.3.6.1.4.1.19376.1.5.3.1.3.22", "1.2.250.1.213.1.1.2.146"),
             ("10183-2", "Traitements à la sortie"), "Traitements à la sortie",
             texts["discharge_medications"] or fallback)
    if letter_pdf:
        _pdf_section(body, ids, letter_pdf)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# --- header parts ----------------------------------------------------------------------------

def _record_target(doc, adt: AdtEvent, site: Site) -> None:
    role = _el(_el(doc, "recordTarget"), "patientRole")
    ins = adt.ins
    if ins is not None:
        _el(role, "id", root=ins.oid, extension=ins.matricule)
    if adt.ipp:
        _el(role, "id", root=site.ipp_root, extension=adt.ipp)
    patient = _el(role, "patient", classCode="PSN")
    name = _el(patient, "name")
    if ins is not None and ins.birth_name:
        _el(name, "family", text=ins.birth_name, qualifier="BR")
        if ins.given_names:
            _el(name, "given", text=ins.given_names)
        if ins.first_given:
            _el(name, "given", text=ins.first_given, qualifier="BR")
    else:
        _el(name, "family", text=adt.family or "Inconnu")
        if adt.given:
            _el(name, "given", text=adt.given)
    code, display = _GENDERS.get(ins.sex if ins is not None else "", ("UN", "Inconnu"))
    _el(patient, "administrativeGenderCode", code=code, codeSystem="2.16.840.1.113883.5.1", displayName=display)
    birth = {"value": ins.birth_date} if ins is not None and ins.birth_date else {"nullFlavor": "UNK"}
    _el(patient, "birthTime", **birth)
    if ins is not None and ins.birthplace_cog:
        addr = _el(_el(_el(patient, "birthplace"), "place"), "addr")
        _el(addr, "county", text=ins.birthplace_cog)
        if ins.birthplace_city:
            _el(addr, "city", text=ins.birthplace_city)


def _person(entity, who: Participant, person_tag: str, site: Site | None) -> None:
    """id (IdNat_PS), person name and, with a site, the represented organisation."""
    if who.identifier:
        _el(entity, "id", root=RPPS_OID, extension=who.identifier)
    else:
        _el(entity, "id", nullFlavor="UNK")
    name = _el(_el(entity, person_tag), "name")
    if who.given:
        _el(name, "given", text=who.given)
    _el(name, "family", text=who.family or "Inconnu")
    if site is not None:
        org = _el(entity, "representedOrganization")
        _el(org, "id", root=FINESS_OID, extension=site.idnat_struct)
        _el(org, "name", text=site.name)


def _custodian(doc, site: Site) -> None:
    org = _el(_el(_el(doc, "custodian", typeCode="CST"), "assignedCustodian"), "representedCustodianOrganization")
    _el(org, "id", root=FINESS_OID, extension=site.idnat_struct)
    _el(org, "name", text=site.name)
    if site.telecom:
        _el(org, "telecom", value=site.telecom, use="WP")
    addr = _el(org, "addr")
    if site.house_number:
        _el(addr, "houseNumber", text=site.house_number)
    _el(addr, "streetName", text=site.street_name)
    _el(addr, "postalCode", text=site.postal_code)
    _el(addr, "city", text=site.city)


def _interval(parent, start: str, stop: str) -> None:
    times = _el(parent, "effectiveTime")
    _el(times, "low", value=start) if start else _el(times, "low", nullFlavor="UNK")
    _el(times, "high", value=stop) if stop else _el(times, "high", nullFlavor="UNK")


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


def _synthesis_section(body, ids: _Ids, adt: AdtEvent, text: str, day: str) -> None:
    section, narrative = _section(body, ids, ("1.3.6.1.4.1.19376.1.5.3.1.1.21.2.9",
                                              "1.3.6.1.4.1.19376.1.7.3.1.1.13.7",
                                              "1.2.250.1.213.1.1.2.163", "1.2.250.1.213.1.1.2.163.1"),
                                  ("42545-4", "Evènements observés"), "Synthèse médicale du séjour", text)
    mode = discharge_mode(adt.discharge_disposition)
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


def _el(parent, tag: str, text: str | None = None, **attrs: str):
    el = etree.SubElement(parent, f"{{{HL7}}}{tag}", {k: v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el
