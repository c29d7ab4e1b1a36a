"""Our own render-mode MDM corpus, through the render stage, proven by the XSD and the CI-SIS schematrons.

Each message goes the engine's way (MDM → RenderStage → CDA) and the CDA must pass
CDA_extended.xsd, the LDL-SES 2022.01 volet (letters), the minimal-structure
profile, CI-SIS_ModelesDeContenusCDA and CI-SIS_Modeles_ANS with no failed
assertion. A second test plants errors in a rendered letter and shows the
schematrons name them.
"""

from __future__ import annotations

import asyncio
import copy

import pytest
from lxml import etree

from channels.directory.static import StaticDirectory
from channels.journal import SqliteJournal
from mappings.cda_header import read_header
from mappings.site import Site
from mappings.volets import REGISTRY
from router.cda_schema import CdaSchemaValidator
from router.hl7.parse import parse_message
from router.schematron import MINIMAL_STRUCTURE, SchematronValidator
from router.stages.process import message_source
from router.stages.render import RenderStage
from channels.testing.adt_messages import (CORSICA_2A, CORSICA_2B, DR_DURAND, DR_LEFEVRE, NIA, NO_INS,
                                        PROVISIONAL, AdtPatient, with_key)
from tests.support.fixtures import require_fixture
from channels.testing.mdm_messages import CORRESPONDENTS, make_mdm

NS = {"h": "urn:hl7-org:v3"}
SCHEMATRONS = "TestContenuCDA-3-0/schematrons"
LDL_SES = "CI-SIS_LDL-SES_2022.01.sch"
PROFILES = (MINIMAL_STRUCTURE, "profils/CI-SIS_ModelesDeContenusCDA.sch", "profils/CI-SIS_Modeles_ANS.sch")
DEMO_OID_PATIENT = AdtPatient(ipp="IPP004717", ins=with_key("2750869123456"), ins_oid="1.2.250.1.213.1.4.11",
                              family="DÉMO-ÂGÉE", given="Françoise", all_given="Françoise Œdile",
                              birth_date="19750820", birthplace_cog="69123", birthplace_city="Lyon")
UNICODE_NARRATIVE = {"42349-1": "Décompensation cardiaque — dyspnée ≥ stade III (NYHA).",
                     "42545-4": "Œdèmes régressifs ; « bonne évolution ».~Kinésithérapie à poursuivre.",
                     "10183-2": "Furosémide 40 mg/j ; surveillance du poids."}

#: name → make_mdm keyword arguments (T10 cases are rendered after the T02 they replace)
CORPUS: dict[str, dict] = {
    "ldl_home": {},
    "ldl_transfer": dict(disposition="7"),
    "ldl_mutation": dict(disposition="6"),
    "ldl_death": dict(disposition="9"),
    "ldl_unknown_mode": dict(disposition=""),
    "ldl_corsica_2a": dict(patient=CORSICA_2A),
    "ldl_corsica_2b_accents": dict(patient=CORSICA_2B, narrative=UNICODE_NARRATIVE),
    "ldl_nia": dict(patient=NIA),
    "ldl_demo_oid": dict(patient=DEMO_OID_PATIENT),
    "ldl_no_ins": dict(patient=NO_INS),
    "ldl_provisional_identity": dict(patient=PROVISIONAL),
    "ldl_text_only": dict(with_pdf=False),
    "ldl_pdf_only": dict(narrative={}),
    "ldl_no_doctors_around": dict(medecin_traitant=None, referring=None, discharge_time=""),
    "ldl_copies": dict(copies=(DR_DURAND, DR_LEFEVRE)),
    "ldl_replacement": dict(trigger="T10", parent_id="DOC-ldl_home"),
    "level1_consultation": dict(txa2="CN"),
    "level1_operative": dict(txa2="OP", narrative={}),
    "level1_imaging_loinc": dict(txa2="18748-4^CR d'imagerie médicale^LN"),
    "level1_unknown_local_type": dict(txa2="ZZLOCAL"),
}


@pytest.fixture(scope="module")
def validators():
    schema = CdaSchemaValidator(require_fixture("TestContenuCDA-3-0", "infrastructure", "cda"))
    root = require_fixture(*SCHEMATRONS.split("/"))
    return schema, {name: SchematronValidator(root / name) for name in (LDL_SES, *PROFILES)}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Every corpus message rendered through one render stage (so replacements find their parents)."""
    return asyncio.run(_render_corpus(tmp_path_factory.mktemp("corpus") / "journal.sqlite"))


async def _render_corpus(path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    async with SqliteJournal(path) as journal:
        stage = RenderStage(journal, StaticDirectory.from_config(CORRESPONDENTS), REGISTRY, site=Site(),
                            cda_reader=read_header)
        for number, (name, options) in enumerate(CORPUS.items()):
            options = dict(options)
            trigger = options.pop("trigger", "T02")
            text = make_mdm(trigger, control_id=f"MDM{number:04d}", unique_id=f"DOC-{name}", **options)
            parsed = parse_message(text.encode("utf-8"), "utf-8")
            out[name] = (await stage.job(f"K{number}", parsed, message_source(parsed), "his")).cda
    return out


@pytest.mark.parametrize("name", list(CORPUS))
async def test_every_rendered_document_passes_the_xsd_and_the_ci_sis_schematrons(name, rendered, validators):
    schema, schematrons = validators
    cda = rendered[name]
    schema.validate(cda)
    names = ((LDL_SES,) if name.startswith("ldl") else ()) + PROFILES
    problems = [line for sch in names for line in schematrons[sch].validate(cda).describe()]
    assert problems == [], "\n".join(problems)


async def test_the_corpus_covers_what_the_issue_lists(rendered):
    headers = {name: read_header(cda) for name, cda in rendered.items()}
    assert len(rendered) >= 20
    assert {h.ins_oid for h in headers.values()} >= {"1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.9",
                                                     "1.2.250.1.213.1.4.11"}
    assert headers["ldl_replacement"].version == 2
    assert headers["ldl_replacement"].set_id == headers["ldl_home"].set_id
    assert {h.type_code for n, h in headers.items() if n.startswith("level1")} == {"11488-4", "34874-8", "18748-4",
                                                                                  "34133-9"}
    modes = {n: etree.fromstring(rendered[n]).xpath("//h:observation[h:code/@code='ORG-074']/h:value/@code",
                                                    namespaces=NS)[0]
             for n in ("ldl_home", "ldl_transfer", "ldl_death")}
    assert modes == {"ldl_home": "160849004", "ldl_transfer": "GEN-092.06.01", "ldl_death": "GEN-092.06.03"}
    assert b"observationMedia" in rendered["ldl_home"] and b"observationMedia" not in rendered["ldl_text_only"]


def _planted(cda: bytes, plant) -> bytes:
    tree = etree.fromstring(cda)
    plant(tree)
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def _drop_medications(tree):
    section = tree.xpath("//h:section[h:code/@code='10183-2']", namespaces=NS)[0]
    component = section.getparent()
    component.getparent().remove(component)


def _wrong_code(tree):
    tree.xpath("/h:ClinicalDocument/h:code", namespaces=NS)[0].set("code", "11488-4")


def _no_birth_time(tree):
    birth = tree.xpath("//h:patient/h:birthTime", namespaces=NS)[0]
    birth.getparent().remove(birth)


@pytest.mark.parametrize("plant, schematron, expected", [
    (_drop_medications, LDL_SES, "FR-Traitements-a-la-sortie"),
    (_wrong_code, LDL_SES, "11490-0"),
    (_no_birth_time, MINIMAL_STRUCTURE, "birthTime"),
])
async def test_planted_errors_in_a_rendered_letter_are_reported(plant, schematron, expected, rendered, validators):
    _, schematrons = validators
    clean = schematrons[schematron].validate(rendered["ldl_home"])
    assert clean.ok
    report = schematrons[schematron].validate(_planted(copy.deepcopy(rendered["ldl_home"]), plant))
    assert not report.ok
    assert any(expected in line for line in report.describe()), report.describe()
