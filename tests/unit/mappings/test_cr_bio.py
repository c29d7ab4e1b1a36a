"""CR-BIO 2024.01 rendering from our own lab ORU corpus, proven by the XSD and the CI-SIS schematrons.

Every corpus message is rendered and checked against CDA_extended.xsd, the volet
schematron CI-SIS_BIO-CR-BIO_2024.01.sch, CI-SIS_ModelesDeContenusCDA.sch,
CI-SIS_Modeles_ANS.sch and the minimal-structure profile (0 failed asserts).
profils/IHE.sch is not run (it does not compile with saxonche, see test_cda_level1).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from mappings.cda_header import read_header
from mappings.codes import load
from mappings.cr_bio import reference_range, render_cr_bio
from mappings.lab_codes import ucum_unit
from mappings.site import Site
from router.adt import read_patient_visit
from router.errors import MappingError
from router.lab import read_lab_report
from router.lab_model import Coded
from router.schematron import SchematronValidator
from channels.testing.adt_messages import DR_DURAND, DR_LEFEVRE, DR_MARTIN
from channels.testing.lab_messages import (BIOLOGIST, CORPUS, ORDER_OID, PDF, Obr, Obx, biochemistry, make_lab_oru,
                                        urine_culture)
from tests.support.fixtures import require_fixture

NS = {"h": "urn:hl7-org:v3", "lab": "urn:oid:1.3.6.1.4.1.19376.1.3.2",
      "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
SITE = Site()
WHEN = datetime(2024, 3, 12, 11, 0, tzinfo=timezone(timedelta(hours=1)))
VOLET = "CI-SIS_BIO-CR-BIO_2024.01.sch"
PROFILES = (VOLET, "profils/CI-SIS_ModelesDeContenusCDA.sch", "profils/CI-SIS_Modeles_ANS.sch")
PARENT = f"{SITE.document_id_root}^CRBIO-0001"


def render_text(text: str, *, name: str = "x", parent: str = "", tables=None) -> bytes:
    report = read_lab_report(text)
    return render_cr_bio(report, read_patient_visit(text), report_pdf=report.pdf, document_id=f"CRBIO-{name}",
                         set_id="SET-0001", version=2 if parent else 1, parent_document_id=parent, site=SITE,
                         effective_time=WHEN, tables=tables)


def render(name: str) -> bytes:
    return render_text(CORPUS[name](), name=name, parent=PARENT if name in ("corrected", "cancelled") else "")


def tree(name: str):
    return etree.fromstring(render(name))


@pytest.fixture(scope="module")
def schematrons():
    root = require_fixture("TestContenuCDA-3-0", "schematrons")
    return {name: SchematronValidator(root / name) for name in PROFILES}


def jdv(name: str) -> set[tuple[str, str]]:
    path = require_fixture("TestContenuCDA-3-0", "jeuxDeValeurs", name)
    return {(c.get("code"), c.get("codeSystem")) for c in etree.parse(str(path)).iter("{*}Concept")}


def test_corpus_has_at_least_16_messages():
    assert len(CORPUS) >= 16


@pytest.mark.parametrize("name", CORPUS)
def test_rendered_report_passes_the_xsd_and_the_cisis_schematrons(name, xsd, schematrons):
    cda = render(name)
    xsd.validate(cda)
    for report in (validator.validate(cda) for validator in schematrons.values()):
        assert report.failed == [], report.describe()


@pytest.mark.parametrize("name", CORPUS)
def test_rendered_report_passes_the_minimal_structure_profile(name, minimal_structure):
    report = minimal_structure.validate(render(name))
    assert report.ok, report.describe()


# --- planted errors: the validators are live on our documents --------------------------------

def _planted(mutate) -> bytes:
    doc = tree("biochemistry_flags")
    mutate(doc)
    return etree.tostring(doc)


def test_missing_pdf_copy_section_is_caught_by_the_volet(schematrons):
    def drop(doc):
        section = doc.xpath("//h:section[h:templateId/@root='1.2.250.1.213.1.1.2.243']", namespaces=NS)[0]
        component = section.getparent()
        component.getparent().remove(component)
    report = schematrons[VOLET].validate(_planted(drop))
    assert len(report.errors) == 1 and "FR-Document-PDF-copie" in report.errors[0].text, report.describe()


def test_wrong_document_code_is_caught_by_the_volet(schematrons):
    def recode(doc):
        doc.find("h:code", NS).set("code", "11490-0")
    report = schematrons[VOLET].validate(_planted(recode))
    assert [f.text for f in report.errors if "11502-2" in f.text], report.describe()


def test_missing_birth_time_is_caught_by_the_minimal_structure(minimal_structure):
    def drop(doc):
        birth = doc.xpath("//h:patient/h:birthTime", namespaces=NS)[0]
        birth.getparent().remove(birth)
    report = minimal_structure.validate(_planted(drop))
    texts = [f.text for f in report.errors]
    assert any("birthTime is required" in t for t in texts) and any("SMDS_CDAClinicalDocument" in t for t in texts)


# --- code tables against the CI-SIS value sets -----------------------------------------------

def test_every_interpretation_code_is_in_the_cisis_value_set():
    concepts = jdv("JDV_HL7_ObservationInterpretation_CISIS.xml")
    table = load("lab_interpretation")
    for code in (*table["codes"], *table["by_flag"].values()):
        assert (code, table["code_system"]) in concepts, code
    assert set(table["by_flag"].values()) <= set(table["codes"])


def test_chapter_table_covers_the_chapters_of_the_ans_examples():
    examples = require_fixture("TestContenuCDA-3-0", "ExemplesCDA")
    chapters = load("lab_chapters")
    used = set()
    for path in examples.glob("BIO-CR-BIO_2024.01_*.xml"):
        doc = etree.parse(str(path))
        used |= {(c.get("code"), c.get("displayName")) for c in doc.xpath(
            "//h:section[h:templateId/@root='1.3.6.1.4.1.19376.1.3.3.2.1']/h:code", namespaces=NS)}
    assert used and all(chapters["chapters"].get(code) == name for code, name in used), used
    assert set(chapters["by_section"].values()) | {chapters["default"]} <= set(chapters["chapters"])


def test_corpus_specimen_types_are_in_the_cisis_value_set():
    concepts = jdv("JDV_HL7_SpecimenType_CISIS.xml")
    for name in CORPUS:
        for code in tree(name).xpath("//h:participant[@typeCode='PRD']//h:playingEntity/h:code", namespaces=NS):
            assert (code.get("code"), code.get("codeSystem")) in concepts, (name, code.get("code"))


@pytest.mark.parametrize("raw, system, expected", [
    ("mmol/l", "", "mmol/L"), ("µmol/l", "", "umol/L"), ("giga/l", "", "10*9/L"), ("10*9/l", "", "10*9/L"),
    ("g/l", "", "g/L"), ("mmol/L", "UCUM", "mmol/L"), ("mUI/l", "", "m[IU]/L"), ("mmol/L", "", "mmol/L"),
    ("", "", ""), ("bananes/l", "", None)])
def test_units_to_ucum(raw, system, expected):
    assert ucum_unit(Coded(code=raw, system=system)) == expected


# --- header ------------------------------------------------------------------------------------

def test_header_is_cr_bio_with_biologist_prescriber_order_and_chapters():
    doc = tree("multi_chapter")
    header = read_header(render("multi_chapter"))
    assert (header.type_code, header.title) == ("11502-2", "Compte rendu d'examens biologiques")
    assert header.template_ids[-2:] == ("1.3.6.1.4.1.19376.1.3.3", "1.2.250.1.213.1.1.1.55")
    assert header.authors[0].identifier == "8" + BIOLOGIST.rpps
    auth = doc.find("h:authenticator", NS)
    assert auth.find("h:templateId", NS).get("root") == "1.3.6.1.4.1.19376.1.3.3.1.5"
    assert auth.find("h:time", NS).get("value") == "20240312103000+0100"
    ref = doc.xpath("h:participant[@typeCode='REF']", namespaces=NS)[0]
    assert ref.find("h:templateId", NS).get("root") == "1.3.6.1.4.1.19376.1.3.3.1.6"
    assert ref.find("h:associatedEntity/h:id", NS).get("extension") == "8" + DR_DURAND.rpps
    order = doc.find("h:inFulfillmentOf/h:order/h:id", NS)
    assert (order.get("root"), order.get("extension")) == (ORDER_OID, "CMD2024-0042")
    events = doc.xpath("h:documentationOf/h:serviceEvent", namespaces=NS)
    assert [e.find("h:code", NS).get("code") for e in events] == ["18719-5", "18723-7", "18727-8", "18720-3"]
    assert events[0].find("lab:statusCode", NS).get("code") == "completed"
    performer = events[0].find("h:performer", NS)
    assert performer.find("h:templateId", NS).get("root") == "1.3.6.1.4.1.19376.1.3.3.1.7"
    assert performer.find("h:assignedEntity/h:representedOrganization/h:standardIndustryClassCode", NS) is not None
    responsible = doc.find("h:componentOf/h:encompassingEncounter/h:responsibleParty/h:assignedEntity", NS)
    assert responsible.find("h:id", NS).get("extension") == "8" + BIOLOGIST.rpps
    assert header.parent_document_id == "" and header.version == 1


def test_copies_become_information_recipients():
    ids = tree("lab_pdf").xpath("h:informationRecipient/h:intendedRecipient/h:id/@extension", namespaces=NS)
    assert ids == ["8" + DR_MARTIN.rpps, "8" + DR_LEFEVRE.rpps]


def test_corrected_report_replaces_its_parent():
    header = read_header(render("corrected"))
    assert (header.parent_document_id, header.version) == (PARENT, 2)
    assert header.set_id == f"{SITE.set_id_root}^SET-0001"


def test_missing_prescriber_gives_no_ref_participant():
    assert not tree("missing_optional").xpath("h:participant[@typeCode='REF']", namespaces=NS)


def test_preliminary_results_leave_the_report_active():
    doc = tree("preliminary")
    assert doc.xpath("h:documentationOf/h:serviceEvent/lab:statusCode/@code", namespaces=NS) == ["active"]
    assert set(doc.xpath("//h:act[h:code/@code='18719-5']/h:statusCode/@code", namespaces=NS)) == {"active"}


def test_cancelled_results_are_aborted_observations():
    codes = tree("cancelled").xpath("//h:observation[h:templateId/@root='1.3.6.1.4.1.19376.1.3.1.6']"
                                    "/h:statusCode/@code", namespaces=NS)
    assert codes and set(codes) == {"aborted"}


# --- body --------------------------------------------------------------------------------------

def _observation(doc, loinc: str):
    return doc.xpath(f"//h:observation[h:code/@code='{loinc}']", namespaces=NS)[0]


def test_numeric_results_are_pq_in_ucum_with_range_and_interpretation():
    doc = tree("biochemistry_flags")
    potassium = _observation(doc, "2823-3")
    value = potassium.find("h:value", NS)
    assert (value.get(f"{{{NS['xsi']}}}type"), value.get("value"), value.get("unit")) == ("PQ", "3.2", "mmol/L")
    assert potassium.find("h:interpretationCode", NS).get("code") == "L"
    observation_range = potassium.find("h:referenceRange/h:observationRange", NS)
    assert observation_range.get("moodCode") == "EVN.CRT"
    assert [(b.get("value"), b.get("unit")) for b in observation_range.find("h:value", NS)] == \
        [("3.5", "mmol/L"), ("5.1", "mmol/L")]
    assert _observation(doc, "14682-9").find("h:value", NS).get("unit") == "umol/L"
    assert _observation(doc, "14682-9").find("h:interpretationCode", NS).get("code") == "H"


def test_glycemia_in_two_units():
    doc = tree("glycemia_two_units")
    units = [(_observation(doc, c).find("h:value", NS).get("value"), _observation(doc, c).find("h:value", NS)
              .get("unit")) for c in ("40193-5", "1558-6")]
    assert units == [("4.89", "mmol/L"), ("0.88", "g/L")]


def test_cbc_is_a_battery_organizer_in_hematology():
    doc = tree("hematology_cbc")
    chapter = doc.xpath("//h:section[h:templateId/@root='1.3.6.1.4.1.19376.1.3.3.2.1']/h:code/@code", namespaces=NS)
    assert chapter == ["18723-7"]
    battery = doc.xpath("//h:organizer[@classCode='BATTERY']", namespaces=NS)[0]
    assert battery.find("h:code", NS).get("code") == "58410-2"
    assert len(battery.findall("h:component/h:observation", NS)) == 6
    assert _observation(doc, "6690-2").find("h:value", NS).get("unit") == "10*9/L"
    platelets = _observation(doc, "777-3")
    assert platelets.xpath("h:entryRelationship[@typeCode='SUBJ']/h:act/h:code/@code", namespaces=NS) == ["48767-8"]


def test_microbiology_isolates_carry_organism_counts_and_antibiogram():
    doc = tree("microbiology_isolates")
    isolates = doc.xpath("//h:organizer[h:templateId/@root='1.3.6.1.4.1.19376.1.3.1.5']", namespaces=NS)
    organisms = [i.find("h:specimen/h:specimenRole/h:specimenPlayingEntity/h:code", NS) for i in isolates]
    assert [(o.get("code"), o.get("codeSystem")) for o in organisms] == [("112283007", "2.16.840.1.113883.6.96"),
                                                                         ("58800005", "2.16.840.1.113883.6.96")]
    antibiogram = isolates[0].xpath("h:component/h:organizer[@classCode='BATTERY']", namespaces=NS)[0]
    assert antibiogram.find("h:code", NS).get("code") == "18769-0"
    amoxicillin = _observation(antibiogram, "20-8")
    low = amoxicillin.find("h:value/h:low", NS)
    assert (low.get("value"), low.get("unit"), low.get("inclusive")) == ("32", "mg/L", "true")
    assert amoxicillin.find("h:interpretationCode", NS).get("code") == "R"
    assert _observation(antibiogram, "18928-2").find("h:value", NS).get("code") == "S"


def test_coded_results_are_cd_and_text_results_st():
    doc = tree("coded_serology")
    value = _observation(doc, "5196-1").find("h:value", NS)
    assert (value.get(f"{{{NS['xsi']}}}type"), value.get("code"), value.get("codeSystem")) == \
        ("CD", "260385009", "2.16.840.1.113883.6.96")
    text_doc = tree("text_only")
    values = text_doc.xpath("//h:observation[h:templateId/@root='1.3.6.1.4.1.19376.1.3.1.6']/h:value",
                            namespaces=NS)
    assert [v.get(f"{{{NS['xsi']}}}type") for v in values] == ["ST", "ST"]
    assert values[1].text == "Pas d'excès de blastes (< 5 %).\nAspect compatible avec une moelle réactionnelle."


def test_local_codes_go_in_a_translation():
    doc = tree("demo_oid_local_codes")
    tsh = _observation(doc, "3016-3").find("h:code", NS)
    assert tsh.find("h:translation", NS).get("code") == "TSH"
    crp = doc.xpath("//h:observation[h:code/h:translation/@code='CRP']/h:code", namespaces=NS)[0]
    assert crp.get("code") is None and crp.find("h:translation", NS).get("codeSystem") == \
        load("lab_code_systems")["local"]


def test_comments_after_obr_are_comment_entries_referencing_the_narrative():
    doc = tree("comments")
    refs = doc.xpath("//h:act[h:templateId/@root='1.2.250.1.213.1.1.3.32']/h:text/h:reference/@value",
                     namespaces=NS)
    texts = ["".join(doc.xpath(f"//*[@ID='{r[1:]}']//text()", namespaces=NS)) for r in refs]
    assert texts == ["Sérum légèrement hémolysé.", "Résultats à contrôler à 48 h."]


def test_unknown_unit_is_written_as_text_not_guessed():
    text = make_lab_oru([Obr("X^X^L", (Obx("NM", "2345-7^Glucose^LN", "5", "bananes/l", "3-6"),))])
    doc = etree.fromstring(render_text(text))
    value = _observation(doc, "2345-7").find("h:value", NS)
    assert (value.get(f"{{{NS['xsi']}}}type"), value.text) == ("ST", "5 bananes/l")
    assert _observation(doc, "2345-7").find("h:referenceRange/h:observationRange/h:text", NS).text == "3-6"


@pytest.mark.parametrize("raw, expected", [("3.89-6.00", ("3.89", "6.00", "true", "true")),
                                           ("3,5 - 5,1", ("3.5", "5.1", "true", "true")),
                                           ("< 5", ("", "5", "", "false")), (">=1,2", ("1.2", "", "true", "")),
                                           ("négatif", None)])
def test_reference_range_parsing(raw, expected):
    assert reference_range(raw) == expected


def test_lab_pdf_is_carried_verbatim_else_one_is_drawn():
    media = tree("lab_pdf").xpath("//h:observationMedia/h:value", namespaces=NS)[0]
    assert base64.b64decode(media.text) == PDF
    drawn = base64.b64decode(tree("biochemistry_flags").xpath("//h:observationMedia/h:value", namespaces=NS)[0].text)
    assert drawn.startswith(b"%PDF") and drawn != PDF


def test_tables_override_the_chapter_table():
    chapters = dict(load("lab_chapters"))
    chapters["by_section"] = {**chapters["by_section"], "CH": "18718-7"}
    doc = etree.fromstring(render_text(CORPUS["biochemistry_flags"](), tables={"lab_chapters": chapters}))
    assert doc.xpath("//h:section[h:templateId/@root='1.3.6.1.4.1.19376.1.3.3.2.1']/h:code/@code",
                     namespaces=NS) == ["18718-7"]


def test_rendering_is_reproducible():
    assert render("microbiology_isolates") == render("microbiology_isolates")


def test_without_a_validating_biologist_it_is_a_mapping_error():
    text = make_lab_oru([biochemistry(validator=None)])
    with pytest.raises(MappingError, match="validating biologist"):
        render_text(text)


def test_a_battery_without_results_is_left_out():
    text = make_lab_oru([Obr("EMPTY^Vide^L", (), specimen=None), biochemistry()])
    doc = etree.fromstring(render_text(text))
    assert len(doc.xpath("//h:section[h:templateId/@root='1.3.6.1.4.1.19376.1.3.3.2.2']", namespaces=NS)) == 1


def test_microbiology_isolate_texts_are_in_the_narrative():
    doc = etree.fromstring(render_text(make_lab_oru(urine_culture())))
    narrative = "".join(doc.xpath("//h:section[h:templateId/@root='1.3.6.1.4.1.19376.1.3.3.2.2']/h:text//text()",
                                  namespaces=NS))
    assert "Isolat 1 : Escherichia coli" in narrative and "Résistant" in narrative
