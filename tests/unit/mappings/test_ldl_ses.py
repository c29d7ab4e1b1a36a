"""LDL-SES rendering from our own ADT^A03 corpus, proven by the XSD and the CI-SIS schematrons."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from mappings.cda_header import read_header
from mappings.ldl_ses import ATTACHED, DISCHARGE_MODES, OTHER_DESTINATION, discharge_mode, render_ldl_ses
from mappings.site import Site
from router.adt import read_adt
from router.errors import MappingError
from router.model import Participant
from router.schematron import SchematronValidator
from channels.testing.adt_messages import (CORSICA_2A, CORSICA_2B, DR_LEFEVRE, NIA, NO_INS, PATIENT, PROVISIONAL,
                                        make_adt)
from tests.support.fixtures import require_fixture

NS = {"h": "urn:hl7-org:v3"}
AUTHOR = Participant(identifier="810000023084", family="MARTIN", given="Sophie")
SITE = Site()
WHEN = datetime(2024, 3, 15, 16, 30, tzinfo=timezone(timedelta(hours=1)))
PDF = b"%PDF-1.4\n% lettre de liaison fictive\n%%EOF\n"
NARRATIVE = {"reason": "Douleur thoracique d'effort.",
             "synthesis": "Coronarographie : sténose traitée.\nÉvolution favorable.",
             "discharge_medications": "Aspirine 75 mg, 1 par jour."}

#: name → (make_adt keyword arguments, letter PDF, narrative, parent document id)
CASES = {
    "home_with_pdf": (dict(), PDF, NARRATIVE, ""),
    "transfer_corsica_2a": (dict(patient=CORSICA_2A, disposition="7", destination="200000017"), PDF, None, ""),
    "mutation_corsica_2b_accents": (dict(patient=CORSICA_2B, disposition="6", attending=DR_LEFEVRE), None,
                                    {"reason": "Chute à domicile, fracture du col fémoral."}, ""),
    "death_nia": (dict(patient=NIA, disposition="9"), PDF, None, ""),
    "unknown_mode_provisional": (dict(patient=PROVISIONAL, disposition=""), None, None, ""),
    "missing_optional_data": (dict(medecin_traitant=None, attending=None, referring=None, discharge_time=""),
                              None, None, ""),
    "no_ins": (dict(patient=NO_INS), PDF, None, ""),
    "replacement": (dict(control_id="ADT0002"), PDF, NARRATIVE, f"{SITE.document_id_root}^LDL-0001"),
}
#: the ANS profile that checks the FR-Document-PDF-copie section and its FR-Document-attache organizer
MODELES_ANS = "profils/CI-SIS_Modeles_ANS.sch"
MINIMAL_CASES = ("home_with_pdf", "death_nia", "replacement")


def render(name: str) -> bytes:
    kwargs, pdf, narrative, parent = CASES[name]
    adt = read_adt(make_adt("A03", **kwargs))
    return render_ldl_ses(adt, letter_pdf=pdf, narrative=narrative, document_id=f"LDL-{name}",
                          set_id="SET-0001", version=2 if parent else 1, parent_document_id=parent,
                          author=AUTHOR, site=SITE, effective_time=WHEN)


@pytest.fixture(scope="module")
def schematrons():
    root = require_fixture("TestContenuCDA-3-0", "schematrons")
    return {name: SchematronValidator(root / name) for name in
            ("CI-SIS_LDL-SES_2022.01.sch", "profils/CI-SIS_ModelesDeContenusCDA.sch", MODELES_ANS)}


@pytest.mark.parametrize("name", CASES)
def test_rendered_letter_passes_the_xsd_and_the_volet_schematrons(name, xsd, schematrons):
    cda = render(name)
    xsd.validate(cda)
    for report in (v.validate(cda) for v in schematrons.values()):
        assert report.failed == [], report.describe()


@pytest.mark.parametrize("name", MINIMAL_CASES)
def test_rendered_letter_passes_the_minimal_structure_profile(name, minimal_structure):
    report = minimal_structure.validate(render(name))
    assert report.ok, report.describe()


def test_header_reads_back_ins_ids_version_and_parent():
    header = read_header(render("replacement"))
    assert (header.ins, header.ins_oid) == (PATIENT.ins, PATIENT.ins_oid)
    assert header.ins_traits_complete
    assert header.document_id == f"{SITE.document_id_root}^LDL-replacement"
    assert header.set_id == f"{SITE.set_id_root}^SET-0001"
    assert header.version == 2
    assert header.parent_document_id == f"{SITE.document_id_root}^LDL-0001"
    assert header.template_ids[-1] == "1.2.250.1.213.1.1.1.29"
    assert (header.type_code, header.facility_type_code, header.practice_setting_code) == \
        ("11490-0", "SA01", "ETABLISSEMENT")
    assert header.custodian.organisation_id == "1" + SITE.finess
    assert header.authors[0].identifier == AUTHOR.identifier


def test_nia_and_corsican_ins_are_carried_with_their_oid():
    for name, patient in (("death_nia", NIA), ("transfer_corsica_2a", CORSICA_2A)):
        header = read_header(render(name))
        assert (header.ins, header.ins_oid) == (patient.ins, patient.ins_oid)
        assert ("1.2.250.1.999.1.1", patient.ipp) in header.patient_ids


def test_first_version_has_no_related_document():
    doc = etree.fromstring(render("home_with_pdf"))
    assert doc.find("h:relatedDocument", NS) is None
    assert read_header(render("home_with_pdf")).parent_document_id == ""


@pytest.mark.parametrize("name, expected", [("home_with_pdf", "160849004"), ("transfer_corsica_2a", "GEN-092.06.01"),
                                            ("mutation_corsica_2b_accents", "GEN-092.06.01"),
                                            ("death_nia", "GEN-092.06.03"),
                                            ("unknown_mode_provisional", "GEN-092.06.03")])
def test_discharge_mode_entry_comes_from_pv1_36(name, expected):
    doc = etree.fromstring(render(name))
    values = doc.xpath("//h:observation[h:code/@code='ORG-074']/h:value/@code", namespaces=NS)
    assert values == [expected]


def test_every_discharge_mode_code_is_in_the_cisis_value_set():
    jdv = require_fixture("TestContenuCDA-3-0", "jeuxDeValeurs", "JDV_ModaliteSortie_CISIS.xml")
    concepts = {(c.get("code"), c.get("codeSystem")) for c in etree.parse(str(jdv)).iter("{*}Concept")}
    for code, system, _ in (*DISCHARGE_MODES.values(), OTHER_DESTINATION):
        assert (code, system) in concepts
    assert discharge_mode("9") == OTHER_DESTINATION      # 419620001 (décès) is not in this JDV


def test_pdf_travels_in_the_document_copy_section():
    doc = etree.fromstring(render("home_with_pdf"))
    section = doc.xpath("//h:section[h:templateId/@root='1.2.250.1.213.1.1.2.243']", namespaces=NS)[0]
    assert section.findtext("h:title", namespaces=NS) == "Copie du document"
    media = section.xpath(".//h:organizer/h:component/h:observationMedia/h:value", namespaces=NS)[0]
    assert media.get("mediaType") == "application/pdf"
    assert base64.b64decode(media.text) == PDF


def test_attachment_checks_are_live_in_the_ans_profile(schematrons):
    doc = etree.fromstring(render("home_with_pdf"))
    media = doc.xpath("//h:observationMedia", namespaces=NS)[0]
    media.getparent().getparent().remove(media.getparent())
    report = schematrons[MODELES_ANS].validate(etree.tostring(doc))
    assert any("FR-Document-attache" in f.text for f in report.errors)


def test_without_pdf_there_is_no_copy_section():
    doc = etree.fromstring(render("mutation_corsica_2b_accents"))
    assert not doc.xpath("//h:templateId[@root='1.2.250.1.213.1.1.2.243']", namespaces=NS)


def test_narrative_fills_sections_else_points_to_the_attached_letter():
    doc = etree.fromstring(render("home_with_pdf"))
    synthesis = "".join(doc.xpath("//h:section[h:code/@code='42545-4']/h:text", namespaces=NS)[0].itertext())
    assert "Évolution favorable." in synthesis
    doc = etree.fromstring(render("transfer_corsica_2a"))
    reason = "".join(doc.xpath("//h:section[h:code/@code='42349-1']/h:text", namespaces=NS)[0].itertext())
    assert reason.strip() == ATTACHED


def test_accented_names_survive_as_utf8():
    doc = etree.fromstring(render("mutation_corsica_2b_accents"))
    givens = doc.xpath("//h:patient/h:name/h:given/text()", namespaces=NS)
    assert "Marie-Ève" in givens and "Marie-Ève Colomba" in givens
    assert doc.xpath("//h:serviceEvent//h:assignedPerson/h:name/h:family/text()", namespaces=NS) == ["LEFÈVRE"]


def test_medecin_traitant_is_an_inf_participant_only_when_known():
    with_mt = etree.fromstring(render("home_with_pdf"))
    assert with_mt.xpath("h:participant[@typeCode='INF']/h:functionCode/@code", namespaces=NS) == ["PCP"]
    without = etree.fromstring(render("missing_optional_data"))
    assert not without.xpath("h:participant", namespaces=NS)


def test_author_without_idnat_ps_is_a_mapping_error():
    adt = read_adt(make_adt("A03"))
    with pytest.raises(MappingError):
        render_ldl_ses(adt, letter_pdf=None, narrative=None, document_id="X", set_id="Y",
                       author=replace(AUTHOR, identifier=""), site=SITE, effective_time=WHEN)
