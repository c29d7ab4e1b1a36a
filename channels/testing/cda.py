"""Sample CDAs for tests: the demo documents of ``channels/app/demo/samples/cda`` with variations.

``make_cda()`` returns the CR-BIO sample (fictitious patient MARTIN Camille, test INS);
keyword overrides change one thing at a time::

    make_cda(kind="ldl-ses")                       # the discharge letter instead
    make_cda(ins="173027511223302", family="DURAND", given="LUC")
    make_cda(ins=None)                             # no INS id, only the IPP
    make_cda(birthplace_county=None)               # INS traits incomplete
    make_cda(parent_document_id="1.2.3^OLD-1")     # adds relatedDocument RPLC
    make_cda(broken_schema=True)                   # fails CDA_extended.xsd (element out of place)

``make_job()`` wraps a CDA into a DocumentJob the way the router would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree

from mappings.cda_header import read_header
from router.model import Action, DocumentJob, Flags, MessageSource, Participant, Recipient

HL7 = "urn:hl7-org:v3"
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "channels" / "app" / "demo" / "samples" / "cda"
SAMPLES = {
    "cr-bio": SAMPLES_DIR / "cr-bio-martin-camille.xml",
    "ldl-ses": SAMPLES_DIR / "ldl-ses-martin-camille.xml",
}
#: What the samples carry, for assertions.
SAMPLE_INS = "285076938304209"
SAMPLE_INS_OID = "1.2.250.1.213.1.4.10"
SAMPLE_IPP = "000123456"
SAMPLE_IPP_ROOT = "1.2.250.1.999.1.1"
SAMPLE_DOCUMENT_IDS = {
    "cr-bio": "1.2.250.1.999.1.3^CRB-240312-0001",
    "ldl-ses": "1.2.250.1.999.1.3^LDL-240320-0007",
}

_UNSET: Any = object()


def nir_with_key(first13: str) -> str:
    """A 15-digit NIR whose key is right: key = 97 - (first 13 digits mod 97)."""
    return f"{first13}{97 - int(first13) % 97:02d}"


def luhn_digit(digits: str) -> str:
    """The Luhn check digit to append to ``digits`` (RPPS numbers end with one)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def _q(path: str) -> str:
    return "/".join(f"{{{HL7}}}{step}" for step in path.split("/"))


def _set_ii(el: etree._Element, value: str) -> None:
    root, _, ext = value.partition("^")
    el.set("root", root)
    if ext:
        el.set("extension", ext)
    elif "extension" in el.attrib:
        del el.attrib["extension"]


def make_cda(*, kind: str = "cr-bio", document_id: str | None = None, set_id: str | None = None,
             version: int | None = None, title: str | None = None, effective_time: str | None = None,
             confidentiality: str | None = None, ins: str | None = _UNSET, ins_oid: str | None = None,
             ipp: str | None = _UNSET, family: str | None = None, given: str | None = None,
             birth_time: str | None = None, gender: str | None = None,
             birthplace_county: str | None = _UNSET, parent_document_id: str | None = None,
             broken_schema: bool = False) -> bytes:
    """A sample CDA with the given changes, as UTF-8 bytes with an XML declaration.

    ``ins=None`` / ``ipp=None`` / ``birthplace_county=None`` remove that element; leaving an
    argument out keeps the sample's value.
    """
    doc = etree.parse(str(SAMPLES[kind])).getroot()
    if document_id is not None:
        _set_ii(doc.find(_q("id")), document_id)
    if set_id is not None:
        _set_ii(doc.find(_q("setId")), set_id)
    if version is not None:
        doc.find(_q("versionNumber")).set("value", str(version))
    if title is not None:
        doc.find(_q("title")).text = title
    if effective_time is not None:
        doc.find(_q("effectiveTime")).set("value", effective_time)
    if confidentiality is not None:
        doc.find(_q("confidentialityCode")).set("code", confidentiality)

    role = doc.find(_q("recordTarget/patientRole"))
    ins_el = next(i for i in role.iterfind(_q("id")) if i.get("root") == SAMPLE_INS_OID)
    ipp_el = next(i for i in role.iterfind(_q("id")) if i.get("root") == SAMPLE_IPP_ROOT)
    if ins is None:
        role.remove(ins_el)
    elif ins is not _UNSET:
        ins_el.set("extension", ins)
        for telecom in role.iterfind(_q("telecom")):
            if telecom.get("value", "").startswith("mailto:") and "@patient.mssante.fr" in telecom.get("value"):
                telecom.set("value", f"mailto:{ins}@patient.mssante.fr")
    if ins_oid is not None and ins is not None:
        ins_el.set("root", ins_oid)
    if ipp is None:
        role.remove(ipp_el)
    elif ipp is not _UNSET:
        ipp_el.set("extension", ipp)

    patient = role.find(_q("patient"))
    name = patient.find(_q("name"))
    if family is not None:
        for el in name.iterfind(_q("family")):
            el.text = family
    if given is not None:
        for el in name.iterfind(_q("given")):
            el.text = given
    if birth_time is not None:
        patient.find(_q("birthTime")).set("value", birth_time)
    if gender is not None:
        patient.find(_q("administrativeGenderCode")).set("code", gender)
    if birthplace_county is None:
        addr = patient.find(_q("birthplace/place/addr"))
        addr.remove(addr.find(_q("county")))
    elif birthplace_county is not _UNSET:
        patient.find(_q("birthplace/place/addr/county")).text = birthplace_county

    if parent_document_id is not None:
        related = etree.Element(f"{{{HL7}}}relatedDocument", typeCode="RPLC")
        parent = etree.SubElement(related, f"{{{HL7}}}parentDocument")
        _set_ii(etree.SubElement(parent, f"{{{HL7}}}id"), parent_document_id)
        doc.find(_q("componentOf")).addprevious(related)
    if broken_schema:
        # title must come right after code: an element in between breaks the content model.
        doc.find(_q("title")).addprevious(etree.Element(f"{{{HL7}}}unexpectedElement"))
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def make_job(cda: bytes | None = None, *, action: Action = Action.PUBLISH, flags: Flags | None = None,
             recipients: tuple[Recipient, ...] = (), sender: Participant | None = None,
             patient_ipp: str = "") -> DocumentJob:
    """A DocumentJob around ``cda`` (default: the CR-BIO sample) with its header read."""
    cda = make_cda() if cda is None else cda
    header = read_header(cda)
    source = MessageSource(sending_application="LABO-TEST", sending_facility="CH-TEST",
                           receiving_application="LIAISON", receiving_facility="CH-TEST",
                           control_id="MSG0001", message_type="ORU^R01")
    return DocumentJob(job_id=f"LABO-TEST|MSG0001|{header.document_id}", message_key="LABO-TEST|MSG0001",
                       source=source, action=action, cda=cda, header=header, flags=flags or Flags(),
                       recipients=recipients, sender=sender or Participant(), patient_ipp=patient_ipp)
