"""Code tables as data: built-in JSON, a site's overrides merged in, every code checked against its JDV."""

from __future__ import annotations

import json

import pytest

from mappings import codes
from mappings.cda_level1 import document_type_for
from mappings.ldl_ses import discharge_mode
from mappings.tables import Tables, builtin_names
from router.errors import ConfigError
from tests.support.fixtures import require_fixture

SNOMED = "2.16.840.1.113883.6.96"
FINESS_CAT = "1.2.250.1.213.1.6.1.8"


@pytest.fixture(scope="module")
def jdv_dir():
    return require_fixture("TestContenuCDA-3-0", "jeuxDeValeurs")


def modes(**entries) -> dict:
    return {"discharge_modes": {"by_pv1_36": entries}}


def test_every_builtin_table_passes_its_value_set(jdv_dir):
    tables = Tables.load(jdv_dir=jdv_dir)
    assert {"discharge_modes", "txa_document_types"} <= set(tables.names()) == set(builtin_names())
    assert tables.check() == []


def test_an_added_entry_joins_the_builtin_ones(jdv_dir):
    tables = Tables.load(modes(HAD={"code": "127", "system": FINESS_CAT, "display": "HAD"}), jdv_dir=jdv_dir)
    table = tables.get("discharge_modes")
    assert discharge_mode("HAD", table) == ("127", FINESS_CAT, "HAD")
    assert discharge_mode("8", table) == ("160849004", SNOMED, "retour au domicile")
    assert discharge_mode("9", table) == discharge_mode("9")      # default kept


def test_a_replaced_coded_entry_is_replaced_whole_not_mixed(jdv_dir):
    tables = Tables.load(modes(**{"8": {"code": "500"}}), jdv_dir=jdv_dir)
    code, system, display = discharge_mode("8", tables.get("discharge_modes"))
    assert (code, system) == ("500", FINESS_CAT)                 # not SNOMED, the old entry's system
    assert display == "Etablissement d'hébergement pour personnes âgées dépendantes"   # from the JDV


def test_a_partial_entry_amends_only_what_it_names(jdv_dir):
    tables = Tables.load(modes(**{"8": {"display": "Retour à domicile"}}), jdv_dir=jdv_dir)
    assert discharge_mode("8", tables.get("discharge_modes")) == ("160849004", SNOMED, "Retour à domicile")


def test_overrides_leave_the_shipped_table_untouched(jdv_dir):
    Tables.load(modes(**{"8": {"code": "500"}}), jdv_dir=jdv_dir)
    assert codes.load("discharge_modes")["by_pv1_36"]["8"]["code"] == "160849004"
    assert "system" not in json.dumps(codes.load("txa_document_types")["by_txa2"])


def test_a_code_outside_the_value_set_is_reported_with_key_and_code(jdv_dir):
    tables = Tables.load(modes(DCD={"code": "419620001", "system": SNOMED, "display": "Décès"}), jdv_dir=jdv_dir)
    [problem] = tables.check()
    assert problem.startswith("mappings.tables.discharge_modes.by_pv1_36.DCD: code '419620001'")
    assert "JDV_ModaliteSortie_CISIS (1.2.250.1.213.1.1.5.74)" in problem
    with pytest.raises(ConfigError) as caught:
        tables.require_valid()
    assert caught.value.key == "mappings.tables.discharge_modes.by_pv1_36.DCD"


def test_a_code_in_the_wrong_system_names_the_right_one(jdv_dir):
    tables = Tables.load(modes(**{"5": {"code": "500", "system": SNOMED, "display": "EHPAD"}}), jdv_dir=jdv_dir)
    [problem] = tables.check()
    assert f"in code system {SNOMED}" in problem and f"(it is in code system {FINESS_CAT})" in problem


def test_txa2_override_is_checked_against_jdv_j07_and_the_types(jdv_dir):
    good = Tables.load({"txa_document_types": {"by_txa2": {"CRRAD": "18748-4"}}}, jdv_dir=jdv_dir)
    assert good.check() == []
    assert document_type_for("CRRAD", good.get("txa_document_types"))[0] == "18748-4"
    bad = Tables.load({"txa_document_types": {"by_txa2": {"CRX": "00000-0"}}}, jdv_dir=jdv_dir)
    problems = bad.check()
    assert any(p.startswith("mappings.tables.txa_document_types.by_txa2.CRX: code '00000-0' in code system "
                            "2.16.840.1.113883.6.1 is not in JDV_J07_XdsTypeCode_CISIS") for p in problems)
    assert any("is not a key of 'types'" in p for p in problems)    # the lookup would miss too


def test_a_new_type_label_must_be_a_jdv_j07_code(jdv_dir):
    tables = Tables.load({"txa_document_types": {"types": {"99999-9": "Inventé"}}}, jdv_dir=jdv_dir)
    assert tables.check() == ["mappings.tables.txa_document_types.types.99999-9: code '99999-9' in code system "
                              "2.16.840.1.113883.6.1 is not in JDV_J07_XdsTypeCode_CISIS (1.2.250.1.213.1.1.5.471)"]


def test_a_file_replaces_a_table_and_inline_entries_amend_it(tmp_path, jdv_dir):
    (tmp_path / "modes.json").write_text(json.dumps({
        "value_set": "JDV_ModaliteSortie_CISIS",
        "default": {"code": "GEN-092.06.01"},
        "by_pv1_36": {"8": {"code": "160849004"}}}), encoding="utf-8")
    tables = Tables.load(modes(**{"7": {"code": "127"}}), {"discharge_modes": "modes.json"},
                         jdv_dir=jdv_dir, base=tmp_path)
    table = tables.get("discharge_modes")
    assert set(table["by_pv1_36"]) == {"8", "7"}                   # "6" of the shipped table is gone
    assert discharge_mode("6", table)[0] == "GEN-092.06.01"
    assert tables.check() == []


def test_a_bad_code_in_a_table_file_names_the_file_key(tmp_path, jdv_dir):
    (tmp_path / "modes.json").write_text(json.dumps({
        "value_set": "JDV_ModaliteSortie_CISIS", "default": {"code": "X1", "system": "1.2", "display": "x"},
        "by_pv1_36": {}}), encoding="utf-8")
    tables = Tables.load(files={"discharge_modes": str(tmp_path / "modes.json")}, jdv_dir=jdv_dir)
    [problem] = tables.check()
    assert problem.startswith(f"mappings.table_files.discharge_modes ({tmp_path / 'modes.json'}): default: code 'X1'")


def test_a_table_of_any_name_is_checked_against_the_value_set_it_declares(tmp_path):
    jdv = tmp_path / "jdv"
    jdv.mkdir()
    (jdv / "JDV_Couleurs_TEST.xml").write_text(
        '<RetrieveValueSetResponse xmlns="urn:ihe:iti:svs:2008"><ValueSet id="1.2.250.1.999.5.1" '
        'displayName="JDV_Couleurs_TEST"><ConceptList><Concept code="R" codeSystem="1.2.250.1.999.4.1" '
        'displayName="Rouge"/></ConceptList></ValueSet></RetrieveValueSetResponse>', encoding="utf-8")
    (tmp_path / "flags.json").write_text(json.dumps({
        "value_set": {"id": "1.2.250.1.999.5.1", "codes": ["by_flag.*"]}, "coding_scheme": "1.2.250.1.999.4.1",
        "by_flag": {"H": "R"}}), encoding="utf-8")
    tables = Tables.load({"flags": {"by_flag": {"L": "B"}}}, {"flags": tmp_path / "flags.json"}, jdv_dir=jdv)
    problems = [p for p in tables.check() if "flags" in p]
    assert problems == ["mappings.tables.flags.by_flag.L: code 'B' in code system 1.2.250.1.999.4.1 is not in "
                        "JDV_Couleurs_TEST (1.2.250.1.999.5.1)"]


def test_without_jdv_files_a_code_only_entry_cannot_be_completed():
    table = json.loads(json.dumps(codes.load("discharge_modes")))
    table["by_pv1_36"]["HAD"] = {"code": "127"}
    tables = Tables({"discharge_modes": table}, inline={"discharge_modes": {("by_pv1_36", "HAD")}}, jdv_dir=None)
    assert tables.check() == ["mappings.tables.discharge_modes.by_pv1_36.HAD: coded entry without system or "
                              "display (give it, or make the JDV files available to fill it)"]


@pytest.mark.parametrize("overrides, key, message", [
    ({"nope": {"a": "b"}}, "mappings.tables.nope", "no table 'nope' to amend"),
    ({"discharge_modes": "x"}, "mappings.tables.discharge_modes", "expected a table of entries"),
    ({"discharge_modes": {"by_pv1_36": "8"}}, "mappings.tables.discharge_modes.by_pv1_36",
     "expected a table, got a string"),
    ({"discharge_modes": {"by_pv1_36": {"8": "500"}}}, "mappings.tables.discharge_modes.by_pv1_36.8",
     "expected a coded entry, got a string"),
    ({"txa_document_types": {"by_txa2": {"CN": 11488}}}, "mappings.tables.txa_document_types.by_txa2.CN",
     "expected a string, got int"),
    ({"discharge_modes": {"by_pv1_36": {"8": {"code": 5}}}}, "mappings.tables.discharge_modes.by_pv1_36.8",
     "strings only"),
])
def test_a_malformed_override_is_refused_naming_its_key(overrides, key, message):
    with pytest.raises(ConfigError, match=message) as caught:
        Tables.load(overrides)
    assert caught.value.key == key


def test_a_missing_or_broken_table_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="absent.json does not exist; expected a JSON table"):
        Tables.load(files={"discharge_modes": tmp_path / "absent.json"})
    (tmp_path / "latin1.json").write_bytes('{"é": 1}'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.json is not UTF-8 text \(byte 0xe9"):
        Tables.load(files={"discharge_modes": tmp_path / "latin1.json"})
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON") as caught:
        Tables.load(files={"discharge_modes": tmp_path / "broken.json"})
    assert caught.value.key == "mappings.table_files.discharge_modes"


def test_an_unknown_table_name_is_a_key_error():
    with pytest.raises(KeyError, match="lab_nope"):
        Tables.load().get("lab_nope")


def test_tables_read_as_a_mapping_of_name_to_table():
    tables = Tables.load(jdv_dir=False)
    assert "discharge_modes" in tables and "no_such_table" not in tables
    assert tables["discharge_modes"] is tables.get("discharge_modes")
