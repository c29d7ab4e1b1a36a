"""The schematron index: which schematron checks which volet, read from the schematron directory itself.

Our own tiny schematron directories first (no fixtures needed), then the ANS bundle.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mappings.volets import REGISTRY, UNNAMED_SCHEMATRONS
from router import schematron
from router.schematron import plan_schematrons
from router.schematron_index import (TemplateId, build_index, fix_include_case, schematron_digest,
                                     schematron_index, volet_template_ids)
from tests.support.fixtures import require_fixture

COMMON = "1.2.250.1.213.1.1.1.1"
FOO = "1.2.250.1.213.1.1.1.901"
BAR = "1.2.250.1.213.1.1.1.902"


def schema(body: str, includes: str = "") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">
  <ns prefix="cda" uri="urn:hl7-org:v3"/>
  {includes}
  {body}
</schema>
"""


def pattern(pattern_id: str, context: str, test: str, text: str = "broken", assert_id: str = "") -> str:
    ident = f' id="{assert_id}"' if assert_id else ""
    return f"""<pattern xmlns="http://purl.oclc.org/dsdl/schematron" id="{pattern_id}">
  <rule context="{context}"><assert{ident} role="error" test="{test}">{text}</assert></rule>
</pattern>"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def bundle(tmp_path) -> Path:
    """FOO in two versions (its templateId in an included Entete), BAR by a rule context, a profile-like file."""
    entete = pattern("Entete_FOO", "cda:ClinicalDocument", f"cda:templateId[@root='{FOO}']")
    for version in ("2023.01", "2024.01"):
        write(tmp_path / f"include/FOO_{version}/Entete_FOO.sch", entete)
        write(tmp_path / f"CI-SIS_FOO_{version}.sch",
              schema("", f'<include href="include/FOO_{version}/Entete_FOO.sch"/>'))
    write(tmp_path / "CI-SIS_BAR_2022.01.sch", schema(
        f"<!-- {COMMON} and 1.2.250.1.213.1.1.1.903 only in comments -->"
        + pattern("variables", f"*[cda:templateId/@root='{BAR}']", ".//cda:section")
        + pattern("common", "cda:ClinicalDocument", f"cda:templateId[@root='{COMMON}']")))
    write(tmp_path / "GENERIC.sch", schema(pattern("p", "cda:ClinicalDocument", "cda:code")))
    return tmp_path


def test_the_index_names_each_schematron_by_the_volet_template_id_it_checks(bundle):
    index = build_index(bundle)
    assert {e.name: sorted(e.template_ids) for e in index} == {
        "CI-SIS_BAR_2022.01.sch": [BAR], "CI-SIS_FOO_2023.01.sch": [FOO], "CI-SIS_FOO_2024.01.sch": [FOO]}
    assert index.template_ids == {FOO, BAR}                 # not the common templateId, not a comment
    assert [(e.volet, e.version) for e in index] == [("BAR", "2022.01"), ("FOO", "2023.01"), ("FOO", "2024.01")]


def test_the_newest_version_is_chosen_unless_the_extension_names_one(bundle):
    index = build_index(bundle)
    assert index.for_template(TemplateId(FOO)).name == "CI-SIS_FOO_2024.01.sch"
    assert index.for_template(TemplateId(FOO, "2023.01")).name == "CI-SIS_FOO_2023.01.sch"
    assert index.for_template(TemplateId(FOO, "2019.01")).name == "CI-SIS_FOO_2024.01.sch"
    assert index.for_template(TemplateId("1.2.250.1.213.1.1.1.999")) is None


def test_a_family_template_id_yields_to_the_specific_one():
    family, member = "1.2.250.1.213.1.1.1.5", "1.2.250.1.213.1.1.1.5.1"
    declared = ["2.16.840.1.113883.2.8.2.1", COMMON, family, TemplateId(member, "2024.01"), "1.3.6.1.4.1.19376.1.2.20"]
    assert volet_template_ids(declared) == [TemplateId(member, "2024.01")]


def test_a_family_schematron_is_indexed_under_its_member(tmp_path):
    family, member = "1.2.250.1.213.1.1.1.5", "1.2.250.1.213.1.1.1.5.1"
    write(tmp_path / "CI-SIS_CSE-X_2024.01.sch", schema(
        pattern("a", "cda:ClinicalDocument", f"cda:templateId[@root='{family}'] and cda:templateId[@root='{member}']")))
    assert build_index(tmp_path).template_ids == {member}


def test_a_schematron_with_a_missing_include_is_left_out_and_said_broken(bundle):
    write(bundle / "CI-SIS_BAZ_2024.01.sch", schema(pattern("p", f"*[cda:templateId/@root='{BAR}9']", "true()"),
                                                   '<include href="include/absent.sch"/>'))
    index = build_index(bundle)
    assert "CI-SIS_BAZ_2024.01.sch" in index.broken and "include/absent.sch" in index.broken["CI-SIS_BAZ_2024.01.sch"]
    assert not index.knows(f"{BAR}9")


def test_an_include_spelled_in_another_case_is_found(tmp_path):
    """The ANS bundle was written on Windows: ``entrees/`` in the .sch, ``Entrees/`` on disk."""
    write(tmp_path / "include/Entrees/Entete.sch", pattern("E", "cda:ClinicalDocument", f"cda:templateId[@root='{FOO}']"))
    sch = write(tmp_path / "CI-SIS_QUX_2024.01.sch", schema("", '<include href="include/entrees/entete.sch"/>'))
    assert build_index(tmp_path).knows(FOO)
    assert 'href="include/Entrees/Entete.sch"' in fix_include_case(sch)
    assert fix_include_case(tmp_path / "include/Entrees/Entete.sch") == \
        (tmp_path / "include/Entrees/Entete.sch").read_text(encoding="utf-8")     # nothing to mend: unchanged


def test_extra_pairs_index_a_schematron_that_names_no_template_id(tmp_path):
    write(tmp_path / "CI-SIS_MUTE_2023.01.sch", schema(pattern("p", "cda:ClinicalDocument", "cda:code")))
    assert len(build_index(tmp_path)) == 0
    index = build_index(tmp_path, {FOO: "CI-SIS_MUTE_2023.01.sch", BAR: "CI-SIS_ABSENT_2023.01.sch"})
    assert index.for_template(FOO).name == "CI-SIS_MUTE_2023.01.sch" and not index.knows(BAR)


def test_the_index_is_built_once_per_directory(bundle):
    assert schematron_index(bundle.resolve()) is schematron_index(bundle.resolve())


def test_the_digest_covers_the_includes(bundle):
    sch = bundle / "CI-SIS_FOO_2024.01.sch"
    before = schematron_digest(sch)
    assert schematron_digest(sch) == before
    include = bundle / "include/FOO_2024.01/Entete_FOO.sch"
    include.write_text(include.read_text(encoding="utf-8").replace("broken", "still broken"), encoding="utf-8")
    assert schematron_digest(sch) != before


def test_the_cached_xslt_is_regenerated_when_an_include_changes(bundle, tmp_path):
    cache = tmp_path / "cache"
    sch = bundle / "CI-SIS_FOO_2024.01.sch"
    first = schematron.generate_xslt(sch, cache_dir=cache)
    assert "broken" in first and len(list(cache.glob("CI-SIS_FOO_2024.01-*.xsl"))) == 1
    include = bundle / "include/FOO_2024.01/Entete_FOO.sch"
    include.write_text(include.read_text(encoding="utf-8").replace("broken", "edited rule"), encoding="utf-8")
    second = schematron.generate_xslt(sch, cache_dir=cache)
    assert "edited rule" in second and "broken" not in second
    assert len(list(cache.glob("CI-SIS_FOO_2024.01-*.xsl"))) == 2          # a new key, the stale entry unused


def test_a_cache_hit_skips_the_generation(bundle, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    sch = bundle / "CI-SIS_FOO_2024.01.sch"
    text = schematron.generate_xslt(sch, cache_dir=cache)
    monkeypatch.setattr(schematron, "_skeleton", lambda: pytest.fail("generated again despite the cache"))
    assert schematron.generate_xslt(sch, cache_dir=cache) == text


def test_an_unwritable_cache_only_costs_the_generation(bundle, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    assert "broken" in schematron.generate_xslt(bundle / "CI-SIS_FOO_2024.01.sch", cache_dir=blocker / "cache")


def test_the_plan_takes_registry_volets_then_the_index_then_the_profile(bundle):
    plan = plan_schematrons(["2.16.840.1.113883.2.8.2.1", COMMON, TemplateId(FOO, "2023.01")], REGISTRY,
                            schematron_dir=bundle, index=build_index(bundle))
    assert [p.name for p in plan.paths] == ["CI-SIS_FOO_2023.01.sch", "ASIP-STRUCT-MIN-StrucMin.sch"]
    assert plan.checked
    ldl = plan_schematrons([COMMON, "1.2.250.1.213.1.1.1.29"], REGISTRY, schematron_dir=bundle,
                           index=build_index(bundle), profiles=False)
    assert [p.name for p in ldl.paths] == ["CI-SIS_LDL-SES_2022.01.sch"]      # the registry's own schematron


def test_the_plan_says_what_no_volet_schematron_checks(bundle):
    index = build_index(bundle)
    unknown = plan_schematrons([COMMON, "1.2.250.1.213.1.1.1.999"], REGISTRY, schematron_dir=bundle, index=index,
                               profiles=False)
    assert unknown.unchecked == ("1.2.250.1.213.1.1.1.999",) and not unknown.checked and not unknown.volet
    nothing = plan_schematrons(["2.16.840.1.113883.2.8.2.1", COMMON], REGISTRY, schematron_dir=bundle, index=index)
    assert nothing.no_volet and not nothing.checked
    level1 = ["2.16.840.1.113883.2.8.2.1", COMMON, "1.3.6.1.4.1.19376.1.2.20"]
    assert plan_schematrons(level1, REGISTRY, schematron_dir=bundle, index=index).checked   # the profile is its model
    assert plan_schematrons(level1, REGISTRY, schematron_dir=bundle, index=index, profiles=False).unchecked == (
        "1.3.6.1.4.1.19376.1.2.20",)


# --- the ANS bundle ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ans_index():
    directory = require_fixture("TestContenuCDA-3-0", "schematrons")
    return schematron_index(directory.resolve(), UNNAMED_SCHEMATRONS)


@pytest.mark.parametrize("template, extension, expected", [
    ("1.2.250.1.213.1.1.1.21", "2022.01", "CI-SIS_LDL-EES_2022.01.sch"),
    ("1.2.250.1.213.1.1.1.45", "2024.01", "CI-SIS_IMG-CR-IMG_2024.01.sch"),
    ("1.2.250.1.213.1.1.1.37", "2023.01", "CI-SIS_VAC_2023.01.sch"),
    ("1.2.250.1.213.1.1.1.5.1", "2024.01", "CI-SIS_CSE-CS8_2024.01.sch"),     # its include is spelled in another case
    ("1.2.250.1.213.1.1.1.5.1", "", "CI-SIS_CSE-CS8_2025.01.sch"),            # no version said: the newest
    ("1.2.250.1.213.1.1.1.13", "201310", "CI-SIS_VSM_2023.01.sch"),
    ("1.2.250.1.213.1.1.1.18", "2022.01", "CI-SIS_OPH-CR-RTN_2022.01.sch"),   # names no templateId: mappings say
])
def test_the_ans_volets_are_found_by_their_template_id(ans_index, template, extension, expected):
    assert ans_index.for_template(TemplateId(template, extension)).name == expected


def test_the_whole_ans_bundle_is_indexed_and_the_broken_schematron_is_said(ans_index):
    assert len(ans_index) >= 50
    assert set(ans_index.broken) == {"CI-SIS_BIO-CR-BIO_2023.01.sch"}     # its include folder is missing in the bundle


def test_the_registry_schematrons_agree_with_the_index(ans_index):
    """A registry volet's schematron is the one the index would pick for its templateId, when the index knows it."""
    for volet in REGISTRY:
        for template in volet.template_ids:
            entry = ans_index.for_template(template)
            assert entry is None or entry.name == volet.schematron, (volet.name, template, entry)
        if volet.schematron:
            assert (ans_index.directory / volet.schematron).is_file()
