"""``[site]`` and ``[mappings]`` in liaison.toml: parsed by mappings, checked against the JDVs, seen in a rendered letter."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree

from mappings.cda_header import read_header
from mappings.ldl_ses import render_ldl_ses
from mappings.settings import site_and_tables
from mappings.site import Site
from router.adt import read_adt
from router.cda_schema import CdaSchemaValidator
from router.errors import ConfigError
from router.model import Participant
from router.schematron import SchematronValidator
from channels.testing.adt_messages import make_adt
from tests.support.fixtures import require_fixture

NS = {"h": "urn:hl7-org:v3"}
SITE = {"finess": "999000029", "name": "CH Exemple", "document_id_root": "1.2.250.1.999.2.3",
        "set_id_root": "1.2.250.1.999.2.4", "ipp_root": "1.2.250.1.999.2.1", "encounter_root": "1.2.250.1.999.2.2",
        "facility_type_code": "SA03", "practice_setting_code": "HAD"}
HAD = {"discharge_modes": {"by_pv1_36": {"HAD": {"code": "127"}}}}


@pytest.fixture(scope="module")
def jdv_dir() -> Path:
    return require_fixture("TestContenuCDA-3-0", "jeuxDeValeurs")


def parse(jdv_dir: Path, site: dict | None = None, **mappings):
    return site_and_tables(site or {}, {"jdv_dir": str(jdv_dir), **mappings}, {}, None)


def test_without_site_or_mappings_the_fictitious_site_and_shipped_tables_apply():
    site, tables = site_and_tables({}, {}, {}, None)
    assert site == Site()
    assert tables.get("discharge_modes")["by_pv1_36"]["8"]["code"] == "160849004"


def test_site_and_table_overrides_reach_the_settings(jdv_dir):
    site, tables = parse(jdv_dir, SITE, tables=HAD)
    assert (site.finess, site.facility_type_display) == ("999000029", "Etablissement privé PSPH")
    assert tables.get("discharge_modes")["by_pv1_36"]["HAD"] == {
        "code": "127", "system": "1.2.250.1.213.1.6.1.8", "display": "Hospitalisation à Domicile"}
    assert tables.jdv_dir == jdv_dir.resolve()


def test_an_override_outside_the_value_set_refuses_the_configuration(jdv_dir):
    bad = {"discharge_modes": {"by_pv1_36": {"9": {"code": "419620001"}}}}
    with pytest.raises(ConfigError) as caught:
        parse(jdv_dir, tables=bad)
    assert caught.value.key == "mappings.tables.discharge_modes.by_pv1_36.9"
    assert "'419620001' is not in JDV_ModaliteSortie_CISIS (1.2.250.1.213.1.1.5.74)" in str(caught.value)


def test_a_bad_finess_key_refuses_the_configuration(jdv_dir):
    with pytest.raises(ConfigError, match="Luhn key") as caught:
        parse(jdv_dir, {**SITE, "finess": "999000028"})
    assert caught.value.key == "site.finess"


@pytest.mark.parametrize("mappings, key", [
    ({"jdv_dir": "/nowhere/jeuxDeValeurs"}, "mappings.jdv_dir"),
    ({"tablez": {}}, "mappings.tablez"),
    ({"table_files": {"discharge_modes": 3}}, "mappings.table_files.discharge_modes"),
    ({"table_files": {"discharge_modes": "absent.json"}}, "mappings.table_files.discharge_modes"),
    ({"tables": {"discharge_modes": {"by_pv1_36": []}}}, "mappings.tables.discharge_modes.by_pv1_36"),
])
def test_mappings_errors_name_their_key(mappings, key, tmp_path):
    with pytest.raises(ConfigError) as caught:
        site_and_tables({}, mappings, {}, tmp_path)
    assert caught.value.key == key


def test_table_files_are_read_relative_to_the_configuration(tmp_path, jdv_dir):
    table = {"value_set": "JDV_ModaliteSortie_CISIS", "default": {"code": "GEN-092.06.03"},
             "by_pv1_36": {"8": {"code": "160849004"}, "0": {"code": "GEN-092.06.01"}}}
    (tmp_path / "modes.json").write_text(json.dumps(table), encoding="utf-8")
    _, tables = site_and_tables({}, {"jdv_dir": str(jdv_dir), "table_files": {"discharge_modes": "modes.json"},
                                     "tables": {"discharge_modes": {"by_pv1_36": {"HAD": {"code": "127"}}}}},
                                {}, tmp_path)
    modes = tables.get("discharge_modes")["by_pv1_36"]
    assert set(modes) == {"8", "0", "HAD"}
    assert modes["0"]["display"] == "Autre établissement de santé"


# --- the override in a rendered lettre de liaison -----------------------------------------------

@pytest.fixture(scope="module")
def overridden_letter(jdv_dir) -> bytes:
    site, tables = parse(jdv_dir, SITE, tables=HAD)
    adt = read_adt(make_adt("A03", disposition="HAD"))
    return render_ldl_ses(adt, letter_pdf=None, narrative=None, document_id="LDL-HAD", set_id="SET-HAD",
                          author=Participant(identifier="810000023084", family="MARTIN", given="Sophie"),
                          site=site, effective_time=datetime(2024, 3, 15, 16, 30,
                                                                      tzinfo=timezone(timedelta(hours=1))),
                          tables=tables)


def test_the_letter_carries_the_overridden_discharge_mode_and_site(overridden_letter):
    doc = etree.fromstring(overridden_letter)
    value = doc.xpath("//h:observation[h:code/@code='ORG-074']/h:value", namespaces=NS)[0]
    assert (value.get("code"), value.get("codeSystem"), value.get("displayName")) == \
        ("127", "1.2.250.1.213.1.6.1.8", "Hospitalisation à Domicile")
    header = read_header(overridden_letter)
    assert header.custodian.organisation_id == "1999000029"
    assert header.document_id == "1.2.250.1.999.2.3^LDL-HAD"
    assert (header.facility_type_code, header.practice_setting_code) == ("SA03", "HAD")
    facility = doc.xpath("//h:healthCareFacility/h:code/@displayName", namespaces=NS)
    assert facility == ["Etablissement privé PSPH"]


def test_the_overridden_letter_passes_the_xsd_and_the_ldl_ses_schematron(overridden_letter):
    CdaSchemaValidator(require_fixture("TestContenuCDA-3-0", "infrastructure", "cda")).validate(overridden_letter)
    sch = require_fixture("TestContenuCDA-3-0", "schematrons", "CI-SIS_LDL-SES_2022.01.sch")
    report = SchematronValidator(sch).validate(overridden_letter)
    assert report.failed == [], report.describe()
