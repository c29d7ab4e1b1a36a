"""The inbound stage writes a job's steps in one journal operation (router/stages/timeline.py), in time order.

Every awaited journal write is a durable commit: the PFI read, each recipient, the XSD, the engine
checks and the schematron used to cost one each. Here a PFI ORU for two recipients costs four writes
(processing, its steps, the content binding, dispatched), and its timeline still shows every step
in the order it happened; a job refused by a check keeps the steps that passed before it.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from channels.embedded.bus import EmbeddedBus
from channels.journal.sqlite import SqliteJournal
from channels.testing.messages import DR_LEROY, DR_MARTIN, encode_message, make_cda, make_pfi_oru
from mappings.cda_header import read_header
from router.errors import ValidationError
from router.ports import Envelope, MessageState, ReceivedMessage
from router.stages.process import ProcessStage
from router.stages.zam import ZamQueue

NOW = datetime(2024, 3, 15, 16, 0, tzinfo=timezone.utc)


def refuse(cda: bytes) -> None:
    raise ValidationError("CDA invalid against CDA_extended.xsd: element foo not expected")


@pytest.fixture
async def bus(tmp_path):
    bus = EmbeddedBus(tmp_path / "bus.sqlite")
    await bus.connect()
    yield bus
    await bus.close()


async def run_stage(tmp_path, bus, control_id: str, schema_check=None):
    raw = encode_message(make_pfi_oru(make_cda(), control_id=control_id, recipients=[DR_MARTIN, DR_LEROY]))
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    await journal.open()
    key, _ = await journal.record_received(ReceivedMessage(
        raw=raw, channel="his", sending_application="LABO-TEST", sending_facility="CH-TEST",
        control_id=control_id, message_type="ORU^R01", received_at=NOW))
    writes = journal.stats()["operations"]
    stage = ProcessStage(bus, journal, ZamQueue(bus, journal, enabled=True), cda_reader=read_header,
                         schema_check=schema_check)
    envelope = Envelope(body=raw, message_id=key, headers={"channel": "his", "codec": "utf-8"})
    return journal, key, writes, stage, envelope


async def test_a_document_s_steps_are_one_write_and_keep_their_order(tmp_path, bus):
    journal, key, before, stage, envelope = await run_stage(tmp_path, bus, "ORU-T1", schema_check=lambda cda: None)
    await stage(envelope)

    assert journal.stats()["operations"] - before == 4      # processing, the steps, the binding, dispatched
    events = await journal.events(key)
    assert [(e.step, e.state) for e in events] == [
        ("received", "received"), ("processing", "processing"), ("pfi", "read"), ("recipient", "kept"),
        ("recipient", "kept"), ("schema", "valid"), ("dispatched", "dispatched")]
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert {e.destination for e in events if e.step == "recipient"} == {DR_MARTIN.address, DR_LEROY.address}
    assert (await journal.message(key)).state == MessageState.DISPATCHED
    await journal.close()


async def test_a_refused_job_keeps_the_steps_that_passed_before_the_refusal(tmp_path, bus):
    journal, key, _, stage, envelope = await run_stage(tmp_path, bus, "ORU-T2", schema_check=refuse)
    with pytest.raises(ValidationError):
        await stage(envelope)

    steps = [(e.step, e.state) for e in await journal.events(key)]
    assert steps[2:6] == [("pfi", "read"), ("recipient", "kept"), ("recipient", "kept"), ("invalid", "parked")]
    assert [step for step, _ in steps[6:]] == ["zam", "zam"]          # each recipient told, after the refusal
    await journal.close()
