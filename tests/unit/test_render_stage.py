"""The render stage on a real journal: versions, cancellations, redelivery, the stay, recipients with reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from channels.directory.static import StaticDirectory
from channels.journal import SqliteJournal
from mappings.cda_header import read_header
from mappings.site import Site
from mappings.volets import REGISTRY
from router.errors import MappingError, ValidationError
from router.hl7.parse import parse_message
from router.model import Action
from router.ports import Stay, StayState
from router.stages.process import message_source
from router.stages.render import RenderStage
from router.model import RecipientKind
from channels.testing.adt_messages import DR_LEFEVRE, NIA, NO_INS, PATIENT, PROVISIONAL
from channels.testing.lab_messages import biochemistry, make_lab_oru
from channels.testing.mdm_messages import CORRESPONDENTS, make_mdm

NS = {"h": "urn:hl7-org:v3"}


@pytest.fixture
async def journal(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite", key=b"k" * 32) as journal:
        yield journal


@pytest.fixture
def stage(journal):
    return RenderStage(journal, StaticDirectory.from_config(CORRESPONDENTS), REGISTRY, site=Site(), cda_reader=read_header)


async def render(stage, text: str, key: str):
    parsed = parse_message(text.encode("utf-8"), "utf-8")
    return await stage.job(key, parsed, message_source(parsed), "his")


def xpath(cda: bytes, path: str):
    return etree.fromstring(cda).xpath(path, namespaces=NS)


async def test_a_letter_is_rendered_recorded_and_addressed_with_reasons(stage, journal):
    job = await render(stage, make_mdm(), "K1")

    assert job.action is Action.PUBLISH and job.header.type_code == "11490-0"
    assert job.header.document_id.endswith("^DOC-LDL-0001") and job.header.version == 1
    assert [r.address for r in job.recipients] == ["chloe.durand@hopital-test.mssante.fr",
                                                   "etienne.lefevre@hopital-test.mssante.fr",
                                                   f"{PATIENT.ins}@patient.mssante.fr"]
    assert job.recipients[2].kind is RecipientKind.PATIENT
    assert job.flags.dest_mss_ps and job.flags.dest_mss_patient and job.patient_ipp == "IPP004711"
    stored = await journal.rendered_document("CHU-TEST", "DOC-LDL-0001")
    assert stored.cda == job.cda and stored.message_key == "K1"
    events = await journal.events("K1")
    reasons = [e.detail for e in events if e.step == "recipient"]
    assert len(reasons) == 3 and "médecin traitant 812345678903" in reasons[0]
    assert reasons[2] == "patient: INS test with identity status QUAL: messagerie citoyenne"
    assert any(e.step == "render" and "version 1" in e.detail for e in events)


async def test_a_redelivered_message_sends_the_same_bytes_and_a_resend_under_a_new_id_is_refused(stage):
    first = await render(stage, make_mdm(), "K1")
    again = await render(stage, make_mdm(), "K1")
    assert again.cda == first.cda
    with pytest.raises(ValidationError, match="already published") as caught:
        await render(stage, make_mdm(control_id="MDM0002"), "K2")
    assert caught.value.hl7_code == "205"


async def test_a_replacement_keeps_the_set_bumps_the_version_and_points_to_the_previous_document(stage):
    first = await render(stage, make_mdm(), "K1")
    second = await render(stage, make_mdm("T10", unique_id="DOC-LDL-0002", parent_id="DOC-LDL-0001"), "K2")
    assert second.action is Action.REPLACE
    assert (second.header.set_id, second.header.version) == (first.header.set_id, 2)
    assert second.header.parent_document_id == first.header.document_id
    assert xpath(second.cda, "string(//h:relatedDocument/@typeCode)") == "RPLC"

    third = await render(stage, make_mdm("T10", unique_id="DOC-LDL-0002"), "K3")   # no TXA-13: TXA-12 replaced
    assert third.header.document_id.endswith("^DOC-LDL-0002.3") and third.header.version == 3
    assert third.header.parent_document_id == second.header.document_id


async def test_a_replacement_of_an_unknown_document_is_refused(stage):
    with pytest.raises(ValidationError, match="never rendered") as caught:
        await render(stage, make_mdm("T10", unique_id="DOC-9", parent_id="DOC-8"), "K1")
    assert caught.value.hl7_code == "204"


async def test_a_cancellation_resends_the_withdrawn_document_as_a_deletion_and_ends_the_set(stage, journal):
    first = await render(stage, make_mdm(), "K1")
    cancel = await render(stage, make_mdm("T11", unique_id="DOC-LDL-0001"), "K2")
    assert cancel.action is Action.DELETE and cancel.cda == first.cda
    assert cancel.header.document_id == first.header.document_id
    assert (await journal.rendered_document("CHU-TEST", "DOC-LDL-0001")).action is Action.DELETE
    with pytest.raises(ValidationError, match="was cancelled"):
        await render(stage, make_mdm("T10", unique_id="DOC-LDL-0003", parent_id="DOC-LDL-0001"), "K3")


async def test_the_stay_fills_what_the_document_message_leaves_out(stage, journal):
    await journal.record_stay(Stay(facility="CHU-TEST", encounter="V2024000123", state=StayState.DISCHARGED,
                                   discharge_disposition="7", discharged_at=datetime(2024, 3, 15, 13, 15, tzinfo=UTC)))
    job = await render(stage, make_mdm(disposition="", discharge_time=""), "K1")
    assert xpath(job.cda, "//h:observation[h:code/@code='ORG-074']/h:value/@code") == ["GEN-092.06.01"]


async def test_other_document_types_become_level1_cdas_and_need_the_pdf(stage):
    job = await render(stage, make_mdm(txa2="CN", unique_id="DOC-CN-1"), "K1")
    assert job.header.type_code == "11488-4" and "1.3.6.1.4.1.19376.1.2.20" in job.header.template_ids
    assert xpath(job.cda, "string(//h:nonXMLBody/h:text/@mediaType)") == "application/pdf"
    with pytest.raises(ValidationError, match="needs the PDF"):
        await render(stage, make_mdm(txa2="CN", unique_id="DOC-CN-2", with_pdf=False), "K2")


async def test_a_document_without_an_rpps_author_is_refused(stage):
    with pytest.raises(MappingError, match="no author with an RPPS"):
        await render(stage, make_mdm(author=None, attending=None), "K1")


async def test_roles_are_configurable(journal):
    stage = RenderStage(journal, StaticDirectory.from_config(CORRESPONDENTS), REGISTRY, site=Site(), cda_reader=read_header,
                        letter_roles=("attending",))
    job = await render(stage, make_mdm(), "K1")
    assert [r.address for r in job.recipients] == ["sophie.martin@hopital-test.mssante.fr"]


@pytest.mark.parametrize("changes, reason", [
    (dict(patient=PROVISIONAL), "patient: identity status PROV in PID-32 is not qualified (needs QUAL or VALI)"),
    (dict(patient=NIA), "patient: INS of kind nia (OID 1.2.250.1.213.1.4.9) is not used for the patient's "
                        "mailbox (accepted: production, test)"),
    (dict(patient=NO_INS), "patient: no INS in PID-3, so no messagerie citoyenne address"),
    (dict(replace={"TXA": None}), ""),
])
async def test_the_patient_gets_the_letter_only_with_a_qualified_ins(stage, journal, changes, reason):
    if "replace" in changes:                 # TXA-18 = V: hidden from the patient
        text = make_mdm()
        txa = next(line for line in text.split("\r") if line.startswith("TXA"))
        fields = txa.split("|")
        fields[18] = "V"
        text = text.replace(txa, "|".join(fields))
        reason = "patient: document not visible to the patient (TXA-18=V, very restricted)"
    else:
        text = make_mdm(**changes)
    job = await render(stage, text, "K1")
    assert all(r.kind is RecipientKind.PROFESSIONAL for r in job.recipients) and not job.flags.dest_mss_patient
    dropped = [e.detail for e in await journal.events("K1") if e.step == "recipient" and e.state == "dropped"]
    assert dropped == [reason]


async def test_a_lab_report_is_rendered_then_corrected_then_cancelled_within_one_set(stage, journal):
    first = await render(stage, make_lab_oru([biochemistry(copies=(DR_LEFEVRE,))]), "L1")
    assert first.header.type_code == "11502-2" and first.action is Action.PUBLISH and first.header.version == 1
    assert [r.address for r in first.recipients] == ["chloe.durand@hopital-test.mssante.fr",   # prescriber
                                                     "etienne.lefevre@hopital-test.mssante.fr",  # OBR-28 copy
                                                     f"{PATIENT.ins}@patient.mssante.fr"]
    corrected = await render(stage, make_lab_oru([biochemistry(status="C", copies=(DR_LEFEVRE,))],
                                                 order_control="RO", control_id="LAB0002"), "L2")
    assert corrected.action is Action.REPLACE
    assert (corrected.header.set_id, corrected.header.version) == (first.header.set_id, 2)
    assert corrected.header.parent_document_id == first.header.document_id
    assert corrected.header.document_id != first.header.document_id
    cancelled = await render(stage, make_lab_oru([biochemistry(status="D")], order_control="CA",
                                                 control_id="LAB0003"), "L3")
    assert cancelled.action is Action.DELETE and cancelled.cda == corrected.cda


async def test_a_lab_report_without_order_numbers_is_refused(stage):
    text = make_lab_oru([biochemistry()])
    for segment in ("ORC", "OBR"):
        line = next(l for l in text.split("\r") if l.startswith(segment))
        fields = line.split("|")
        fields[2] = fields[3] = ""
        text = text.replace(line, "|".join(fields))
    with pytest.raises(ValidationError, match="cannot be identified"):
        await render(stage, text, "L1")
