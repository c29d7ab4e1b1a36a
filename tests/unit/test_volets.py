"""The volet registry: the render stage and the pre-send check know volets only through it.

A fake volet ("FAKE-CR", its own templateId, type code, renderer and schematron)
is added through the registry alone and is rendered by the real render stage
and checked by the real schematron check, with no change to either.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from channels.directory.static import StaticDirectory
from channels.journal import SqliteJournal
from channels.testing.mdm_messages import make_mdm
from mappings import cda_level1, cr_bio, ldl_ses
from mappings.cda_header import read_header
from mappings.cda_header_fr import build_header, el
from mappings.site import Site
from mappings.lab_codes import MICROBIOLOGY_CHAPTER
from mappings.volets import REGISTRY
from router.content_check import SchematronCheck
from router.errors import ConfigError, MappingError, ValidationError
from router.hl7.parse import parse_message
from router.stages.process import message_source
from router.stages.render import RenderStage
from router.volets import RenderRequest, Source, Volet, VoletRegistry
from tests.unit.test_render_stage import CORRESPONDENTS

FAKE_TEMPLATE = "1.2.250.1.999.9.1"
FAKE_CODE = ("99999-9", "Compte rendu fictif")

FAKE_SCHEMATRON = f"""<?xml version="1.0" encoding="UTF-8"?>
<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">
  <ns prefix="cda" uri="urn:hl7-org:v3"/>
  <pattern id="fake-cr">
    <rule context="cda:ClinicalDocument">
      <assert id="fake-template" role="error" test="cda:templateId[@root='{FAKE_TEMPLATE}']">
        the FAKE-CR templateId is missing</assert>
      <assert id="fake-code" role="error" test="cda:code[@code='{FAKE_CODE[0]}']">
        a FAKE-CR is coded {FAKE_CODE[0]}</assert>
      <assert id="fake-body" role="error" test="cda:component/cda:nonXMLBody/cda:text[@mediaType='application/pdf']">
        a FAKE-CR carries its PDF</assert>
    </rule>
  </pattern>
</schema>
"""


def render_fake(request: RenderRequest) -> bytes:
    """A level-1-like CDA declaring the fake volet's templateId: enough for the stage and the check."""
    doc = build_header(request.patient, template_ids=((FAKE_TEMPLATE, ""),), code=FAKE_CODE, title=FAKE_CODE[1],
                       document_id=request.document_id, set_id=request.set_id, version=request.version,
                       parent_document_id=request.parent_document_id, author=request.author, site=request.site,
                       effective_time=request.effective_time, label="FAKE-CR")
    body = el(el(doc, "component"), "nonXMLBody")
    el(body, "text", text=base64.b64encode(request.document.pdf).decode("ascii"), mediaType="application/pdf",
       representation="B64")
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


@pytest.fixture
def fake_volet(tmp_path) -> Volet:
    schematron = tmp_path / "FAKE-CR_2026.01.sch"
    schematron.write_text(FAKE_SCHEMATRON, encoding="utf-8")
    return Volet(name="FAKE-CR 2026.01", source=Source.DOCUMENT, render=render_fake, template_ids=(FAKE_TEMPLATE,),
                 type_code=FAKE_CODE[0], txa2=frozenset({"FAKE"}), schematron=str(schematron))


def test_the_registry_picks_the_volet_a_message_asks_for():
    assert REGISTRY.for_document("11490-0") is ldl_ses.VOLET
    assert REGISTRY.for_document("LDL") is ldl_ses.VOLET
    assert REGISTRY.for_document("34874-8") is cda_level1.VOLET      # any other type: the level-1 fallback
    assert REGISTRY.for_lab_report() is cr_bio.VOLET
    assert REGISTRY.for_template_ids(["2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.29"]) == [ldl_ses.VOLET]
    assert REGISTRY.for_template_ids(["1.2.3"]) == []
    assert list(REGISTRY.schematrons()) == ["CI-SIS_LDL-SES_2022.01.sch", "CI-SIS_BIO-CR-BIO_2024.01.sch"]
    assert REGISTRY.stay_letter_types() == {"11490-0"}          # the overdue-letter watch waits for these


def test_a_registry_refuses_ambiguity(fake_volet):
    with pytest.raises(ConfigError, match="share a name"):
        VoletRegistry((fake_volet, fake_volet))
    with pytest.raises(ConfigError, match="only one volet may render any document type"):
        VoletRegistry((cda_level1.VOLET, replace(cda_level1.VOLET, name="another fallback")))
    with pytest.raises(MappingError, match="no volet renders laboratory reports"):
        VoletRegistry((ldl_ses.VOLET,)).for_lab_report()
    with pytest.raises(MappingError, match="no volet renders a document of type 'X'"):
        VoletRegistry((ldl_ses.VOLET,)).for_document("X")


async def test_a_volet_added_through_the_registry_alone_is_rendered_and_checked(tmp_path, fake_volet):
    volets = REGISTRY.with_volet(fake_volet)
    text = make_mdm(txa2="FAKE^Compte rendu fictif^L", unique_id="DOC-FAKE-0001")
    parsed = parse_message(text.encode("utf-8"), "utf-8")
    source = message_source(parsed)
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        stage = RenderStage(journal, StaticDirectory.from_config(CORRESPONDENTS), volets, site=Site(),
                            cda_reader=read_header)
        job = await stage.job("K1", parsed, source, "his")
        stored = await journal.rendered_document(source.sending_facility, "DOC-FAKE-0001")

    assert job.header.type_code == FAKE_CODE[0] and FAKE_TEMPLATE in job.header.template_ids
    assert stored.type_code == FAKE_CODE[0]
    assert job.recipients                                   # addressed like any letter: the stage is unchanged

    check = SchematronCheck(tmp_path, VoletRegistry((fake_volet,)), profiles=False)
    assert check(job.cda, job.header.template_ids) == 1     # its own schematron ran, and passed
    broken = job.cda.replace(f'code="{FAKE_CODE[0]}"'.encode(), b'code="11111-1"')
    with pytest.raises(ValidationError) as refused:
        check(broken, job.header.template_ids)
    [detail] = refused.value.details                      # one failed assert: the code, the others hold
    assert detail.startswith("[FAKE-CR_2026.01.sch] error at ") and detail.endswith("a FAKE-CR is coded 99999-9")
    assert check(read_header_cda_of_another_volet(), ["1.2.250.1.213.1.1.1.29"]) == 0


def read_header_cda_of_another_volet() -> bytes:
    return (Path(__file__).resolve().parents[2] / "channels" / "app" / "demo" / "samples" / "cda"
            / "ldl-ses-martin-camille.xml").read_bytes()


def test_the_core_names_no_volet():
    """router/ knows volets only through the registry: no templateId, type code, TXA-2 key or schematron,
    nor a LOINC code one volet reads (the LDL sections, the CR-BIO microbiology chapter)."""
    words = set(ldl_ses.SECTION_CODES) | {MICROBIOLOGY_CHAPTER}
    for volet in REGISTRY:
        words |= {*volet.template_ids, volet.type_code, volet.schematron, volet.name, *volet.txa2}
    words.discard("")
    router = Path(__file__).resolve().parents[2] / "router"
    named = {str(path.relative_to(router)): sorted(w for w in words if w in path.read_text(encoding="utf-8"))
             for path in router.rglob("*.py")}
    assert {path: found for path, found in named.items() if found} == {}
