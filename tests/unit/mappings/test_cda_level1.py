"""Level-1 (XDS-SD, PDF) CDA rendering from our own ADT corpus, proven by the XSD and the CI-SIS profiles.

profils/IHE.sch is not run: it does not compile with saxonche (its include
E_directiveAnticipee_int.sch fails with "Content is not allowed in prolog").
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from mappings.cda_header import read_header
from mappings.cda_level1 import PDF_MEDIA_TYPE, XDS_SD_TEMPLATE_ID, document_type_for, render_level1
from mappings.codes import load
from mappings.site import Site
from router.adt import read_adt
from router.errors import MappingError
from router.model import Participant
from router.schematron import MINIMAL_STRUCTURE, SchematronValidator
from channels.testing.adt_messages import CORSICA_2A, NIA, PATIENT, make_adt
from tests.support.fixtures import require_fixture

NS = {"h": "urn:hl7-org:v3"}
AUTHOR = Participant(identifier="810000023084", family="MARTIN", given="Sophie")
SITE = Site()
WHEN = datetime(2024, 3, 15, 16, 30, tzinfo=timezone(timedelta(hours=1)))
PDF = b"%PDF-1.4\n% compte rendu fictif \xc3\xa9\n%%EOF\n"
XDS_SD_PDF = "urn:ihe:iti:xds-sd:pdf:2008"

#: name → (make_adt arguments, patient, TXA-2 as sent, expected LOINC type, parent document id)
CASES = {
    "operative_report_discharge": (("A03",), {}, PATIENT, "OP", "34874-8", ""),
    "imaging_corsica_2a": (("A03",), {"patient": CORSICA_2A}, CORSICA_2A, "DI", "18748-4", ""),
    "consultation_nia_admission_replaced": (("A01",), {"patient": NIA}, NIA, "11488-4^CR de consultation^LN",
                                            "11488-4", f"{SITE.document_id_root}^CR-0001"),
}
PROFILES = (MINIMAL_STRUCTURE, "profils/CI-SIS_ModelesDeContenusCDA.sch", "profils/CI-SIS_Modeles_ANS.sch")


def render(name: str) -> bytes:
    args, kwargs, _, txa2, _, parent = CASES[name]
    type_code = document_type_for(txa2)
    return render_level1(read_adt(make_adt(*args, **kwargs)), pdf=PDF, type_code=type_code, title=type_code[1],
                         document_id=f"DOC-{name}", set_id=f"SET-{name}", version=2 if parent else 1,
                         parent_document_id=parent, author=AUTHOR, site=SITE, effective_time=WHEN)


@pytest.fixture(scope="module")
def profiles() -> dict[str, SchematronValidator]:
    root = require_fixture("TestContenuCDA-3-0", "schematrons")
    return {name: SchematronValidator(root / name) for name in PROFILES}


@pytest.mark.parametrize("name", CASES)
def test_level1_document_passes_the_xsd_and_the_cisis_profiles(name, xsd, profiles):
    cda = render(name)
    xsd.validate(cda)
    for report in (v.validate(cda) for v in profiles.values()):
        assert report.ok, report.describe()


def test_minimal_structure_profile_reports_a_planted_error(profiles):
    doc = etree.fromstring(render("operative_report_discharge"))
    doc.remove(doc.find("h:custodian", NS))
    assert not profiles[MINIMAL_STRUCTURE].validate(etree.tostring(doc)).ok


@pytest.mark.parametrize("name", CASES)
def test_header_reads_back_type_format_ins_and_ids(name):
    _, _, patient, _, type_code, parent = CASES[name]
    header = read_header(render(name))
    assert header.type_code == type_code
    assert header.format_code == XDS_SD_PDF
    assert XDS_SD_TEMPLATE_ID in header.template_ids
    assert (header.ins, header.ins_oid) == (patient.ins, patient.ins_oid)
    assert (SITE.ipp_root, patient.ipp) in header.patient_ids
    assert header.document_id == f"{SITE.document_id_root}^DOC-{name}"
    assert header.set_id == f"{SITE.set_id_root}^SET-{name}"
    assert (header.version, header.parent_document_id) == ((2, parent) if parent else (1, ""))
    assert header.authors[0].identifier == AUTHOR.identifier


def test_pdf_is_the_whole_body_and_decodes_back():
    doc = etree.fromstring(render("imaging_corsica_2a"))
    assert doc.find("h:component/h:structuredBody", NS) is None
    text = doc.find("h:component/h:nonXMLBody/h:text", NS)
    assert (text.get("mediaType"), text.get("representation")) == (PDF_MEDIA_TYPE, "B64")
    assert base64.b64decode(text.text) == PDF


@pytest.mark.parametrize("txa2, expected", [("OP", "34874-8"), ("cro", "34874-8"), ("DS", "34112-3"),
                                            ("18748-4", "18748-4"), ("15507-7^CR urgences^LN", "15507-7")])
def test_txa2_maps_to_its_loinc_type(txa2, expected):
    assert document_type_for(txa2)[0] == expected


@pytest.mark.parametrize("txa2", ["XYZ", "", "99999-9^Inconnu^LN"])
def test_unknown_txa2_gets_the_default_type(txa2):
    table = load("txa_document_types")
    assert document_type_for(txa2) == (table["default"], table["types"][table["default"]])


def test_a_hospital_table_overrides_the_shipped_one():
    table = {"types": {"34874-8": "CR opératoire", "11488-4": "Consultation"}, "by_txa2": {"LOC1": "34874-8"},
             "default": "11488-4"}
    assert document_type_for("LOC1", table) == ("34874-8", "CR opératoire")
    assert document_type_for("OP", table) == ("11488-4", "Consultation")


def test_every_type_code_of_the_table_is_in_jdv_j07():
    jdv = require_fixture("TestContenuCDA-3-0", "jeuxDeValeurs", "JDV_J07_XdsTypeCode_CISIS.xml")
    table = load("txa_document_types")
    concepts = {c.get("code"): c.get("displayName") for c in etree.parse(str(jdv)).iter("{*}Concept")
                if c.get("codeSystem") == table["coding_scheme"]}
    for code, display in table["types"].items():
        assert concepts.get(code) == display, code
    assert set(table["by_txa2"].values()) | {table["default"]} <= set(table["types"])


def test_missing_pdf_or_author_id_is_a_mapping_error():
    adt = read_adt(make_adt("A03"))
    common = dict(type_code=document_type_for("OP"), title="CR", document_id="D", set_id="S", site=SITE,
                  effective_time=WHEN)
    with pytest.raises(MappingError):
        render_level1(adt, pdf=b"", author=AUTHOR, **common)
    with pytest.raises(MappingError):
        render_level1(adt, pdf=PDF, author=replace(AUTHOR, identifier=""), **common)
