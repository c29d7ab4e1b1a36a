"""Each PFI recipient gets its own outcome, through the whole engine: MLLP in, real Postfix out, ZAMs read by
the recording HIS. A recipient the HIS named wrongly (a patient address whose INS is not the CDA's, a
malformed address) is refused alone, with its reason in the journal and in its own ZAM^Z02 N; the others are
mailed and answered; the DMP deposit does not depend on them. Only a message left with no recipient to mail
and no DMP is refused as a whole. Runs on the embedded bus and on RabbitMQ (the DMP case on both too)."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile

from lxml import etree

from channels.testing.cda import make_cda
from channels.testing.messages import (DR_LEROY, DR_MARTIN, OTHER_PATIENT, Patient, Rct, encode_message,
                                       make_pfi_oru, patient_rct)
from mappings.cda_header import read_header
from router.ports import MessageState, OutcomeStatus
from tests.integration.harness import Pipeline, xdm_cda
from tests.support.postfix import postfix_fixture

postfix = postfix_fixture()
MALFORMED = Rct("dr.leroy@@cabinet-test.mssante.fr", DR_LEROY.identifier, "LEROY", "Paul")
WITH_PATIENT = {"DESTMSSANTEPAT": "Y", "ACK_RECEPTION": "Y"}


def unique_cda(pipe: Pipeline, name: str) -> bytes:
    """A CDA of its own per test and bus (Postfix's maildir is shared by the session)."""
    return make_cda(document_id=f"1.2.250.1.999.2.1^{name}-{pipe.prefix[-9:-1]}")


def zam_for(zams: list[str], address: str) -> str:
    """The ZAM whose DESTINATAIRE_MSS (OBX-5.4 of its second OBX) is ``address``."""
    return next(z for z in zams if z.split("\r")[3].split("|")[5].split("^")[3] == address)


def xdm_bytes(message) -> bytes:
    """Every file of a mail's IHE_XDM.ZIP, end to end (the CDA, METADATA.XML, INDEX.HTM...)."""
    part = next(p for p in message.iter_attachments() if p.get_filename() == "IHE_XDM.ZIP")
    with zipfile.ZipFile(io.BytesIO(part.get_content())) as archive:
        return b"".join(archive.read(name) for name in archive.namelist())


def ack_value(zam: str) -> str:
    return zam.split("\r")[2].split("|")[5].split("^")[0]


def err(zam: str) -> list[str]:
    return next(seg for seg in zam.split("\r") if seg.startswith("ERR|")).split("|")


async def test_a_patient_address_of_another_patient_is_refused_alone_and_the_doctor_is_mailed(pipeline, postfix):
    cda = unique_cda(pipeline, "RCP-INS")
    control_id = f"RCP-INS-{pipeline.prefix[-9:-1]}"
    wrong = patient_rct(OTHER_PATIENT)
    raw = encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id=control_id,
                                      recipients=[DR_MARTIN, wrong], flags=WITH_PATIENT))
    assert (await pipeline.send(raw)).code == "AA"

    record = await pipeline.wait_final(control_id)
    assert record.state == MessageState.PARTIAL, record.detail
    assert record.detail == "1/2 recipient(s) accepted"
    outcomes = {o.destination: o for o in await pipeline.journal.outcomes(read_header(cda).document_id)}
    assert outcomes[DR_MARTIN.address].status == OutcomeStatus.ACCEPTED
    assert outcomes[wrong.address].status == OutcomeStatus.REFUSED
    assert outcomes[wrong.address].detail == "not mailed: the patient's MSSanté address does not match the CDA's INS"

    mail, = postfix.wait_for_mail(1, match=lambda m: xdm_cda(m.message) == cda)
    assert mail.recipient == DR_MARTIN.address
    assert DR_MARTIN.address.encode() in xdm_bytes(mail.message)
    assert OTHER_PATIENT.ins.encode() not in xdm_bytes(mail.message)     # not even in the XDM metadata

    zams = await pipeline.his.wait_for(2, timeout=20)
    assert len(zams) == 2
    assert ack_value(zam_for(zams, DR_MARTIN.address)) == "Y"
    refusal = zam_for(zams, wrong.address)
    assert ack_value(refusal) == "N" and "ZAM^Z02" in refusal
    assert err(refusal)[5] == ("904^INS ne correspondant pas: not mailed: the patient's MSSanté address does not "
                               "match the CDA's INS^MSSERRORCODE")
    assert [e.state for e in await pipeline.journal.events(record.key)
            if e.step == "recipient"] == ["kept", "refused"]


async def test_a_malformed_address_is_refused_alone_and_the_valid_one_is_mailed(pipeline, postfix):
    cda = unique_cda(pipeline, "RCP-MAL")
    control_id = f"RCP-MAL-{pipeline.prefix[-9:-1]}"
    raw = encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id=control_id,
                                      recipients=[MALFORMED, DR_MARTIN]))
    reply = await pipeline.send(raw)
    assert reply.code == "AA", reply.text

    record = await pipeline.wait_final(control_id)
    assert record.state == MessageState.PARTIAL, record.detail
    outcomes = {o.destination: o for o in await pipeline.journal.outcomes(read_header(cda).document_id)}
    assert outcomes[DR_MARTIN.address].status == OutcomeStatus.ACCEPTED
    assert outcomes[MALFORMED.address].status == OutcomeStatus.REFUSED
    assert outcomes[MALFORMED.address].detail.startswith(
        "not mailed: malformed MSSanté address 'dr.leroy@@cabinet-test.mssante.fr' in PRT RCT")

    mail, = postfix.wait_for_mail(1, match=lambda m: xdm_cda(m.message) == cda)
    assert mail.recipient == DR_MARTIN.address and b"@@" not in xdm_bytes(mail.message)

    zams = await pipeline.his.wait_for(2, timeout=20)
    assert ack_value(zam_for(zams, DR_MARTIN.address)) == "Y"
    refusal = zam_for(zams, MALFORMED.address)
    assert ack_value(refusal) == "N" and err(refusal)[5].startswith("MSSRecipientInvalid^")
    assert "malformed MSSanté address" in err(refusal)[5]


async def test_a_message_whose_only_recipient_is_bad_and_no_dmp_is_refused_as_a_whole(pipeline, postfix):
    cda = unique_cda(pipeline, "RCP-ONE")
    patient = Patient.of_cda(cda)
    suffix = pipeline.prefix[-9:-1]

    reply = await pipeline.send(encode_message(make_pfi_oru(cda, patient=patient, control_id=f"RCP-AE-{suffix}",
                                                            recipients=[MALFORMED])))
    assert reply.code == "AE" and reply.error_code == "102" and "malformed MSSanté address" in reply.text
    assert (await pipeline.record(f"RCP-AE-{suffix}")).state == MessageState.REJECTED

    raw = encode_message(make_pfi_oru(cda, patient=patient, control_id=f"RCP-PK-{suffix}",
                                      recipients=[patient_rct(OTHER_PATIENT)],
                                      flags={"DESTMSSANTEPS": "N", "DESTMSSANTEPAT": "Y"}))
    assert (await pipeline.send(raw)).code == "AA"               # the CDA is needed to see the mismatch
    record = await pipeline.wait_final(f"RCP-PK-{suffix}")
    assert record.state == MessageState.PARKED and "does not match the CDA's INS" in record.detail
    assert not await pipeline.journal.outcomes(read_header(cda).document_id)
    zam, = await pipeline.his.wait_for(1, timeout=10)
    assert ack_value(zam) == "N" and err(zam)[5].startswith("904^")


async def test_the_dmp_deposit_goes_on_when_the_only_mail_recipient_is_refused(dmp):
    pipe, double = dmp
    document_id = "1.2.250.1.999.1.3^RCP-DMP-1"
    cda = make_cda(document_id=document_id)
    wrong = patient_rct(OTHER_PATIENT)
    raw = encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id="RCP-DMP", recipients=[wrong],
                                      flags={"DESTDMP": "Y", "DESTMSSANTEPS": "N", "DESTMSSANTEPAT": "Y",
                                             "ACK_RECEPTION": "Y"}))
    assert (await pipe.send(raw)).code == "AA"

    zams = await pipe.his.wait_for(2, timeout=20)
    z01, = [z for z in zams if "ZAM^Z01" in z]
    z02, = [z for z in zams if "ZAM^Z02" in z]
    assert ack_value(z01) == "Y"
    assert ack_value(z02) == "N" and err(z02)[5].startswith("904^")
    stored = double.by_unique_id(document_id)
    assert stored is not None and stored.content == cda
    assert OTHER_PATIENT.ins.encode() not in etree.tostring(stored.submission_set)
    assert await outcomes_when(pipe, document_id, 2) == {"dmp": OutcomeStatus.ACCEPTED,
                                                         wrong.address: OutcomeStatus.REFUSED}


async def outcomes_when(pipe: Pipeline, document_id: str, count: int, timeout: float = 10.0) -> dict:
    """The outcomes of a document once ``count`` are final (each is written just after its ZAM is queued)."""
    deadline = time.monotonic() + timeout
    while True:
        outcomes = {o.destination: o.status for o in await pipe.journal.outcomes(document_id)}
        final = [s for s in outcomes.values() if s in (OutcomeStatus.ACCEPTED, OutcomeStatus.FAILED,
                                                       OutcomeStatus.REFUSED)]
        if len(final) >= count or time.monotonic() > deadline:
            return outcomes
        await asyncio.sleep(0.05)
