"""Bad input through the whole engine: each gets the right ACK/NACK or outcome, a journal row, and
nothing crashes the listener. The relay here is the scriptable TLS sink (client certificate required),
so that 451-then-250 and 550-for-one-of-two can be staged; the real-Postfix runs are in test_pfi_postfix."""

from __future__ import annotations

import asyncio

import pytest

from channels.testing.mail_sink import SmtpSink
from channels.testing.pki import make_test_pki
from mappings.cda_header import read_header
from router.ports import MessageState, OutcomeStatus
from tests.integration.harness import Pipeline
from channels.testing.cda import make_cda
from tests.support.fixtures import require_fixture
from channels.testing.messages import (CARDIOLOGIE, DR_LEROY, DR_MARTIN, OTHER_PATIENT, Patient, Rct, encode_message,
                                    make_pfi_mdm, make_pfi_oru, patient_rct)

CDA = make_cda()
HEADER = read_header(CDA)
PATIENT = Patient.of_cda(CDA)


@pytest.fixture
async def relay(tmp_path):
    pki = make_test_pki(tmp_path / "pki")
    sink = SmtpSink.from_pki(pki, tmp_path / "mail",
                             rcpt_script={"dr.leroy@cabinet-test.mssante.fr": [451, 250],
                                          "inconnu@hopital-test.mssante.fr": [550]})
    await sink.start()
    yield pki, sink
    sink.stop()


@pytest.fixture
async def pipe(relay, tmp_path):
    pki, sink = relay
    pipeline = Pipeline(tmp_path, pki, sink.port, relay_host="127.0.0.1", max_frame_bytes=256 * 1024)
    await pipeline.start()
    yield pipeline
    await pipeline.stop()


def oru(control_id: str, cda: bytes = CDA, **options) -> bytes:
    options.setdefault("patient", PATIENT)
    return encode_message(make_pfi_oru(cda, control_id=control_id, **options))


async def test_unknown_message_type_is_refused_with_ar_and_kept(pipe):
    raw = oru("BAD-TYPE", message_type="ADT^A99^ADT_A01")
    reply = await pipe.send(raw)
    assert reply.code == "AR" and reply.error_code == "200"
    record = await pipe.record("BAD-TYPE")
    assert record.state == MessageState.REJECTED and record.raw == raw and record.ack_code == "AR"


async def test_oru_without_prt_recipients_is_an_ae_with_the_reason(pipe):
    reply = await pipe.send(oru("NO-PRT", recipients=[]))
    assert reply.code == "AE" and "DESTMSSANTEPS" in reply.text
    assert (reply.error_code, reply.error_location) == ("101", "PRT^2^15^1^4")   # the RCT after the sender's SB
    assert (await pipe.record("NO-PRT")).state == MessageState.REJECTED


async def test_forbidden_flag_combination_is_an_ae_with_the_rule(pipe):
    raw = oru("FLAGS", recipients=[DR_MARTIN, patient_rct(PATIENT)],
              flags={"DESTMSSANTEPAT": "Y", "INVISIBLE_PATIENT": "Y"})
    reply = await pipe.send(raw)
    assert reply.code == "AE" and "INVISIBLE_PATIENT=Y" in reply.text
    rows = [segment for segment in raw.split(b"\r") if segment.startswith(b"OBX|")]
    row = next(n for n, segment in enumerate(rows, 1) if segment.split(b"|")[3].startswith(b"INVISIBLE_PATIENT^"))
    assert (reply.error_code, reply.error_location) == ("103", f"OBX^{row}^5")   # HL7 0357, not 207
    record = await pipe.record("FLAGS")
    assert record.state == MessageState.REJECTED and "INVISIBLE_PATIENT" in record.detail


async def test_invalid_base64_is_parked_and_the_his_gets_an_error_zam(pipe):
    assert (await pipe.send(oru("B64", cda_base64="PENsaW5pY2FsRG9jdW1lbnQ+***"))).code == "AA"
    record = await pipe.wait_final("B64")
    assert record.state == MessageState.PARKED and "base64" in record.detail
    zam, = await pipe.his.wait_for(1, timeout=10)
    assert "ZAM^Z02" in zam and "|N^^" in zam and "base64" in zam
    parked = await pipe.engine.bus.parked("inbound")
    assert [e.message_id for e in parked] == [record.key]
    assert parked[0].body == record.raw                           # the engine reads its parked message back
    stored = b"".join(path.read_bytes() for path in pipe.root.glob("bus.sqlite*"))
    assert PATIENT.family.encode() not in stored and PATIENT.ins.encode() not in stored   # sealed at rest


async def test_cda_failing_the_schema_is_parked_with_the_xsd_errors(pipe):
    require_fixture("TestContenuCDA-3-0", "infrastructure", "cda", "CDA_extended.xsd")
    broken = make_cda(broken_schema=True)
    assert (await pipe.send(oru("XSD", cda=broken))).code == "AA"
    record = await pipe.wait_final("XSD")
    assert record.state == MessageState.PARKED and "CDA_extended.xsd" in record.detail and "line" in record.detail
    assert not await pipe.journal.outcomes(read_header(broken).document_id)     # nothing was mailed


async def test_pid_that_does_not_match_the_cda_is_parked_with_904(pipe):
    assert (await pipe.send(oru("PID", patient=OTHER_PATIENT))).code == "AA"
    record = await pipe.wait_final("PID")
    assert record.state == MessageState.PARKED
    assert "INS" in record.detail and HEADER.ins not in record.detail       # the reason, never the INS itself
    zam, = await pipe.his.wait_for(1, timeout=10)
    err = next(seg for seg in zam.split("\r") if seg.startswith("ERR|")).split("|")
    assert err[3].startswith("207^") and err[5].startswith("904^")           # volet code in ERR-5
    assert f"^^X.400^{DR_MARTIN.address}" in zam                              # one ZAM per PRT recipient


async def test_latin1_message_with_accents_is_delivered_and_answered_in_latin1(pipe, relay):
    _, sink = relay
    lefevre = Rct("dr.lefevre@cabinet-test.mssante.fr", "810000987650", "LEFÈVRE", "Hélène")
    text = make_pfi_mdm(CDA, patient=PATIENT, control_id="LATIN1", charset="8859/1", recipients=[lefevre],
                        document_type=("11502-2", "CR d'examens biologiques (résumé)", "LN"))
    raw = text.encode("latin-1")
    assert "LEFÈVRE".encode("latin-1") in raw
    assert (await pipe.send(raw)).code == "AA"
    assert (await pipe.wait_final("LATIN1")).state == MessageState.DELIVERED
    assert (await pipe.record("LATIN1")).raw == raw
    mail, = await sink.wait_for(1, timeout=10)
    assert mail.recipients == (lefevre.address,)
    zam, = await pipe.his.wait_for(1, timeout=10)
    assert zam.split("\r")[0].split("|")[17] == "8859/1"
    assert "Accusé de réception MSSanté" in zam        # decoded by the HIS as Latin-1, accents intact


async def test_newline_segment_endings_are_read(pipe):
    raw = encode_message(make_pfi_oru(CDA, patient=PATIENT, control_id="LF", segment_sep="\n"))
    assert b"\r" not in raw
    assert (await pipe.send(raw)).code == "AA"
    assert (await pipe.wait_final("LF")).state == MessageState.DELIVERED


async def test_relay_answering_451_then_250_is_retried_and_delivered(pipe):
    assert (await pipe.send(oru("TEMP", recipients=[DR_LEROY]))).code == "AA"
    record = await pipe.wait_final("TEMP")
    assert record.state == MessageState.DELIVERED, record.detail
    history = [e for e in await pipe.journal.events(record.key) if e.step == "outcome"]
    assert [e.state for e in history] == ["retrying", "accepted"]


async def test_relay_answering_550_for_one_recipient_of_two(pipe, relay):
    _, sink = relay
    unknown = ("", "inconnu@hopital-test.mssante.fr")
    assert (await pipe.send(oru("HALF", recipients=[DR_MARTIN, unknown]))).code == "AA"
    record = await pipe.wait_final("HALF")
    assert record.state == MessageState.PARTIAL
    outcomes = {o.destination: o for o in await pipe.journal.outcomes(HEADER.document_id)}
    assert outcomes[DR_MARTIN.address].status == OutcomeStatus.ACCEPTED
    assert outcomes[unknown[1]].status == OutcomeStatus.FAILED and "550" in outcomes[unknown[1]].detail
    zams = await pipe.his.wait_for(2, timeout=10)
    assert sorted("|Y^^" in z for z in zams) == [False, True]
    assert len(sink.messages) == 1 and sink.messages[0].recipients == (DR_MARTIN.address,)


async def test_a_resent_message_is_acknowledged_and_not_mailed_twice(pipe, relay):
    _, sink = relay
    raw = oru("TWICE", recipients=[CARDIOLOGIE])
    assert (await pipe.send(raw)).code == "AA"
    assert (await pipe.wait_final("TWICE")).state == MessageState.DELIVERED
    again = await pipe.send(raw)
    assert again.code == "AA" and "duplicate" in again.text
    await asyncio.sleep(0)          # nothing to wait for: the duplicate was never queued
    assert len(await pipe.journal.search(control_id="TWICE")) == 1
    assert len(sink.messages) == 1


async def test_oversize_frame_gets_an_ar_and_the_listener_keeps_serving(pipe):
    big = oru("BIG", cda=CDA + b"<!--" + b"x" * 300_000 + b"-->")
    reply = await pipe.send(big)
    assert reply.code == "AR" and "exceeds" in reply.text
    assert (await pipe.record("BIG")).state == MessageState.REJECTED
    assert (await pipe.send(oru("AFTER-BIG"))).code == "AA"


async def test_truncated_frame_is_journaled_and_junk_between_frames_is_skipped(pipe):
    port = pipe.engine.port("his")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x0b" + oru("CUT")[:500])          # the sender dies mid-frame
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        rows = [r for r in await pipe.journal.search(state=MessageState.REJECTED) if r.control_id.startswith("CUT#")]
        if rows or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert rows and "truncated" in rows[0].detail and rows[0].raw == oru("CUT")[:500]

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\r\n\x00junk" + b"\x0b" + oru("J1") + b"\x1c\r" + b"\n\n\x00" + b"\x0b" + oru("J2") + b"\x1c\r")
    await writer.drain()
    acks = [await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 10) for _ in range(2)]
    writer.close()
    assert [b"MSA|AA|J1" in acks[0], b"MSA|AA|J2" in acks[1]] == [True, True]


async def test_a_parked_delivery_job_fails_its_recipients_in_the_journal_and_tells_the_his(relay, tmp_path):
    """No X-MSS-NIL: the mail cannot be built (a permanent error). The job is parked, and not silently."""
    pki, sink = relay
    pipeline = Pipeline(tmp_path, pki, sink.port, relay_host="127.0.0.1", nil="")
    await pipeline.start()
    try:
        assert (await pipeline.send(oru("NO-NIL"))).code == "AA"
        record = await pipeline.wait_final("NO-NIL")
        assert record.state == MessageState.FAILED
        outcome, = await pipeline.journal.outcomes(HEADER.document_id)
        assert outcome.status == OutcomeStatus.FAILED and "X-MSS-NIL" in outcome.detail
        zam, = await pipeline.his.wait_for(1, timeout=10)
        assert "ZAM^Z02" in zam and "|N^^" in zam
        assert any(e.step == "parked" for e in await pipeline.journal.events(record.key))
        assert sink.messages == []
    finally:
        await pipeline.stop()


async def test_dmp_only_message_is_answered_with_a_z01_error_while_no_dmp_channel_exists(pipe):
    raw = oru("DMP-ONLY", recipients=[], flags={"DESTDMP": "Y", "DESTMSSANTEPS": "N"})
    assert (await pipe.send(raw)).code == "AA"
    record = await pipe.wait_final("DMP-ONLY")
    assert record.state == MessageState.FAILED and "DMP" in record.detail
    zam, = await pipe.his.wait_for(1, timeout=10)
    assert "ZAM^Z01" in zam and "ACK_RECEPTION_DMP" in zam and "|N^^" in zam
