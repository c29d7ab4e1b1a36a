"""Write the French CDA header (CI-SIS "structuration minimale") of a rendered document.

Every document render mode produces (LDL-SES, level-1 non-structured documents, ...)
starts with the same header: realmCode to componentOf, built from the stay
(:class:`~router.adt.AdtEvent`), the facility (:class:`~mappings.site.Site`) and the
author. :func:`build_header` returns the ClinicalDocument element with that header;
the caller only declares its model (templateIds, LOINC type code, title) and appends
its body. Written once so that every model states the patient, the INS traits, the
custodian and the encounter the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
#: conformance to HL7 France and to the CI-SIS, declared by every French CDA.
FRENCH_TEMPLATE_IDS = ("2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.1")
#: documentationOf/serviceEvent code for a hospital stay (act code IMP).
HOSPITAL_STAY = ("IMP", "2.16.840.1.113883.5.4", "Hospitalisation (établissement, y compris HAD)")
_GENDERS = {"F": ("F", "Féminin"), "M": ("M", "Masculin")}
#: IHE PALM lab extension namespace (``lab:statusCode`` of a CR-BIO serviceEvent).
LAB = "urn:oid:1.3.6.1.4.1.19376.1.3.2"


@dataclass(frozen=True)
class Party:
    """A professional in a header role beyond author and legal authenticator (model-specific roles).

    ``at_site`` writes the site's address and telecom as the person's (the
    laboratory of the establishment) and the site as their organisation, which
    CR-BIO demands of its authenticator, performer and responsible party.
    ``code`` is the profession (code, codeSystem, displayName); where a model
    requires a code and none is known, ``nullFlavor="UNK"`` is written.
    """

    who: Participant
    time: str = ""                      # HL7 TS
    template_id: str = ""
    type_code: str = ""                 # participant/@typeCode (REF, PRF...)
    code: tuple[str, str, str] | None = None
    at_site: bool = False


@dataclass(frozen=True)
class ServiceEvent:
    """One documentationOf/serviceEvent; ``status`` writes ``lab:statusCode`` (IHE PALM)."""

    code: tuple[str, str, str]          # (code, codeSystem, displayName)
    start: str = ""
    stop: str = ""
    status: str = ""
    performer: Party | None = None
    with_time: bool = True              # effectiveTime low/high (UNK when unknown)


def build_header(adt: AdtEvent, *, template_ids: Sequence[tuple[str, str]], code: tuple[str, str], title: str,
                 document_id: str, set_id: str, version: int = 1, parent_document_id: str = "",
                 author: Participant, site: Site, effective_time: datetime,
                 service_event: tuple[str, str, str] = HOSPITAL_STAY, label: str = "CDA",
                 service_events: Sequence[ServiceEvent] | None = None, authenticators: Sequence[Party] = (),
                 participants: Sequence[Party] = (), orders: Sequence[tuple[str, str]] = (),
                 responsible: Party | None = None, recipients: Sequence[Participant] = ()) -> etree._Element:
    """A ClinicalDocument holding the French header, ready for its ``component`` body.

    ``template_ids`` are the model's (root, extension) pairs, written after the French
    ones (an empty extension is left out); ``code`` is the LOINC (code, displayName).
    ``document_id`` and ``set_id`` are extensions under the site's roots;
    ``parent_document_id`` is the replaced document as :class:`~router.model.CdaHeader`
    writes ids (``root^extension``; a bare value is an extension under the site's
    document root). Raises :class:`MappingError`, naming ``label``, when a mandatory
    fact is missing.

    Models with more header roles (CR-BIO) pass them here so the header stays written
    in one place: ``recipients`` (informationRecipient), ``authenticators``,
    ``participants`` (written before the médecin traitant), ``orders``
    (inFulfillmentOf/order/id as (root, extension)), ``service_events`` (replace
    the single hospital-stay event built from ``service_event``) and
    ``responsible`` (encompassingEncounter/responsibleParty).
    """
    if not document_id or not set_id or version < 1:
        raise MappingError(f"{label} needs a document id, a set id and a version >= 1")
    if not author.identifier:
        raise MappingError(f"{label} needs an author with an IdNat_PS (8+RPPS)")
    if not (adt.ipp or adt.ins):
        raise MappingError(f"{label} needs a patient identifier (IPP or INS)")
    now = effective_time.strftime("%Y%m%d%H%M%S%z")
    doc = etree.Element(f"{{{HL7}}}ClinicalDocument", nsmap={None: HL7, "xsi": XSI})
    el(doc, "realmCode", code="FR")
    el(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    for root in FRENCH_TEMPLATE_IDS:
        el(doc, "templateId", root=root)
    for root, extension in template_ids:
        el(doc, "templateId", root=root, **({"extension": extension} if extension else {}))
    el(doc, "id", root=site.document_id_root, extension=document_id)
    el(doc, "code", code=code[0], codeSystem=LOINC, codeSystemName="LOINC", displayName=code[1])
    el(doc, "title", text=title)
    el(doc, "effectiveTime", value=now)
    el(doc, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25", displayName="Normal")
    el(doc, "languageCode", code="fr-FR")
    el(doc, "setId", root=site.set_id_root, extension=set_id)
    el(doc, "versionNumber", value=str(version))
    _record_target(doc, adt, site)
    author_el = el(doc, "author")
    el(author_el, "time", value=now)
    _person(el(author_el, "assignedAuthor", classCode="ASSIGNED"), author, "assignedPerson", site)
    _custodian(doc, site)
    for recipient in recipients:
        intended = el(el(doc, "informationRecipient", typeCode="PRCP"), "intendedRecipient")
        _person(intended, recipient, "informationRecipient", None)
    legal = el(doc, "legalAuthenticator")
    el(legal, "time", value=now)
    el(legal, "signatureCode", code="S")
    _person(el(legal, "assignedEntity"), author, "assignedPerson", site)
    for party in authenticators:
        auth = el(doc, "authenticator")
        if party.template_id:
            el(auth, "templateId", root=party.template_id)
        el(auth, "time", value=party.time or now)
        el(auth, "signatureCode", code="S")
        _party(el(auth, "assignedEntity"), party, "assignedPerson", site)
    for party in participants:
        part = el(doc, "participant", typeCode=party.type_code or "REF")
        if party.template_id:
            el(part, "templateId", root=party.template_id)
        if party.time:
            interval = el(part, "time")
            interval.set(f"{{{XSI}}}type", "IVL_TS")
            el(interval, "high", value=party.time)
        _party(el(part, "associatedEntity", classCode="PROV"), party, "associatedPerson", site,
               org_tag="scopingOrganization")
    if adt.medecin_traitant is not None and adt.medecin_traitant.identifier:
        part = el(doc, "participant", typeCode="INF")
        el(part, "functionCode", code="PCP", codeSystem="2.16.840.1.113883.5.88", displayName="Médecin traitant")
        el(part, "time", nullFlavor="NA")
        _person(el(part, "associatedEntity", classCode="PROV"), adt.medecin_traitant, "associatedPerson", None)
    for root, extension in orders:
        el(el(el(doc, "inFulfillmentOf"), "order"), "id", root=root, extension=extension)
    start, stop = adt.admit_time, adt.discharge_time
    if service_events is None:
        event = el(el(doc, "documentationOf"), "serviceEvent", classCode="ACT", moodCode="EVN")
        el(event, "code", code=service_event[0], codeSystem=service_event[1], displayName=service_event[2])
        _interval(event, start, stop)
        performer = el(el(event, "performer", typeCode="PRF"), "assignedEntity")
        _person(performer, adt.attending or author, "assignedPerson", None)
        org = el(performer, "representedOrganization")
        el(org, "name", text=site.name)
        el(org, "standardIndustryClassCode", code=site.practice_setting_code, codeSystem=PRACTICE_SETTING_SYSTEM,
           displayName=site.practice_setting_display)
    for item in service_events or ():
        _service_event(doc, item, site)
    if parent_document_id:
        root, _, ext = parent_document_id.partition("^")
        if not ext:
            root, ext = site.document_id_root, parent_document_id
        parent = el(el(doc, "relatedDocument", typeCode="RPLC"), "parentDocument")
        el(parent, "id", root=root, extension=ext)
    encounter = el(el(doc, "componentOf"), "encompassingEncounter")
    if adt.encounter:
        el(encounter, "id", root=site.encounter_root, extension=adt.encounter)
    _interval(encounter, start, stop)
    if responsible is not None:
        _party(el(el(encounter, "responsibleParty"), "assignedEntity"), responsible, "assignedPerson", site,
               code_required=True)
    el(el(el(encounter, "location"), "healthCareFacility"), "code", code=site.facility_type_code,
       codeSystem=FACILITY_TYPE_SYSTEM, displayName=site.facility_type_display)
    return doc


def el(parent, tag: str, text: str | None = None, **attrs: str):
    """Append an HL7 v3 element with attributes and optional text (the renderers' one builder)."""
    child = etree.SubElement(parent, f"{{{HL7}}}{tag}", {k: v for k, v in attrs.items()})
    if text is not None:
        child.text = text
    return child


def _record_target(doc, adt: AdtEvent, site: Site) -> None:
    role = el(el(doc, "recordTarget"), "patientRole")
    ins = adt.ins
    if ins is not None:
        el(role, "id", root=ins.oid, extension=ins.matricule)
    if adt.ipp:
        el(role, "id", root=site.ipp_root, extension=adt.ipp)
    patient = el(role, "patient", classCode="PSN")
    name = el(patient, "name")
    if ins is not None and ins.birth_name:
        el(name, "family", text=ins.birth_name, qualifier="BR")
        if ins.given_names:
            el(name, "given", text=ins.given_names)
        if ins.first_given:
            el(name, "given", text=ins.first_given, qualifier="BR")
    else:
        # Without an INS the traits come from PID: in PAM-FR, PID-5 of type L is the birth name.
        el(name, "family", text=adt.family or "Inconnu", qualifier="BR" if adt.name_type in ("L", "") else "SP")
        if adt.given:
            el(name, "given", text=adt.given)
    sex = ins.sex if ins is not None else adt.sex
    code, display = _GENDERS.get(sex, ("UN", "Inconnu"))
    el(patient, "administrativeGenderCode", code=code, codeSystem="2.16.840.1.113883.5.1", displayName=display)
    born = ins.birth_date if ins is not None and ins.birth_date else adt.birth_date[:8]
    birth = {"value": born} if born else {"nullFlavor": "UNK"}
    el(patient, "birthTime", **birth)
    if ins is not None and ins.birthplace_cog:
        addr = el(el(el(patient, "birthplace"), "place"), "addr")
        el(addr, "county", text=ins.birthplace_cog)
        if ins.birthplace_city:
            el(addr, "city", text=ins.birthplace_city)


def _person(entity, who: Participant, person_tag: str, site: Site | None) -> None:
    """id (IdNat_PS), person name and, with a site, the represented organisation."""
    _professional_id(entity, who)
    _professional_name(entity, person_tag, who)
    if site is not None:
        _site_identity(el(entity, "representedOrganization"), site)


def _party(entity, party: Party, person_tag: str, site: Site, *, org_tag: str = "representedOrganization",
           code_required: bool = False, industry: bool = False) -> None:
    """id, code, addr, telecom, person name and organisation of a :class:`Party` (CDA order)."""
    _professional_id(entity, party.who)
    if party.code is not None:
        el(entity, "code", code=party.code[0], codeSystem=party.code[1], displayName=party.code[2])
    elif code_required:
        el(entity, "code", nullFlavor="UNK")
    if party.at_site:
        _addr(entity, site)
        _site_telecom(entity, site)
    _professional_name(entity, person_tag, party.who)
    if party.at_site:
        org = el(entity, org_tag)
        _site_identity(org, site)
        _site_telecom(org, site)
        _addr(org, site)
        if industry:
            el(org, "standardIndustryClassCode", code=site.practice_setting_code,
               codeSystem=PRACTICE_SETTING_SYSTEM, displayName=site.practice_setting_display)


def _service_event(doc, item: ServiceEvent, site: Site) -> None:
    event = el(el(doc, "documentationOf"), "serviceEvent", classCode="ACT", moodCode="EVN")
    el(event, "code", code=item.code[0], codeSystem=item.code[1], displayName=item.code[2])
    if item.status:
        etree.SubElement(event, f"{{{LAB}}}statusCode", code=item.status, nsmap={"lab": LAB})
    if item.with_time:
        _interval(event, item.start, item.stop)
    if item.performer is not None:
        performer = el(event, "performer", typeCode="PRF")
        if item.performer.template_id:
            el(performer, "templateId", root=item.performer.template_id)
        if item.performer.time:
            el(el(performer, "time"), "high", value=item.performer.time)
        _party(el(performer, "assignedEntity"), item.performer, "assignedPerson", site, industry=True)


def _professional_id(entity, who: Participant) -> None:
    """The IdNat_PS (8+RPPS) as ``id``, ``nullFlavor="UNK"`` when the professional has none."""
    if who.identifier:
        el(entity, "id", root=RPPS_OID, extension=who.identifier)
    else:
        el(entity, "id", nullFlavor="UNK")


def _professional_name(entity, person_tag: str, who: Participant) -> None:
    """``<person_tag><name>``: given name when known, family name always (``Inconnu`` when missing)."""
    name = el(el(entity, person_tag), "name")
    if who.given:
        el(name, "given", text=who.given)
    el(name, "family", text=who.family or "Inconnu")


def _site_identity(org, site: Site) -> None:
    """The establishment's FINESS id and name, as every organisation of the header states it."""
    el(org, "id", root=FINESS_OID, extension=site.idnat_struct)
    el(org, "name", text=site.name)


def _site_telecom(parent, site: Site) -> None:
    """The establishment's work telecom, ``nullFlavor="UNK"`` when none is configured."""
    if site.telecom:
        el(parent, "telecom", value=site.telecom, use="WP")
    else:
        el(parent, "telecom", nullFlavor="UNK")


def _addr(parent, site: Site) -> None:
    """The establishment's postal address (the custodian's, and a laboratory party's at the site)."""
    addr = el(parent, "addr")
    if site.house_number:
        el(addr, "houseNumber", text=site.house_number)
    el(addr, "streetName", text=site.street_name)
    el(addr, "postalCode", text=site.postal_code)
    el(addr, "city", text=site.city)


def _custodian(doc, site: Site) -> None:
    org = el(el(el(doc, "custodian", typeCode="CST"), "assignedCustodian"), "representedCustodianOrganization")
    _site_identity(org, site)
    if site.telecom:
        el(org, "telecom", value=site.telecom, use="WP")
    _addr(org, site)


def _interval(parent, start: str, stop: str) -> None:
    times = el(parent, "effectiveTime")
    el(times, "low", value=start) if start else el(times, "low", nullFlavor="UNK")
    el(times, "high", value=stop) if stop else el(times, "high", nullFlavor="UNK")
