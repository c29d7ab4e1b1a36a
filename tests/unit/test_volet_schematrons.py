"""Every volet is checked, none passes unchecked: the pre-send check and ``liaison validate`` pick each document's
own volet schematron from the directory's index (an admission letter by CI-SIS_LDL-EES, an imaging report by
CI-SIS_IMG-CR-IMG...), and say when there is none.

Our own tiny schematron directory and documents first (no fixtures), then the ANS bundle and examples.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from channels.app.cli.validate import EXIT_INPUT, EXIT_INVALID, EXIT_OK, default_cache_dir, run_validate
from mappings.volets import REGISTRY, UNNAMED_SCHEMATRONS
from router.cda_checks import template_ids_of
from router.cda_xml import parse_cda
from router.content_check import SchematronCheck
from router.errors import ValidationError
from router.schematron import MINIMAL_STRUCTURE, SchematronValidator
from router.schematron_index import TemplateId, build_index, schematron_index
from router.volets import VoletRegistry
from tests.support.fixtures import FIXTURES, require_fixture
from tests.support.volet_samples import (CR_IMAGERIE_SCHEMATRON, LDL_EES_SCHEMATRON, drop_section, ldl_ees,
                                         official, plant, set_attribute)

VOLET = "1.2.250.1.213.1.1.1.901"
SCHEMATRON = f"""<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">
  <ns prefix="cda" uri="urn:hl7-org:v3"/>
  <pattern id="Entete_TINY">
    <rule context="cda:ClinicalDocument[cda:templateId/@root='{VOLET}']">
      <assert id="tiny-code" role="error" test="cda:code[@code='18761-7']">a TINY document is coded 18761-7</assert>
      <assert role="error" test="cda:title">a TINY document has a title</assert>
    </rule>
  </pattern>
</schema>"""
PROFILE = """<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">
  <ns prefix="cda" uri="urn:hl7-org:v3"/>
  <pattern id="structure"><rule context="cda:ClinicalDocument">
    <assert role="error" test="cda:id">a document has an id</assert></rule></pattern>
</schema>"""
ANY_XSD = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:hl7-org:v3"
  elementFormDefault="qualified"><xs:element name="ClinicalDocument"><xs:complexType><xs:sequence>
  <xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"/></xs:sequence></xs:complexType></xs:element>
</xs:schema>"""


def document(*, templates=("1.2.250.1.213.1.1.1.1", VOLET), code="18761-7", title=True) -> bytes:
    ids = "".join(f'<templateId root="{t}"/>' for t in templates)
    return (f'<ClinicalDocument xmlns="urn:hl7-org:v3">{ids}<id root="1.2.3" extension="1"/>'
            f'<code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>{"<title>T</title>" if title else ""}'
            f'<recordTarget><patientRole><id root="1.2.250.1.213.1.4.10" extension="285057512345623"/></patientRole>'
            f'</recordTarget></ClinicalDocument>').encode()


@pytest.fixture
def tiny(tmp_path) -> Path:
    """A schematron directory of one volet (TINY, two versions) and the minimal-structure profile's path."""
    for version in ("2023.01", "2024.01"):
        (tmp_path / f"CI-SIS_TINY_{version}.sch").write_text(SCHEMATRON.replace("a TINY", f"[{version}] a TINY"),
                                                               encoding="utf-8")
    profile = tmp_path / MINIMAL_STRUCTURE
    profile.parent.mkdir(parents=True)
    profile.write_text(PROFILE, encoding="utf-8")
    return tmp_path


def test_a_volet_the_registry_does_not_describe_is_checked_by_its_indexed_schematron(tiny):
    check = SchematronCheck(tiny, VoletRegistry(()), profiles=False, index=build_index(tiny))
    report = check.check(document(), [TemplateId("1.2.250.1.213.1.1.1.1"), TemplateId(VOLET)])
    assert report.volet == report.passed == ("CI-SIS_TINY_2024.01.sch",) and report.checked
    with pytest.raises(ValidationError) as refused:
        check.check(document(code="11488-4", title=False), [TemplateId(VOLET, "2023.01")])
    assert refused.value.details == [
        "[CI-SIS_TINY_2023.01.sch] error at /ClinicalDocument (tiny-code): [2023.01] a TINY document is coded 18761-7",
        "[CI-SIS_TINY_2023.01.sch] error at /ClinicalDocument (Entete_TINY): [2023.01] a TINY document has a title"]


def test_a_byte_order_mark_does_not_stop_the_schematron(tiny):
    """Six official examples start with one; Saxon refuses it before the prolog when given text."""
    assert SchematronValidator(tiny / "CI-SIS_TINY_2024.01.sch").validate(b"\xef\xbb\xbf" + document()).ok


def test_a_document_no_volet_schematron_checks_is_reported_unchecked(tiny):
    check = SchematronCheck(tiny, VoletRegistry(()), profiles=True, index=build_index(tiny))
    report = check.check(document(templates=("1.2.250.1.213.1.1.1.1", "1.2.250.1.213.1.1.1.999")),
                         ["1.2.250.1.213.1.1.1.1", "1.2.250.1.213.1.1.1.999"])
    assert report.passed == ("ASIP-STRUCT-MIN-StrucMin.sch",) and report.volet == ()
    assert not report.checked
    assert report.unchecked_reason() == "no volet schematron for templateId 1.2.250.1.213.1.1.1.999"
    assert check(document(), [VOLET]) == 2                  # the count the journal used to give


def test_validate_reports_what_was_checked_and_each_failure_with_its_rule(tiny, tmp_path):
    schema_dir = tmp_path / "xsd"
    schema_dir.mkdir()
    (schema_dir / "CDA_extended.xsd").write_text(ANY_XSD, encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-good.xml").write_bytes(document())
    (docs / "b-bad.xml").write_bytes(document(code="11488-4"))
    (docs / "c-unknown.xml").write_bytes(document(templates=("1.2.250.1.213.1.1.1.1", "1.2.250.1.213.1.1.1.999")))
    lines: list[str] = []
    status = run_validate([docs], schema_dir=schema_dir, schematron_dir=tiny, out=lines.append,
                          cache_dir=tmp_path / "cache")
    assert status == EXIT_INVALID
    good, good_checked, bad, bad_checked, bad_rule, unknown, _, *unknown_problems, summary = lines
    assert good == f"{docs / 'a-good.xml'}: OK"
    assert good_checked.startswith("  checked: xsd; engine checks (volet templateId, INS OIDs")
    assert good_checked.endswith("; volet CI-SIS_TINY_2024.01.sch; profile ASIP-STRUCT-MIN-StrucMin.sch")
    assert bad == f"{docs / 'b-bad.xml'}: INVALID (1 problem)"
    assert bad_rule == ("  [CI-SIS_TINY_2024.01.sch] error at /ClinicalDocument (tiny-code): [2024.01] a TINY "
                        "document is coded 18761-7")
    assert unknown == f"{docs / 'c-unknown.xml'}: INVALID (2 problems)"
    assert unknown_problems == [
        "  [engine] ClinicalDocument/templateId/@root: 1.2.250.1.213.1.1.1.999 is not the templateId of a known "
        f"CI-SIS volet (no schematron in {tiny.name}/ names it)",
        "  [volet] no volet schematron for templateId 1.2.250.1.213.1.1.1.999"]
    assert summary == "3 file(s): 1 OK, 2 INVALID, 0 unreadable"
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cache").glob("*.xsl")) == ["ASIP", "CI"]


def test_an_unreadable_file_is_an_input_error_not_an_invalid_document(tiny, tmp_path):
    schema_dir = tmp_path / "xsd"
    schema_dir.mkdir()
    (schema_dir / "CDA_extended.xsd").write_text(ANY_XSD, encoding="utf-8")
    good = tmp_path / "good.xml"
    good.write_bytes(document())
    empty = tmp_path / "empty"
    empty.mkdir()
    lines: list[str] = []
    status = run_validate([tmp_path / "absent.xml", good, empty], schema_dir=schema_dir, schematron_dir=tiny,
                          out=lines.append, cache_dir=False)
    assert status == EXIT_INPUT
    assert lines[0] == f"{tmp_path / 'absent.xml'}: UNREADABLE (No such file or directory)"
    assert lines[1] == f"{good}: OK"
    assert lines[3] == f"{empty}: UNREADABLE (a directory without any .xml file)"
    assert lines[-1] == "3 file(s): 1 OK, 0 INVALID, 2 unreadable"
    assert run_validate([good], schema_dir=schema_dir, schematron_dir=tiny, out=lines.append,
                        cache_dir=False) == EXIT_OK


def test_not_xml_is_one_problem_with_its_detail_on_the_same_line(tiny, tmp_path):
    schema_dir = tmp_path / "xsd"
    schema_dir.mkdir()
    (schema_dir / "CDA_extended.xsd").write_text(ANY_XSD, encoding="utf-8")
    broken = tmp_path / "broken.xml"
    broken.write_text("<ClinicalDocument", encoding="utf-8")
    lines: list[str] = []
    assert run_validate([broken], schema_dir=schema_dir, schematron_dir=tiny, out=lines.append,
                        cache_dir=False) == EXIT_INVALID
    assert lines[0] == f"{broken}: INVALID (1 problem)"
    assert lines[1].startswith("  CDA is not well-formed XML: line 1: ")


def test_the_cache_lives_in_the_user_cache_directory(tmp_path):
    assert default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "liaison" / "schematron"
    assert default_cache_dir({}) == Path.home() / ".cache" / "liaison" / "schematron"


# --- the ANS bundle ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ans_check() -> SchematronCheck:
    directory = require_fixture("TestContenuCDA-3-0", "schematrons").resolve()
    return SchematronCheck(directory, REGISTRY, profiles=False, index=schematron_index(directory, UNNAMED_SCHEMATRONS))


def checked_by(check: SchematronCheck, cda: bytes) -> tuple[str, ...]:
    report = check.check(cda, template_ids_of(parse_cda(cda)))
    assert report.checked
    return report.volet


def refused_by(check: SchematronCheck, cda: bytes) -> str:
    with pytest.raises(ValidationError) as refused:
        check.check(cda, template_ids_of(parse_cda(cda)))
    return "\n".join(refused.value.details)


def test_an_admission_letter_is_checked_by_the_ldl_ees_schematron(ans_check):
    assert checked_by(ans_check, ldl_ees()) == (LDL_EES_SCHEMATRON,)


@pytest.mark.parametrize("planted, expected", [
    (drop_section("1.3.6.1.4.1.19376.1.5.3.1.3.13"), "FR-Allergies-et-intolerances"),
    (set_attribute("h:documentationOf/h:serviceEvent/h:code", "code", "AMB"), "fixé à 'IMP'"),
    (set_attribute("h:code", "code", "11490-0"), "18761-7"),
], ids=["allergies section missing", "service event not IMP", "code of a discharge letter"])
def test_planted_faults_in_an_admission_letter_are_caught_by_its_schematron(ans_check, planted, expected):
    details = refused_by(ans_check, plant(ldl_ees(), planted))
    assert f"[{LDL_EES_SCHEMATRON}]" in details and expected in details


def test_the_official_ldl_ees_example_is_checked_by_its_own_schematron(ans_check):
    cda = official("LDL-EES_2022.01.xml")
    assert checked_by(ans_check, cda) == (LDL_EES_SCHEMATRON,)
    assert "date de naissance" in refused_by(ans_check, plant(cda, drop_birth_time))


def drop_birth_time(doc):
    birth = doc.find("{urn:hl7-org:v3}recordTarget/{urn:hl7-org:v3}patientRole/{urn:hl7-org:v3}patient/"
                     "{urn:hl7-org:v3}birthTime")
    birth.getparent().remove(birth)


def test_the_official_cr_imagerie_example_is_checked_by_its_own_schematron(ans_check):
    cda = official("IMG_CR_IMG_2024.01.xml")
    assert checked_by(ans_check, cda) == (CR_IMAGERIE_SCHEMATRON,)
    wrong_code = refused_by(ans_check, plant(cda, set_attribute("h:code", "code", "11488-4")))
    assert f"[{CR_IMAGERIE_SCHEMATRON}]" in wrong_code and "18748-4" in wrong_code
    no_dicom = refused_by(ans_check, plant(cda, set_attribute("h:templateId[@root='1.2.840.10008.9.1']", "root",
                                                              "1.2.840.10008.9.99")))
    assert "1.2.840.10008.9.1" in no_dicom


def _is_cda(path: Path) -> bool:
    try:
        parse_cda(path.read_bytes())
    except ValidationError:
        return False                          # the bundle's self-presenting stylesheets wrap a CDA in XSLT
    return True


EXAMPLES = sorted((FIXTURES / "TestContenuCDA-3-0" / "ExemplesCDA").glob("*.xml")) if FIXTURES else []
_VOLET_OF_FILE = re.compile(r"^(?P<volet>.+?)_(?:\d+\.\d+_)?\d{4}\.\d{2}")


def test_validate_checks_every_official_example_by_its_own_volet_schematron_in_one_call(tmp_path):
    """``liaison validate DIR``: each example names the volet schematron that checked it, none goes unchecked."""
    examples = require_fixture("TestContenuCDA-3-0", "ExemplesCDA")
    lines: list[str] = []
    run_validate([examples], out=lines.append, cache_dir=tmp_path / "cache")
    checked = {Path(status.split(": ")[0]).name: detail for status, detail in zip(lines, lines[1:])
               if detail.startswith("  checked: ")}
    assert set(checked) == {p.name for p in EXAMPLES if _is_cda(p)}
    for name, detail in checked.items():
        volets = re.findall(r"volet CI-SIS_(.+?)_\d{4}\.\d{2}\.sch", detail)
        assert volets or "profile ASIP-STRUCT-MIN-StrucMin.sch" in detail, name     # a level-1 CDA: its profile
        match = _VOLET_OF_FILE.match(name)
        if volets and match:
            assert match["volet"].upper().replace("_", "-") in {v.upper() for v in volets}, (name, volets)
    unchecked = [line for line in lines if "no volet schematron" in line or "no volet templateId" in line]
    assert unchecked == []
