"""The engine checks the CI-SIS schematrons do not make: known volet, no look-alike INS OID, type code in the JDV.

Tiny documents of our own first (no fixtures), then the ANS examples and value sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mappings.value_sets import document_type_codes
from mappings.volets import REGISTRY, UNNAMED_SCHEMATRONS
from router.cda_checks import CdaChecks, CodeSet, template_ids_of
from router.cda_xml import parse_cda
from router.errors import ValidationError
from router.schematron_index import TemplateId, build_index, schematron_index
from tests.support.fixtures import require_fixture
from tests.support.volet_samples import (LDL_EES_TEMPLATE, LDL_SES_TEMPLATE, ldl_ees, official, plant,
                                         set_attribute)

KNOWN = "1.2.250.1.213.1.1.1.901"


@dataclass(frozen=True)
class StubCodes:
    """A value set of a few codes (the shape of mappings.value_sets.ValueSet)."""

    name: str
    codes: frozenset[str]

    @property
    def label(self) -> str:
        return f"{self.name} (1.2.3)"

    def contains(self, code: str, system: str | None = None) -> bool:
        return code in self.codes


J07 = StubCodes("JDV_J07_XdsTypeCode_CISIS", frozenset({"11490-0", "18761-7", "11502-2"}))
J66 = StubCodes("JDV_J66_TypeCode_DMP", frozenset({"11490-0", "11502-2"}))


def cda(*, templates=("2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.1", KNOWN), code="18761-7",
        patient_root="1.2.250.1.213.1.4.10", other_ids: tuple[str, ...] = ()) -> bytes:
    template_xml = "".join(f'<templateId root="{t}"/>' for t in templates)
    others = "".join(f'<id root="{root}" extension="X{n}"/>' for n, root in enumerate(other_ids))
    return f"""<ClinicalDocument xmlns="urn:hl7-org:v3">{template_xml}<id root="1.2.3" extension="D1"/>
<code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>
<recordTarget><patientRole><id root="1.2.250.1.999.1" extension="IPP1"/><id root="{patient_root}" extension="285057512345623"/>{others}
</patientRole></recordTarget></ClinicalDocument>""".encode()


@pytest.fixture
def index(tmp_path):
    (tmp_path / "CI-SIS_KNOWN_2024.01.sch").write_text(
        f"""<schema xmlns="http://purl.oclc.org/dsdl/schematron"><pattern><rule context="*[cda:templateId/@root='{KNOWN}']">
        <assert test="true()">ok</assert></rule></pattern></schema>""", encoding="utf-8")
    return build_index(tmp_path)


@pytest.fixture
def checks(index) -> CdaChecks:
    return CdaChecks(REGISTRY, index=index, type_codes=J07, dmp_type_codes=J66)


def refusal(checks: CdaChecks, document: bytes, **options) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        checks(document, **options)
    return refused.value.details


def test_a_document_of_a_known_volet_passes_and_the_journal_is_told_what_was_checked(checks):
    covered = checks(cda())
    assert covered == ("volet templateId, INS OIDs, code in JDV_J07_XdsTypeCode_CISIS, code of the volet")
    assert "JDV_J66_TypeCode_DMP" in checks.describe(to_dmp=True)


def test_a_look_alike_ins_root_is_refused_naming_the_element_and_the_oid(checks):
    [detail] = refusal(checks, cda(patient_root="1.2.250.1.213.1.4.100"))
    assert detail.startswith("ClinicalDocument/recordTarget/patientRole/id[2]/@root: 1.2.250.1.213.1.4.100 is under "
                             "the INS arc")
    assert "285057512345623" not in detail                    # never the matricule: patient data


def test_the_retired_ins_c_is_refused_and_a_social_security_number_is_not(checks):
    [detail] = refusal(checks, cda(other_ids=("1.2.250.1.213.1.4.2",)))
    assert "id[3]/@root: 1.2.250.1.213.1.4.2 " in detail
    checks(cda(other_ids=("1.2.250.1.213.1.4.13", "1.2.250.1.213.1.4.14", "1.2.250.1.213.1.4.8")))


def test_an_unknown_volet_template_id_is_refused(checks):
    [detail] = refusal(checks, cda(templates=("1.2.250.1.213.1.1.1.1", "1.2.250.1.213.1.1.1.9011")))
    assert detail.startswith("ClinicalDocument/templateId/@root: 1.2.250.1.213.1.1.1.9011 is not the templateId of "
                             "a known CI-SIS volet")


def test_without_the_index_only_a_document_naming_no_volet_is_refused():
    checks = CdaChecks(REGISTRY, type_codes=J07)
    checks(cda(templates=("1.2.250.1.213.1.1.1.1", "1.2.250.1.213.1.1.1.9011")))   # cannot tell: let the schematrons say
    [detail] = refusal(checks, cda(templates=("2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.1")))
    assert detail.startswith("ClinicalDocument/templateId: no volet templateId")
    assert "registry only" in checks.describe()


def test_a_level_1_document_names_its_volet_by_xds_sd(checks):
    checks(cda(templates=("1.2.250.1.213.1.1.1.1", "1.3.6.1.4.1.19376.1.2.20"), code="11502-2"))


def test_a_code_outside_jdv_j07_is_refused(checks):
    [detail] = refusal(checks, cda(code="99999-9"))
    assert detail == ("ClinicalDocument/code/@code: 99999-9 (codeSystem 2.16.840.1.113883.6.1) is not in "
                      "JDV_J07_XdsTypeCode_CISIS (1.2.3)")


def test_jdv_j66_applies_only_to_a_document_bound_for_the_dmp(checks):
    checks(cda(code="18761-7"))
    [detail] = refusal(checks, cda(code="18761-7"), to_dmp=True)
    assert detail.startswith("ClinicalDocument/code/@code: 18761-7") and detail.endswith("JDV_J66_TypeCode_DMP (1.2.3)")


def test_the_code_must_be_the_one_of_a_registry_volet(checks):
    [detail] = refusal(checks, cda(templates=("1.2.250.1.213.1.1.1.1", LDL_SES_TEMPLATE), code="18761-7"))
    assert detail == (f"ClinicalDocument/code/@code: 18761-7 but the volet LDL-SES 2022.01 (templateId "
                      f"{LDL_SES_TEMPLATE}) is coded 11490-0")


def test_every_problem_is_reported_at_once(checks):
    details = refusal(checks, cda(templates=("1.2.250.1.213.1.1.1.9011",), code="1-8", patient_root="1.2.250.1.213.1.4"))
    assert [d.split(":")[0] for d in details] == ["ClinicalDocument/templateId/@root",
                                                   "ClinicalDocument/recordTarget/patientRole/id[2]/@root",
                                                   "ClinicalDocument/code/@code"]


def test_template_ids_keep_their_extension():
    assert template_ids_of(parse_cda(cda(templates=(KNOWN,)).replace(b'"/>', b'" extension="2024.01"/>', 1))) == [
        TemplateId(KNOWN, "2024.01")]


# --- with the ANS examples, schematrons and value sets -----------------------------------------------

@pytest.fixture(scope="module")
def ans_checks() -> CdaChecks:
    directory = require_fixture("TestContenuCDA-3-0", "schematrons").resolve()
    type_codes, dmp_type_codes = document_type_codes(require_fixture("TestContenuCDA-3-0", "jeuxDeValeurs"))
    assert dmp_type_codes is None                       # JDV_J66 is the DMP's, not in the CI-SIS bundle
    return CdaChecks(REGISTRY, index=schematron_index(directory, UNNAMED_SCHEMATRONS), type_codes=type_codes)


def test_the_mappings_value_set_is_a_code_set():
    type_codes, _ = document_type_codes(require_fixture("TestContenuCDA-3-0", "jeuxDeValeurs"))
    assert isinstance(type_codes, CodeSet)
    assert type_codes.contains("18761-7", "2.16.840.1.113883.6.1") and not type_codes.contains("99999-9")


def test_the_mappings_find_jdv_j66_when_a_deployment_adds_it(tmp_path):
    jdv = require_fixture("TestContenuCDA-3-0", "jeuxDeValeurs")
    (tmp_path / "JDV_J07_XdsTypeCode_CISIS.xml").write_bytes((jdv / "JDV_J07_XdsTypeCode_CISIS.xml").read_bytes())
    (tmp_path / "JDV_J66_TypeCode_DMP.xml").write_text(
        '<RetrieveValueSetResponse xmlns="urn:ihe:iti:svs:2008"><ValueSet id="1.2.250.1.213.1.1.5.999" '
        'displayName="JDV_J66_TypeCode_DMP"><ConceptList><Concept code="11490-0" codeSystem="2.16.840.1.113883.6.1"/>'
        '</ConceptList></ValueSet></RetrieveValueSetResponse>', encoding="utf-8")
    _, dmp_type_codes = document_type_codes(tmp_path)
    assert dmp_type_codes.name == "JDV_J66_TypeCode_DMP" and dmp_type_codes.contains("11490-0")


@pytest.mark.parametrize("name", ["LDL-SES_2022.01.xml", "DOC_NON_STRUCTURE_CDA-R2-N1.xml",
                                  "BIO-CR-BIO_2024.01_TSH_1.xml", "01_Modèles_contenus_CDA.xml"])
def test_the_official_examples_pass_the_engine_checks(ans_checks, name):
    ans_checks(official(name))


def test_an_ldl_ees_passes_the_engine_checks(ans_checks):
    ans_checks(ldl_ees())


@pytest.mark.parametrize("planted, element, value", [
    (set_attribute("h:recordTarget/h:patientRole/h:id[@root='1.2.250.1.213.1.4.10']", "root", "1.2.250.1.213.1.4.100"),
     "ClinicalDocument/recordTarget/patientRole/id[1]/@root", "1.2.250.1.213.1.4.100"),
    (set_attribute(f"h:templateId[@root='{LDL_EES_TEMPLATE}']", "root", "1.2.250.1.213.1.1.1.211"),
     "ClinicalDocument/templateId/@root", "1.2.250.1.213.1.1.1.211"),
    (set_attribute("h:code", "code", "11111-1"), "ClinicalDocument/code/@code", "11111-1"),
    (set_attribute(f"h:templateId[@root='{LDL_EES_TEMPLATE}']", "root", LDL_SES_TEMPLATE),
     "ClinicalDocument/code/@code", "18761-7 but the volet LDL-SES 2022.01"),
], ids=["look-alike INS root", "wrong volet templateId", "LOINC outside JDV_J07", "volet and code disagree"])
def test_planted_faults_in_an_ldl_ees_are_refused_with_the_element_named(ans_checks, planted, element, value):
    with pytest.raises(ValidationError) as refused:
        ans_checks(plant(ldl_ees(), planted))
    [detail] = refused.value.details
    assert detail.startswith(f"{element}: {value}")


def test_the_official_ldl_ees_and_cr_imagerie_pass_the_engine_checks(ans_checks):
    for name in ("LDL-EES_2022.01.xml", "IMG_CR_IMG_2024.01.xml"):
        ans_checks(official(name))
