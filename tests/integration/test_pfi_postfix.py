"""The spine end to end on real parts: an ANS CDA embedded in our own PFI ORU goes over MLLP into the
engine (journal, bus), is checked against CDA_extended.xsd, packaged as IHE_XDM.ZIP and mailed through a
real Postfix (STARTTLS, client certificate checked), and the HIS gets one ZAM^Z02 per recipient.
Runs on the embedded bus and on RabbitMQ."""

from __future__ import annotations


from mappings.cda_header import read_header
from tests.integration.harness import Pipeline, xdm_cda
from tests.support.fixtures import require_fixture
from channels.testing.messages import DR_MARTIN, Patient, encode_message, make_pfi_oru, patient_rct
from tests.support.postfix import postfix_fixture
from router.ports import MessageState, OutcomeStatus

postfix = postfix_fixture()

ANS_CDA = ("hl7v2-ans", "Volets", "TRANS_DOC_CDA_HL7V2", "V2.1", "ORU", "Transmission initiale ORU",
           "CR_Bio_CDA_Niv3_v1.XML")




async def test_ans_cr_bio_goes_from_mllp_to_the_maildir_with_zam_per_recipient(pipeline, postfix):
    require_fixture("TestContenuCDA-3-0", "infrastructure", "cda", "CDA_extended.xsd")
    cda = require_fixture(*ANS_CDA).read_bytes()
    patient = Patient.of_cda(cda)
    control_id = f"IT-{pipeline.prefix[-9:-1]}"
    raw = encode_message(make_pfi_oru(cda, patient=patient, control_id=control_id,
                                      recipients=[DR_MARTIN, patient_rct(patient)],
                                      flags={"DESTMSSANTEPAT": "Y", "ACK_LECTURE_MSS": "Y"},
                                      body_ps="Bonjour, résultats ci-joints."))

    reply = await pipeline.send(raw)
    assert reply.code == "AA" and reply.control_id == control_id

    record = await pipeline.wait_final(control_id)
    assert record.state == MessageState.DELIVERED, record.detail
    assert record.raw == raw                                  # stored unaltered

    subject_marker = f"<{control_id}"                         # not in headers: match on the CDA bytes instead
    mails = postfix.wait_for_mail(2, match=lambda m: xdm_cda(m.message) == cda)
    by_recipient = {m.recipient: m.message for m in mails}
    assert set(by_recipient) == {DR_MARTIN.address, patient.address}
    ps_mail, patient_mail = by_recipient[DR_MARTIN.address], by_recipient[patient.address]
    assert ps_mail["Subject"].startswith("XDM/1.0/DDM+")
    assert ps_mail["X-MSS-CODECDA"] == "11502-2"
    assert ps_mail["X-MSS-NIL"] == "TEST-NIL-0001"
    assert ps_mail["Disposition-Notification-To"] == "pfi@hopital-test.mssante.fr"
    assert "résultats ci-joints" in ps_mail.get_body(("plain",)).get_content()
    assert patient_mail["X-MSS-INS"] in ("O", "N")
    assert subject_marker not in ps_mail["Subject"]

    events = await pipeline.journal.events(record.key)
    steps = [e.step for e in events]
    assert steps.index("queued") < steps.index("schema") < steps.index("dispatched")
    outcomes = await pipeline.journal.outcomes(read_header(cda).document_id)
    assert {o.destination: o.status for o in outcomes} == {DR_MARTIN.address: OutcomeStatus.ACCEPTED,
                                                           patient.address: OutcomeStatus.ACCEPTED}

    zams = await pipeline.his.wait_for(2, timeout=20)
    assert len(zams) == 2
    for zam in zams:
        segments = zam.split("\r")
        assert segments[0].split("|")[8] == "ZAM^Z02^ZAM_Z01"
        obx1 = segments[2].split("|")
        assert obx1[3].startswith("ACK_RECEPTION_MSS") and obx1[4] == control_id and obx1[5].startswith("Y")
    assert {z.split("\r")[3].split("|")[5].split("^")[3] for z in zams} == {DR_MARTIN.address, patient.address}


async def test_relay_refusing_the_client_certificate_fails_the_recipient_and_tells_the_his(postfix, tmp_path):
    """A client certificate from a CA the relay does not trust: retried, then failed, and a ZAM N."""
    from channels.testing.cda import make_cda
    cda = make_cda()
    pipe = Pipeline(tmp_path, postfix.pki, postfix.port, client_cert=postfix.pki.untrusted_client_cert,
                    client_key=postfix.pki.untrusted_client_key)
    await pipe.start()
    try:
        patient = Patient.of_cda(cda)
        raw = encode_message(make_pfi_oru(cda, patient=patient, control_id="IT-CERT-1", recipients=[DR_MARTIN]))
        assert (await pipe.send(raw)).code == "AA"
        record = await pipe.wait_final("IT-CERT-1")
        assert record.state == MessageState.FAILED, record.detail
        outcome, = await pipe.journal.outcomes(read_header(cda).document_id)
        assert outcome.status == OutcomeStatus.FAILED
        assert "certificate" in outcome.detail.lower() or "421" in outcome.detail
        zam, = await pipe.his.wait_for(1, timeout=10)
        assert "ACK_RECEPTION_MSS" in zam and "|N^^" in zam and "\rERR|" in zam
        assert "retries spent" in outcome.detail
    finally:
        await pipe.stop()


