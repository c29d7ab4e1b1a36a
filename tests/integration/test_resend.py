"""Re-sends and reused document ids, through the real engine: MLLP in, Postfix out, ZAMs read by a fake HIS.

- The same document re-sent under a new MSH-10 (a user pressed "send again") is not mailed again to
  recipients who accepted it, and the HIS gets one ZAM^Z02 per recipient for the new MSH-10.
- Other content under a document id already sent (a correction sent as F instead of C) is refused:
  the door answers AE with ERR-3 205 (and the same to a resend of that MSH-10), nothing mailed, the message parked with a reason naming the id and the earlier message, and one
  ZAM^Z02 N per recipient with ERR-3 205 (duplicate key identifier).
Runs on the embedded bus and on RabbitMQ.
"""

from __future__ import annotations

from datetime import datetime, timezone

from channels.testing.messages import CARDIOLOGIE, DR_MARTIN, Patient, encode_message, make_cda, make_pfi_oru
from mappings.cda_header import read_header
from router.ports import MessageState, OutcomeStatus
from tests.integration.harness import xdm_cda
from tests.support.postfix import postfix_fixture

postfix = postfix_fixture()

RECIPIENTS = [DR_MARTIN, CARDIOLOGIE]


def oru(cda: bytes, control_id: str) -> bytes:
    return encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id=control_id,
                                       recipients=RECIPIENTS))


def zams_for(received: list[str], control_id: str) -> list[list[str]]:
    """The ZAM^Z02 answering ``control_id``, as lists of segments (OBX-4 names the message answered)."""
    zams = [z.split("\r") for z in received if "ZAM^Z02" in z]
    return [z for z in zams if any(s.startswith("OBX|") and s.split("|")[4] == control_id for s in z)]


def answered(zam: list[str]) -> tuple[str, str]:
    """(recipient address, Y/N) of one ZAM^Z02."""
    obx1, obx2 = [s.split("|") for s in zam if s.startswith("OBX|")][:2]
    return obx2[5].split("^")[3], obx1[5][:1]


async def test_the_same_document_under_a_new_msh10_is_answered_without_a_second_mail(pipeline, postfix):
    cda = make_cda(document_extension=f"RESEND-{pipeline.prefix[-9:-1]}")
    first, second = f"RS1-{pipeline.prefix[-9:-1]}", f"RS2-{pipeline.prefix[-9:-1]}"

    assert (await pipeline.send(oru(cda, first))).code == "AA"
    assert (await pipeline.wait_final(first)).state == MessageState.DELIVERED
    postfix.wait_for_mail(2, match=lambda m: xdm_cda(m.message) == cda)
    await pipeline.his.wait_for(2, timeout=20)

    resent_at = datetime.now(timezone.utc)
    assert (await pipeline.send(oru(cda, second))).code == "AA"
    record = await pipeline.wait_final(second)
    assert record.state == MessageState.DELIVERED, record.detail
    received = await pipeline.his.wait_for(4, timeout=20)
    again = zams_for(received, second)
    assert sorted(answered(z) for z in again) == sorted((r.address, "Y") for r in RECIPIENTS)
    for zam in again:                                           # EVN-2: when it was delivered, the first time
        [evn] = [s.split("|") for s in zam if s.startswith("EVN|")]
        assert datetime.strptime(evn[2], "%Y%m%d%H%M%S%z") < resent_at
    assert len(zams_for(received, first)) == 2                  # the first message's answers, unchanged

    assert len([m for m in postfix.delivered() if xdm_cda(m.message) == cda]) == 2     # one per recipient, once
    events = await pipeline.journal.events(record.key)
    assert [e.state for e in events if e.step == "content"] == ["resent"]
    assert {e.destination for e in events if e.step == "earlier_outcome"} == {r.address for r in RECIPIENTS}
    assert all("delivered earlier" in e.detail for e in events if e.step == "earlier_outcome")


async def test_other_content_under_a_used_document_id_is_refused_and_nothing_is_mailed(pipeline, postfix):
    cda = make_cda(document_extension=f"REUSED-{pipeline.prefix[-9:-1]}")
    corrected = cda.replace(b"<title>Compte rendu d'examens biologiques</title>",
                            b"<title>Compte rendu d'examens biologiques (corrige)</title>")
    assert corrected != cda and read_header(corrected).document_id == read_header(cda).document_id
    first, second = f"RU1-{pipeline.prefix[-9:-1]}", f"RU2-{pipeline.prefix[-9:-1]}"

    assert (await pipeline.send(oru(cda, first))).code == "AA"
    assert (await pipeline.wait_final(first)).state == MessageState.DELIVERED
    await pipeline.his.wait_for(2, timeout=20)

    answer = await pipeline.send(oru(corrected, second))
    assert (answer.code, answer.error_code) == ("AE", "205")                   # the door says so at once
    assert read_header(cda).document_id in answer.text and f"MSH-10 {first}" in answer.text
    assert answer.error_location.startswith("OBX^")
    again = await pipeline.send(oru(corrected, second))                        # a resend of that MSH-10: same answer
    assert again.code == "AE"
    record = await pipeline.wait_final(second)
    assert record.state == MessageState.PARKED
    assert read_header(cda).document_id in record.detail and f"MSH-10 {first}" in record.detail
    assert "replacement" in record.detail

    received = await pipeline.his.wait_for(4, timeout=20)
    refusals = zams_for(received, second)
    assert sorted(answered(z) for z in refusals) == sorted((r.address, "N") for r in RECIPIENTS)
    for zam in refusals:
        [err] = [s.split("|") for s in zam if s.startswith("ERR|")]
        assert err[3].startswith("205")
    assert [m for m in postfix.delivered() if xdm_cda(m.message) == corrected] == []
    outcomes = await pipeline.journal.outcomes(read_header(cda).document_id)
    assert {o.status for o in outcomes} == {OutcomeStatus.ACCEPTED}          # the first letter's outcomes stand


async def test_a_correction_sent_as_a_replacement_goes_out(pipeline, postfix):
    """What the refusal asks the HIS to do: the corrected letter, under a new id naming its parent, is mailed."""
    tag = pipeline.prefix[-9:-1]
    cda = make_cda(document_extension=f"FIRST-{tag}")
    first, refused, replacement = f"RP1-{tag}", f"RP2-{tag}", f"RP3-{tag}"
    assert (await pipeline.send(oru(cda, first))).code == "AA"
    assert (await pipeline.wait_final(first)).state == MessageState.DELIVERED

    as_f = cda.replace(b"<title>Compte rendu d'examens biologiques</title>",
                       b"<title>Compte rendu d'examens biologiques (corrige)</title>")
    assert (await pipeline.send(oru(as_f, refused))).code == "AE"

    corrected = make_cda(document_extension=f"SECOND-{tag}", version=2, parent_extension=f"FIRST-{tag}")
    raw = encode_message(make_pfi_oru(corrected, patient=Patient.of_cda(corrected), control_id=replacement,
                                      recipients=RECIPIENTS, action="C"))
    assert (await pipeline.send(raw)).code == "AA"
    assert (await pipeline.wait_final(replacement)).state == MessageState.DELIVERED
    mails = postfix.wait_for_mail(2, match=lambda m: xdm_cda(m.message) == corrected)
    assert len(mails) == 2
