"""The CI-SIS schematrons run through Saxon: official examples pass, planted errors are reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from channels.app.cli.validate import run_validate
from mappings.volets import REGISTRY
from router import schematron
from router.errors import ConfigError
from router.schematron import (MINIMAL_STRUCTURE, Finding, SchematronReport, SchematronValidator,
                               locate_schematron_dir, schematrons_for, validate_document)
from tests.support.fixtures import require_fixture

H = "{urn:hl7-org:v3}"
NS = {"h": "urn:hl7-org:v3"}
LDL_SES = "CI-SIS_LDL-SES_2022.01.sch"
CR_BIO = "CI-SIS_BIO-CR-BIO_2024.01.sch"


@pytest.fixture(scope="module")
def schematron_dir() -> Path:
    return require_fixture("TestContenuCDA-3-0", "schematrons")


def example(name: str) -> bytes:
    return require_fixture("TestContenuCDA-3-0", "ExemplesCDA", name).read_bytes()


def plant(cda: bytes, change) -> bytes:
    doc = etree.fromstring(cda)
    change(doc)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def drop_discharge_medications(doc):
    code = doc.xpath("//h:section/h:code[@code='10183-2']", namespaces=NS)[0]
    component = code.getparent().getparent()
    component.getparent().remove(component)


def drop_birth_time(doc):
    birth = doc.find(f"{H}recordTarget/{H}patientRole/{H}patient/{H}birthTime")
    birth.getparent().remove(birth)


def wrong_document_code(doc):
    doc.find(f"{H}code").set("code", "11488-4")


def texts(reports: list[SchematronReport]) -> str:
    return "\n".join(f.text for r in reports for f in r.errors)


@pytest.mark.parametrize("document, volet", [("LDL-SES_2022.01.xml", LDL_SES),
                                             ("BIO-CR-BIO_2024.01_TSH_1.xml", CR_BIO)])
def test_official_example_passes_its_volet_and_the_minimal_structure(schematron_dir, document, volet):
    reports = validate_document(example(document), volet_schematron=schematron_dir / volet,
                                profiles=[schematron_dir / MINIMAL_STRUCTURE])
    assert [r.schematron for r in reports] == [volet, Path(MINIMAL_STRUCTURE).name]
    assert [r.failed for r in reports] == [[], []]
    assert all(r.ok for r in reports)


def test_missing_discharge_medications_section_is_reported_by_the_volet(schematron_dir):
    cda = plant(example("LDL-SES_2022.01.xml"), drop_discharge_medications)
    report = SchematronValidator(schematron_dir / LDL_SES).validate(cda)
    assert not report.ok
    assert "FR-Traitements-a-la-sortie" in texts([report])


def test_missing_birth_time_is_reported(schematron_dir):
    cda = plant(example("LDL-SES_2022.01.xml"), drop_birth_time)
    volet, profile = validate_document(cda, volet_schematron=schematron_dir / LDL_SES,
                                       profiles=[schematron_dir / MINIMAL_STRUCTURE])
    assert "date de naissance" in texts([volet])
    assert "birthTime" in texts([profile])
    assert not volet.ok and not profile.ok


def test_wrong_document_code_is_reported(schematron_dir):
    cda = plant(example("LDL-SES_2022.01.xml"), wrong_document_code)
    report = SchematronValidator(schematron_dir / LDL_SES).validate(cda)
    [finding] = report.failed
    assert "11490-0" in finding.text
    assert "ClinicalDocument" in finding.location


def test_wrong_code_is_reported_by_the_cr_bio_volet(schematron_dir):
    cda = example("BIO-CR-BIO_2024.01_TSH_1.xml").replace(b'code="11502-2"', b'code="11502-9"', 1)
    report = SchematronValidator(schematron_dir / CR_BIO).validate(cda)
    assert not report.ok
    assert "11502-2" in texts([report])


def test_the_executable_is_compiled_once_per_schematron(schematron_dir):
    first = SchematronValidator(schematron_dir / LDL_SES)
    second = SchematronValidator(schematron_dir / LDL_SES)
    assert first._executable is second._executable


def test_warnings_do_not_make_a_report_invalid():
    warning = Finding("w1", "warning", "/ClinicalDocument", "a warning")
    assert SchematronReport("x.sch", failed=[warning]).ok
    assert not SchematronReport("x.sch", failed=[warning, warning._replace(role="")]).ok
    assert not SchematronReport("x.sch", failed=[warning._replace(role="fatal")]).ok


def test_schematrons_for_picks_the_volet_then_the_profile(tmp_path):
    assert schematrons_for(["2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.29"], REGISTRY, schematron_dir=tmp_path) == [
        tmp_path / LDL_SES, tmp_path / MINIMAL_STRUCTURE]
    assert schematrons_for(["1.2.250.1.213.1.1.1.55"], REGISTRY, schematron_dir=tmp_path, profiles=False) == [
        tmp_path / CR_BIO]
    assert schematrons_for(["1.2.3"], REGISTRY, schematron_dir=tmp_path) == [tmp_path / MINIMAL_STRUCTURE]


def test_locate_schematron_dir_prefers_the_environment_variable(tmp_path):
    profile = tmp_path / MINIMAL_STRUCTURE
    profile.parent.mkdir(parents=True)
    profile.write_text("<schema/>")
    assert locate_schematron_dir(env={"LIAISON_SCHEMATRON_DIR": str(tmp_path)}) == tmp_path.resolve()
    assert locate_schematron_dir(tmp_path / "nowhere", env={"LIAISON_SCHEMATRON_DIR": str(tmp_path)}) == \
        tmp_path.resolve()


def test_a_changed_skeleton_fails_loudly(monkeypatch):
    monkeypatch.setattr(schematron, "_SKELETON_XSLT1_TEMPLATES", ("text a new lxml no longer has",))
    schematron._skeleton.cache_clear()
    try:
        with pytest.raises(ConfigError, match="not the one this patch expects"):
            schematron._skeleton()
    finally:
        schematron._skeleton.cache_clear()


def test_generated_xslt_is_reused_from_the_cache_dir(schematron_dir, tmp_path):
    text = schematron.generate_xslt(schematron_dir / LDL_SES, cache_dir=tmp_path)
    [cached] = tmp_path.glob("CI-SIS_LDL-SES_2022.01-*.xsl")
    assert cached.read_text(encoding="utf-8") == text
    cached.write_text(text + "<!-- from the cache -->", encoding="utf-8")
    assert schematron.generate_xslt(schematron_dir / LDL_SES, cache_dir=tmp_path).endswith("from the cache -->")


def test_missing_schematron_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        SchematronValidator(tmp_path / "absent.sch")


def test_run_validate_prints_ok_or_the_failed_assertions(schematron_dir, tmp_path):
    schema_dir = require_fixture("TestContenuCDA-3-0", "infrastructure", "cda")
    good = tmp_path / "good.xml"
    good.write_bytes(example("LDL-SES_2022.01.xml"))
    bad = tmp_path / "bad.xml"
    bad.write_bytes(plant(example("LDL-SES_2022.01.xml"), drop_birth_time))
    lines: list[str] = []
    invalid = run_validate([good, bad], schema_dir=schema_dir, schematron_dir=schematron_dir, out=lines.append,
                           cache_dir=tmp_path / "cache")
    assert invalid == 1
    assert lines[0] == f"{good}: OK"
    assert lines[1].startswith("  checked: xsd; engine checks (") and f"volet {LDL_SES}" in lines[1]
    assert lines[2].startswith(f"{bad}: INVALID")
    details = "\n".join(lines[4:])
    assert f"[{LDL_SES}]" in details and "date de naissance" in details
    assert "[ASIP-STRUCT-MIN-StrucMin.sch]" in details and "birthTime" in details
