"""Operator actions through the real engine: never a second mail to a recipient that accepted the content.

A message to a known mailbox (accepted by Postfix) and an unknown one (550) ends
partly delivered. Retrying the failed recipient, replaying the whole message and
releasing a parked delivery job each run again, and Postfix's Maildir shows the
accepted recipient got exactly one mail. Retrying the accepted recipient is
refused. With the scriptable sink, a recipient refused once (550) then accepting
is mailed on retry. Runs on the embedded bus and on RabbitMQ (Postfix pipeline).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from channels.testing.messages import DR_MARTIN, Patient, Rct, encode_message, make_cda, make_pfi_oru
from router.actions import ActionError, MessageActions
from router.ports import MessageState, OutcomeStatus
from tests.integration.harness import Pipeline, xdm_cda
from tests.support.postfix import UNKNOWN, postfix_fixture

postfix = postfix_fixture()

UNKNOWN_RCT = Rct(UNKNOWN[0], organisation="Inconnu")


def oru(cda: bytes, control_id: str, recipients) -> bytes:
    return encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id=control_id,
                                       recipients=recipients))


async def settled_after(pipeline: Pipeline, key: str, step: str, timeout: float = 30.0):
    """The message once it is final again after the ``step`` event the action wrote (its run is over)."""
    deadline = time.monotonic() + timeout
    while True:
        events = await pipeline.journal.events(key)
        marks = [i for i, e in enumerate(events) if e.step == step and e.state == "audit"]
        record = await pipeline.journal.message(key)
        after = events[marks[-1] + 1:] if marks else []
        if marks and record.state in (MessageState.PARTIAL, MessageState.DELIVERED, MessageState.FAILED) \
                and any(e.step == "delivered" for e in after):
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"{key} not settled again after {step}: {record.state}")
        await asyncio.sleep(0.05)


def mails_to(postfix, address: str, cda: bytes) -> int:
    return len([m for m in postfix.delivered() if m.recipient == address and xdm_cda(m.message) == cda])


async def test_retry_replay_and_release_never_mail_an_accepted_recipient_twice(pipeline, postfix):
    tag = pipeline.prefix[-9:-1]
    cda = make_cda(document_extension=f"ACT-{tag}")
    control_id = f"ACT-{tag}"
    assert (await pipeline.send(oru(cda, control_id, [DR_MARTIN, UNKNOWN_RCT]))).code == "AA"
    record = await pipeline.wait_final(control_id)
    assert record.state == MessageState.PARTIAL, record.detail
    postfix.wait_for_mail(1, match=lambda m: xdm_cda(m.message) == cda)
    actions = MessageActions(pipeline.journal, pipeline.engine.bus)

    with pytest.raises(ActionError, match="never mailed twice"):
        await actions.retry_recipient(record.key, DR_MARTIN.address, "alice")

    done = await actions.retry_recipient(record.key, UNKNOWN[0], "alice")
    assert "reopened" in done.outcome
    again = await settled_after(pipeline, record.key, "retry_recipient")
    assert again.state == MessageState.PARTIAL

    await actions.replay(record.key, "alice")
    again = await settled_after(pipeline, record.key, "replay")
    assert again.state == MessageState.PARTIAL

    await asyncio.sleep(1.0)            # room for a wrong second mail to land before counting
    assert mails_to(postfix, DR_MARTIN.address, cda) == 1
    events = await pipeline.journal.events(record.key)
    unknown_attempts = [e for e in events if e.step == "outcome" and e.destination == UNKNOWN[0]
                        and e.state == str(OutcomeStatus.FAILED)]
    assert len(unknown_attempts) == 3                     # the first run, the retry, the replay: 550 each time
    audits = [(e.step, e.detail) for e in events if e.state == "audit"]
    assert audits[0][0] == "retry_recipient" and "refused" in audits[0][1] and "never mailed twice" in audits[0][1]
    assert [step for step, _ in audits] == ["retry_recipient", "retry_recipient", "replay"]
    assert all(detail.startswith("by alice: ") for _, detail in audits)


async def test_a_failed_recipient_is_mailed_on_retry_once_it_accepts(tmp_path):
    from channels.testing.mail_sink import SmtpSink
    from channels.testing.pki import make_test_pki

    pki = make_test_pki(tmp_path / "pki")
    sink = SmtpSink.from_pki(pki, tmp_path / "mail", rcpt_script={"cardiologie@hopital-test.mssante.fr": [550, 250]})
    await sink.start()
    pipe = await Pipeline(tmp_path, pki, sink.port, relay_host="127.0.0.1", sink=sink).start()
    try:
        cda = make_cda(document_extension="ACT-SINK")
        cardio = Rct("cardiologie@hopital-test.mssante.fr", organisation="Cardiologie")
        assert (await pipe.send(oru(cda, "ACT-SINK", [DR_MARTIN, cardio]))).code == "AA"
        record = await pipe.wait_final("ACT-SINK")
        assert record.state == MessageState.PARTIAL, record.detail
        actions = MessageActions(pipe.journal, pipe.engine.bus)
        await actions.retry_recipient(record.key, cardio.address, "bob")
        again = await settled_after(pipe, record.key, "retry_recipient")
        assert again.state == MessageState.DELIVERED, again.detail
        await asyncio.sleep(0.5)
        recipients = [r for m in sink.messages for r in m.recipients]
        assert sorted(recipients) == sorted([DR_MARTIN.address, cardio.address])    # one mail each, in all
    finally:
        await pipe.stop()


@pytest.fixture(params=["embedded", "amqp"])
async def short_lease(request, postfix, tmp_path, monkeypatch):
    """The module's engine, with a one-second claim lease so that a held claim parks a job within seconds."""
    from datetime import timedelta

    from channels.app.engine import Engine
    from tests.contract.conftest import _check_rabbitmq
    if request.param == "amqp":
        await _check_rabbitmq()
    monkeypatch.setattr(Engine, "claim_lease", lambda self: timedelta(seconds=1))
    pipe = Pipeline(tmp_path, postfix.pki, postfix.port, bus_kind=request.param)
    await pipe.start()
    yield pipe
    await pipe.stop()


async def test_releasing_a_parked_delivery_job_mails_only_the_recipient_that_never_got_it(short_lease, postfix):
    """A job parked while another worker held one recipient's claim: release sends that one, never the other.

    The claim is held (and renewed) under another message for the whole retry policy, so the job's copies
    wait a lease each time, then park; the park fails the held recipient. Release reopens it and replays
    the job: the accepted recipient is not mailed again.
    """
    from datetime import timedelta

    from channels.testing.messages import CARDIOLOGIE
    from mappings.cda_header import read_header
    from router import queues

    pipeline = short_lease
    tag = pipeline.prefix[-9:-1]
    cda = make_cda(document_extension=f"REL-{tag}")
    document_id = read_header(cda).document_id
    lease = dict(stale_after=timedelta(seconds=1))
    assert await pipeline.journal.claim(document_id, CARDIOLOGIE.address, message_key="ANOTHER-WORKER", **lease)

    async def hold() -> None:                              # the other worker, alive, renewing its claim
        while True:
            await pipeline.journal.renew_claims(document_id, [CARDIOLOGIE.address], message_key="ANOTHER-WORKER")
            await asyncio.sleep(0.2)

    holder = asyncio.create_task(hold())
    try:
        control_id = f"REL-{tag}"
        assert (await pipeline.send(oru(cda, control_id, [DR_MARTIN, CARDIOLOGIE]))).code == "AA"
        deadline = time.monotonic() + 30
        while not any(e.headers.get("document_id") == document_id
                      for e in await pipeline.engine.bus.parked(queues.DELIVER_MSS)):
            assert time.monotonic() < deadline, "the delivery job was never parked"
            await asyncio.sleep(0.1)
    finally:
        holder.cancel()
    record = await pipeline.wait_final(control_id)
    assert record.state == MessageState.PARTIAL, record.detail
    postfix.wait_for_mail(1, match=lambda m: xdm_cda(m.message) == cda)
    assert mails_to(postfix, CARDIOLOGIE.address, cda) == 0

    done = await MessageActions(pipeline.journal, pipeline.engine.bus).release(record.key, "carol")
    assert done.outcome == "released from deliver.mss"
    again = await settled_after(pipeline, record.key, "release")
    assert again.state == MessageState.DELIVERED, again.detail
    postfix.wait_for_mail(2, match=lambda m: xdm_cda(m.message) == cda)
    await asyncio.sleep(1.0)                               # room for a wrong second mail to land before counting
    assert mails_to(postfix, DR_MARTIN.address, cda) == 1
    assert mails_to(postfix, CARDIOLOGIE.address, cda) == 1
