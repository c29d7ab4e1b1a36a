"""The claim sweep: a claim whose worker died is reported once, then settled as failed if nobody takes it over."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from channels.journal import SqliteJournal
from channels.testing.cda import make_job
from channels.testing.messages import encode_message, make_pfi_oru
from router.claim_sweep import ClaimSweep
from router.ports import MessageState, Outcome, OutcomeStatus, ReceivedMessage
from router.stages.zam import ZamQueue


class RecordingBus:
    """Keeps what is published (the ZAMs queued for the HIS)."""

    def __init__(self):
        self.published: list[tuple[str, bytes, dict]] = []

    async def publish(self, queue: str, body: bytes, *, message_id: str, headers=None) -> None:
        self.published.append((queue, body, dict(headers or {})))


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
async def journal(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        yield journal


async def claimed_job(journal):
    job = make_job()
    raw = encode_message(make_pfi_oru(job.cda, control_id="SWEEP-1"))
    key, _ = await journal.record_received(ReceivedMessage(
        raw=raw, channel="his", sending_application="LABO-TEST", sending_facility="LABO", control_id="SWEEP-1",
        message_type="ORU^R01", received_at=datetime.now(timezone.utc)))
    await journal.set_state(key, MessageState.DISPATCHED, step="dispatched")
    job = replace(job, message_key=key)
    address = "dr.martin@hopital-test.mssante.fr"
    assert await journal.claim(job.header.document_id, address, message_key=key, stale_after=timedelta(minutes=1))
    return job, address


async def test_a_stale_claim_is_reported_once_then_given_up_with_a_zam(journal):
    job, address = await claimed_job(journal)
    bus = RecordingBus()
    start = datetime.now(timezone.utc)
    clock = Clock(start)
    sweep = ClaimSweep(journal, ZamQueue(bus, journal, enabled=True), lease=timedelta(seconds=60),
                       give_up_after=timedelta(seconds=600), interval=30, clock=clock)

    assert await sweep.sweep_once() == 0                       # within its lease: nothing to say
    clock.at = start + timedelta(seconds=120)
    assert await sweep.sweep_once() == 0 and await sweep.sweep_once() == 0
    stale = [e for e in await journal.events(job.message_key) if e.step == "claim"]
    assert [(e.state, e.destination) for e in stale] == [("stale", address)]      # reported once
    [outcome] = await journal.outcomes(job.header.document_id)
    assert outcome.status == OutcomeStatus.SENDING and bus.published == []

    clock.at = start + timedelta(seconds=700)
    assert await sweep.sweep_once() == 1
    [outcome] = await journal.outcomes(job.header.document_id)
    assert outcome.status == OutcomeStatus.FAILED and outcome.detail.startswith("not confirmed: the worker")
    [(queue, zam, headers)] = bus.published
    assert queue == "acks.his" and headers["recipient"] == address
    assert b"ZAM^Z02" in zam and b"|SWEEP-1|" in zam and b"not confirmed" in zam
    record = await journal.message(job.message_key)
    assert record.state == MessageState.FAILED                # its only recipient failed: settled, not left open
    assert await sweep.sweep_once() == 0                       # settled once


async def test_a_claim_its_worker_completed_is_never_touched(journal):
    job, address = await claimed_job(journal)
    start = datetime.now(timezone.utc)
    await journal.record_outcome(Outcome(job.header.document_id, address, OutcomeStatus.ACCEPTED, "250 2.0.0 Ok",
                                         start, job.message_key))
    bus = RecordingBus()
    sweep = ClaimSweep(journal, ZamQueue(bus, journal, enabled=True), lease=timedelta(seconds=60),
                       give_up_after=timedelta(seconds=600), interval=30, clock=Clock(start + timedelta(hours=2)))
    assert await sweep.sweep_once() == 0
    [outcome] = await journal.outcomes(job.header.document_id)
    assert outcome.status == OutcomeStatus.ACCEPTED and bus.published == []
