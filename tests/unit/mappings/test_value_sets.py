"""CI-SIS value sets read from the ANS SVS files (and from a hand-written one, to run without fixtures)."""

from __future__ import annotations

import pytest

from mappings.value_sets import ValueSetError, locate_jdv_dir, read_value_set, value_set
from tests.support.fixtures import require_fixture

SNOMED = "2.16.840.1.113883.6.96"
SVS_FILE = """<?xml version="1.0" encoding="UTF-8"?>
<RetrieveValueSetResponse xmlns="urn:ihe:iti:svs:2008">
  <ValueSet id="1.2.250.1.999.5.1" displayName="JDV_Couleurs_TEST.tabs" version="test">
    <ConceptList>
      <Concept code="R" codeSystem="1.2.250.1.999.4.1" displayName="Rouge"/>
      <Concept code="V" codeSystem="1.2.250.1.999.4.1" displayName="Vert"/>
      <Concept code="R" codeSystem="1.2.250.1.999.4.2" displayName="Rare"/>
    </ConceptList>
  </ValueSet>
</RetrieveValueSetResponse>
"""


@pytest.fixture()
def jdv_dir(tmp_path):
    (tmp_path / "JDV_Couleurs_TEST.xml").write_text(SVS_FILE, encoding="utf-8")
    (tmp_path / "Empty.xml").write_text("", encoding="utf-8")          # the ANS set has empty files too
    return tmp_path


@pytest.fixture(scope="module")
def ans_dir():
    return require_fixture("TestContenuCDA-3-0", "jeuxDeValeurs")


def test_a_svs_file_gives_oid_name_and_concepts(jdv_dir):
    jdv = read_value_set(jdv_dir / "JDV_Couleurs_TEST.xml")
    assert (jdv.oid, jdv.name, len(jdv.concepts)) == ("1.2.250.1.999.5.1", "JDV_Couleurs_TEST", 3)
    assert jdv.label == "JDV_Couleurs_TEST (1.2.250.1.999.5.1)"


def test_membership_and_display_honour_the_code_system(jdv_dir):
    jdv = value_set("JDV_Couleurs_TEST", jdv_dir)
    assert jdv.contains("R") and jdv.contains("R", "1.2.250.1.999.4.2")
    assert not jdv.contains("V", "1.2.250.1.999.4.2") and not jdv.contains("B")
    assert jdv.display("R", "1.2.250.1.999.4.2") == "Rare"
    assert jdv.display("B") is None
    assert jdv.systems("R") == ("1.2.250.1.999.4.1", "1.2.250.1.999.4.2")


def test_found_by_file_name_with_or_without_xml_and_by_oid(jdv_dir):
    by_name = value_set("JDV_Couleurs_TEST", jdv_dir)
    assert value_set("JDV_Couleurs_TEST.xml", jdv_dir) is by_name
    assert value_set("1.2.250.1.999.5.1", jdv_dir) is by_name          # read once per process


def test_an_unknown_value_set_is_an_error_naming_it(jdv_dir):
    with pytest.raises(ValueSetError, match="JDV_Absent_CISIS"):
        value_set("JDV_Absent_CISIS", jdv_dir)
    with pytest.raises(ValueSetError, match="1.2.250.1.999.5.9"):
        value_set("1.2.250.1.999.5.9", jdv_dir)


def test_a_file_that_is_not_svs_is_refused(tmp_path):
    (tmp_path / "JDV_Faux.xml").write_text("<autre/>", encoding="utf-8")
    with pytest.raises(ValueSetError, match="not an IHE SVS value set"):
        value_set("JDV_Faux", tmp_path)


def test_discharge_modes_jdv_from_the_ans_files(ans_dir):
    jdv = value_set("JDV_ModaliteSortie_CISIS", ans_dir)
    assert jdv.oid == "1.2.250.1.213.1.1.5.74"
    assert jdv.contains("160849004", SNOMED)
    assert not jdv.contains("419620001", SNOMED)            # décès is only in JDV_ModeSortie_CISIS
    assert jdv.display("127", "1.2.250.1.213.1.6.1.8") == "Hospitalisation à Domicile"


def test_facility_type_and_practice_setting_jdvs_by_oid(ans_dir):
    j02 = value_set("1.2.250.1.213.1.1.5.466", ans_dir)
    assert j02.name == "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS"
    assert j02.display("SA01", "1.2.250.1.71.4.2.4") == "Etablissement public de santé"
    j04 = value_set("1.2.250.1.213.1.1.5.467", ans_dir)
    assert j04.contains("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9")


def test_the_jdv_directory_is_found_from_configuration_or_fixtures(ans_dir, jdv_dir):
    assert locate_jdv_dir(ans_dir, env={}) == ans_dir.resolve()
    assert locate_jdv_dir(env={"LIAISON_JDV_DIR": str(ans_dir)}) == ans_dir.resolve()
    assert locate_jdv_dir(env={"LIAISON_FIXTURES": str(ans_dir.parents[1])}) == ans_dir.resolve()
