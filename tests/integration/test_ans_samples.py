"""ANS reference material through the whole path (MLLP → journal → bus → XSD → XDM → TLS mail → ZAM):
the official V2.1 ORU sample with its placeholder document replaced by the official CR-BIO CDA, and every
official CDA example embedded in our own PFI message. Skipped with a message when ../shared is absent."""

from __future__ import annotations

import base64
import io
import zipfile
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from mappings.cda_header import read_header
from router.ports import MessageState, OutcomeStatus
from tests.integration.harness import sink_pipeline
from tests.support.fixtures import FIXTURES, require_fixture
from channels.testing.messages import DR_MARTIN, Patient, encode_message, make_pfi_mdm, make_pfi_oru

ORU_DIR = ("hl7v2-ans", "Volets", "TRANS_DOC_CDA_HL7V2", "V2.1", "ORU", "Transmission initiale ORU")
EXAMPLES = sorted((FIXTURES / "TestContenuCDA-3-0" / "ExemplesCDA").glob("*.xml")) if FIXTURES else [None]


@pytest.fixture
async def pipe(tmp_path):
    require_fixture("TestContenuCDA-3-0", "infrastructure", "cda", "CDA_extended.xsd")
    pipeline = await sink_pipeline(tmp_path)
    yield pipeline
    await pipeline.stop()


async def test_official_oru_sample_with_the_official_cda_is_delivered_to_its_prt_recipients(pipe):
    sample = require_fixture(*ORU_DIR, "message_ORU_CR_Bio_INIT_N1_N3.hl7").read_bytes()
    cda = require_fixture(*ORU_DIR, "CR_Bio_CDA_Niv3_v1.XML").read_bytes()
    encoded = base64.b64encode(cda)
    lines = sample.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    placeholder = b"^TEXT^XML^Base64^"
    raw = b"\r".join(line.split(placeholder)[0] + placeholder + encoded + b"||||||F|"
                     if line.startswith(b"OBX|") and b"^LN||" in line and placeholder in line else line
                     for line in lines)
    reply = await pipe.send(raw)
    assert reply.code == "AA", reply.text
    record = await pipe.wait_final("015")
    assert record.state == MessageState.DELIVERED, record.detail
    outcomes = {o.destination: o.status for o in await pipe.journal.outcomes(read_header(cda).document_id)}
    assert outcomes == {"adam.hoda@test-ci-sis.mssante.fr": OutcomeStatus.ACCEPTED,
                        "279035121518989@patient.mssante.fr": OutcomeStatus.ACCEPTED}
    events = await pipe.journal.events(record.key)
    assert any(e.step == "dmp" for e in events)           # DESTDMP=Y is said, not silently dropped
    zams = await pipe.his.wait_for(3, timeout=10)
    z02 = [z for z in zams if "ZAM^Z02^ZAM_Z01" in z]
    z01 = [z for z in zams if "ZAM^Z01^ZAM_Z01" in z]
    assert len(z02) == 2 and all("|015|Y^^" in z for z in z02)
    assert len(z01) == 1 and "|015|N^^" in z01[0] and "DMPNotConfigured" in z01[0]   # DESTDMP=Y is answered
    mails = await pipe.sink.wait_for(2, timeout=10)
    assert {m.recipients for m in mails} == {("adam.hoda@test-ci-sis.mssante.fr",),
                                             ("279035121518989@patient.mssante.fr",)}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name if p else "absent" for p in EXAMPLES])
async def test_every_official_cda_example_goes_through_in_our_own_message(pipe, example: Path | None):
    cda = require_fixture("TestContenuCDA-3-0", "ExemplesCDA", example.name).read_bytes()
    header = read_header(cda)
    patient = Patient(ins=header.ins or "285057512345623", ins_oid=header.ins_oid or "1.2.250.1.213.1.4.10",
                      family=header.patient_family, given=header.patient_given,
                      birth_date=header.patient_birth_time[:8], sex=header.patient_gender)
    control_id = f"EX-{abs(hash(example.name)) % 10**8}"
    build = make_pfi_mdm if header.type_code != "11502-2" else make_pfi_oru
    action = "C" if header.parent_document_id else "F"
    raw = encode_message(build(cda, patient=patient, control_id=control_id, recipients=[DR_MARTIN], action=action,
                               document_type=(header.type_code, header.type_display or "document", "LN")))
    assert (await pipe.send(raw)).code == "AA"
    record = await pipe.wait_final(control_id)
    assert record.state == MessageState.DELIVERED, record.detail
    mail, = await pipe.sink.wait_for(1, timeout=10)
    part = next(p for p in message_from_bytes(mail.data, policy=policy.SMTP).iter_attachments()
                if p.get_filename() == "IHE_XDM.ZIP")
    with zipfile.ZipFile(io.BytesIO(part.get_content())) as archive:
        assert archive.read("IHE_XDM/SUBSET01/DOC0001.XML") == cda
        metadata = archive.read("IHE_XDM/SUBSET01/METADATA.XML")
    assert header.type_code.encode() in metadata


async def test_pre_send_schematron_check_parks_a_document_that_breaks_its_volet(tmp_path):
    """engine.schematrons = "volet": the official 2021-era CR-BIO N3 lacks what CR-BIO 2024.01 requires."""
    require_fixture("TestContenuCDA-3-0", "schematrons")
    require_fixture("TestContenuCDA-3-0", "infrastructure", "cda", "CDA_extended.xsd")
    pipe = await sink_pipeline(tmp_path, schematrons="volet")
    try:
        old = require_fixture(*ORU_DIR, "CR_Bio_CDA_Niv3_v1.XML").read_bytes()
        ours = (Path(__file__).resolve().parents[2] / "channels/app/demo/samples/cda/cr-bio-martin-camille.xml").read_bytes()
        for control_id, cda in (("SCH-OLD", old), ("SCH-OURS", ours)):
            patient = Patient.of_cda(cda)
            assert (await pipe.send(encode_message(make_pfi_oru(cda, patient=patient, control_id=control_id,
                                                                recipients=[DR_MARTIN])))).code == "AA"
        parked = await pipe.wait_final("SCH-OLD")
        assert parked.state == MessageState.PARKED
        assert "schematron" in parked.detail and "CI-SIS_BIO-CR-BIO_2024.01.sch" in parked.detail
        delivered = await pipe.wait_final("SCH-OURS")
        assert delivered.state == MessageState.DELIVERED
        assert any(e.step == "schematron" and e.state == "valid" for e in await pipe.journal.events(delivered.key))
        assert len(await pipe.sink.wait_for(1, timeout=10)) == 1
    finally:
        await pipe.stop()
