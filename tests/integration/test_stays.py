"""Stays and the lettre de liaison watchdog through a whole engine: ADT over MLLP, alert, letter or A13.

The ADT messages are dated March 2024, so with the default deadline (end of
the discharge day, Europe/Paris) the letter is overdue as soon as the A03 is
processed, and a watchdog ticking every 50 ms raises the alert at once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from channels.testing.mail_sink import SmtpSink
from channels.testing.pki import make_test_pki
from mappings.cda_header import read_header
from router.ports import MessageState, StayState
from tests.integration.harness import Pipeline
from channels.testing.adt_messages import make_adt
from channels.testing.cda import make_cda
from channels.testing.messages import Patient, encode_message, make_pfi_mdm

ENCOUNTER = "VN0001"                       # the PV1-19 the PFI test messages carry
LETTER = make_cda(kind="ldl-ses", document_id="1.2.250.1.999.1.5^LDL-STAY-1")
HEADER = read_header(LETTER)
LETTER_PATIENT = Patient.of_cda(LETTER)


@pytest.fixture
async def pipe(tmp_path):
    pki = make_test_pki(tmp_path / "pki")
    sink = SmtpSink.from_pki(pki, tmp_path / "mail")
    await sink.start()
    pipeline = Pipeline(tmp_path, pki, sink.port, relay_host="127.0.0.1", watchdog_interval=0.05)
    await pipeline.start()
    yield pipeline
    await pipeline.stop()
    sink.stop()


async def adt(pipe: Pipeline, trigger: str, control_id: str, **options) -> str:
    reply = await pipe.send(make_adt(trigger, control_id=control_id, encounter=ENCOUNTER, **options).encode())
    assert reply.code == "AA", reply.text
    record = await pipe.wait_final(control_id)
    assert record.state == MessageState.DELIVERED, record.detail
    return record.key


async def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def alerted(pipe: Pipeline, key: str, state: str) -> list:
    return [e for e in await pipe.journal.events(key) if (e.step, e.state) == ("alert", state)]


async def raise_alert(pipe: Pipeline) -> str:
    """A01 then A03 over MLLP; wait for the watchdog's alert; return the A03's journal key."""
    with capture_logs() as logs:
        await adt(pipe, "A01", "STAY-A01")
        a03 = await adt(pipe, "A03", "STAY-A03", discharge_time="20240315100000")
        stay = await pipe.journal.stay("CHU-TEST", ENCOUNTER)
        assert stay.state == StayState.DISCHARGED
        assert stay.letter_due_at == datetime(2024, 3, 15, 23, 59, 59, tzinfo=ZoneInfo("Europe/Paris"))
        assert await wait_for(lambda: alerted(pipe, a03, "letter_overdue")), "the watchdog raised no alert"
    warnings = [entry for entry in logs if entry["event"] == "watchdog.letter_overdue"]
    assert warnings and warnings[0]["encounter"] == ENCOUNTER and warnings[0]["log_level"] == "warning"
    assert (await pipe.journal.stay("CHU-TEST", ENCOUNTER)).alert_raised_at is not None
    return a03


async def test_a_lettre_de_liaison_sent_for_the_stay_clears_the_alert(pipe):
    a03 = await raise_alert(pipe)
    mdm = make_pfi_mdm(LETTER, patient=LETTER_PATIENT, control_id="STAY-LDL", sending_facility="CHU-TEST",
                       document_type=("11490-0", "Lettre de liaison de sortie", "LN"),
                       txa_document_id="LDL-STAY-1^^1.2.250.1.999.1.5^ISO")
    assert (await pipe.send(encode_message(mdm))).code == "AA"
    record = await pipe.wait_final("STAY-LDL")
    assert record.state == MessageState.DELIVERED, record.detail
    stay = await pipe.journal.stay("CHU-TEST", ENCOUNTER)
    assert stay.letter_sent_at is not None and stay.alert_raised_at is None
    assert await alerted(pipe, a03, "alert_cleared")
    assert ("stay", "letter_sent") in [(e.step, e.state) for e in await pipe.journal.events(record.key)]


async def test_a_cancelled_discharge_clears_the_alert(pipe):
    await raise_alert(pipe)
    a13 = await adt(pipe, "A13", "STAY-A13")
    stay = await pipe.journal.stay("CHU-TEST", ENCOUNTER)
    assert stay.state == StayState.ADMITTED and stay.alert_raised_at is None and stay.letter_due_at is None
    assert await alerted(pipe, a13, "alert_cleared")
