"""Every volet is checked before it is sent, through the whole engine (MLLP → journal → bus → checks → mail/DMP).

With ``engine.schematrons = "volet"``, a PFI document of a volet Liaison does not render (an admission letter,
LDL-EES) is checked by its own CI-SIS schematron, found in the schematron directory's index: delivered when it
passes, parked with the failed assertions when it does not. The engine checks refuse a look-alike INS OID before
anything leaves. A document no volet schematron checks (a level-1 CDA without the profiles) is mailed with a
journaled warning and refused for the DMP (the defaults of ``engine.unchecked_volet_mail`` / ``_dmp``).
"""

from __future__ import annotations

import pytest

from channels.testing.messages import DR_MARTIN, Patient, encode_message, make_pfi_mdm
from mappings.cda_header import read_header
from router.ports import MessageState
from tests.integration.harness import Pipeline, dmp_pipeline, sink_pipeline
from tests.support.fixtures import require_fixture
from tests.support.volet_samples import (LDL_EES_SCHEMATRON, drop_section, ldl_ees, official, plant,
                                         set_attribute)

LEVEL1_TEMPLATE = "1.3.6.1.4.1.19376.1.2.20"
DMP_ONLY = {"DESTDMP": "Y", "DESTMSSANTEPS": "N", "ACK_RECEPTION": "Y"}


def pfi(cda: bytes, control_id: str, **options) -> bytes:
    header = read_header(cda)
    patient = Patient(ins=header.ins, ins_oid=header.ins_oid, family=header.patient_family,
                      given=header.patient_given, birth_date=header.patient_birth_time[:8], sex=header.patient_gender)
    options.setdefault("recipients", [DR_MARTIN])
    return encode_message(make_pfi_mdm(cda, patient=patient, control_id=control_id,
                                       document_type=(header.type_code, header.type_display or "document", "LN"),
                                       **options))


@pytest.fixture
async def mail(tmp_path):
    require_fixture("TestContenuCDA-3-0", "schematrons", LDL_EES_SCHEMATRON)
    require_fixture("TestContenuCDA-3-0", "infrastructure", "cda", "CDA_extended.xsd")
    pipe = await sink_pipeline(tmp_path, schematrons="volet")
    yield pipe
    await pipe.stop()


async def events(pipe: Pipeline, control_id: str):
    return await pipe.journal.events((await pipe.record(control_id)).key)


async def test_a_pfi_admission_letter_is_checked_by_its_own_volet_schematron(mail):
    assert (await mail.send(pfi(ldl_ees(), "EES-GOOD"))).code == "AA"
    assert (await mail.send(pfi(plant(ldl_ees(), drop_section("1.3.6.1.4.1.19376.1.5.3.1.3.13")), "EES-BAD"))).code \
        == "AA"
    good = await mail.wait_final("EES-GOOD")
    assert good.state == MessageState.DELIVERED, good.detail
    checked = {e.step: e for e in await events(mail, "EES-GOOD")}
    assert checked["schematron"].state == "valid" and checked["schematron"].detail == \
        f"1 CI-SIS schematron(s) passed: {LDL_EES_SCHEMATRON}"
    assert checked["engine_checks"].state == "valid" and "volet templateId" in checked["engine_checks"].detail
    bad = await mail.wait_final("EES-BAD")
    assert bad.state == MessageState.PARKED
    assert f"[{LDL_EES_SCHEMATRON}]" in bad.detail and "FR-Allergies-et-intolerances" in bad.detail
    assert len(await mail.sink.wait_for(1, timeout=10)) == 1                   # only the good letter went out


async def test_the_official_examples_of_other_volets_are_checked_by_theirs(mail):
    for name, schematron in (("LDL-EES_2022.01.xml", LDL_EES_SCHEMATRON),
                             ("IMG_CR_IMG_2024.01.xml", "CI-SIS_IMG-CR-IMG_2024.01.sch")):
        cda = official(name)
        control_id = f"OFF-{name[:6]}"
        assert (await mail.send(pfi(cda, control_id))).code == "AA"
        record = await mail.wait_final(control_id)
        assert record.state == MessageState.DELIVERED, record.detail
        assert any(e.step == "schematron" and e.detail.endswith(schematron) for e in await events(mail, control_id))


async def test_a_look_alike_ins_oid_is_refused_before_anything_is_sent(mail):
    planted = plant(ldl_ees(), set_attribute("h:author/h:assignedAuthor/h:id", "root", "1.2.250.1.213.1.4.80"))
    assert (await mail.send(pfi(planted, "EES-INS"))).code == "AA"
    record = await mail.wait_final("EES-INS")
    assert record.state == MessageState.PARKED
    assert "engine checks" in record.detail
    assert "ClinicalDocument/author/assignedAuthor/id/@root: 1.2.250.1.213.1.4.80 is under the INS arc" in record.detail
    assert not any(e.step == "schematron" for e in await events(mail, "EES-INS"))
    zam = next(z for z in await mail.his.wait_for(1, timeout=10) if "ZAM^Z02" in z)
    assert "|EES-INS|N" in zam


async def test_a_document_no_volet_schematron_checks_is_mailed_with_a_warning(mail):
    cda = official("DOC_NON_STRUCTURE_CDA-R2-N1.xml")
    assert (await mail.send(pfi(cda, "N1-MAIL"))).code == "AA"
    record = await mail.wait_final("N1-MAIL")
    assert record.state == MessageState.DELIVERED, record.detail
    warning = next(e for e in await events(mail, "N1-MAIL") if e.step == "schematron" and e.state == "warning")
    assert warning.detail == f"no volet schematron for templateId {LEVEL1_TEMPLATE}: sent with this warning"


async def test_a_document_no_volet_schematron_checks_is_refused_for_the_dmp(tmp_path):
    require_fixture("TestContenuCDA-3-0", "schematrons", LDL_EES_SCHEMATRON)
    pipe, double = await dmp_pipeline(tmp_path, schematrons="volet")
    try:
        level1 = official("DOC_NON_STRUCTURE_CDA-R2-N1.xml")
        assert (await pipe.send(pfi(level1, "N1-DMP", recipients=[], flags=DMP_ONLY))).code == "AA"
        assert (await pipe.send(pfi(ldl_ees(), "EES-DMP", recipients=[], flags=DMP_ONLY))).code == "AA"
        refused = await pipe.wait_final("N1-DMP")
        deposited = await pipe.wait_final("EES-DMP")
    finally:
        await pipe.stop()
        await double.stop()
    assert refused.state == MessageState.PARKED
    assert (f"no volet schematron for templateId {LEVEL1_TEMPLATE}: refused (engine.unchecked_volet_dmp = "
            "\"refuse\")") in refused.detail
    assert deposited.state == MessageState.DELIVERED, deposited.detail
    assert double.by_unique_id(read_header(ldl_ees()).document_id) is not None
    assert double.by_unique_id(read_header(level1).document_id) is None and len(double.documents) == 1
