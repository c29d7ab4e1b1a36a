"""The ADT branch of the inbound stage: movements update the stay in a real SQLite journal."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from channels.journal import SqliteJournal
from router.errors import UnsupportedMessageError, ValidationError
from router.hl7.parse import parse_message
from router.ports import Envelope, MessageState, ReceivedMessage, StayState
from router.stages.adt import AdtStage
from router.stages.process import ProcessStage
from channels.testing.adt_messages import DR_DURAND, PATIENT, WRONG_KEY_INS, make_adt, zfa
from tests.support.clock import FakeClock

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2024, 3, 15, 16, 0, tzinfo=UTC)
ENCOUNTER = "V2024000123"


@pytest.fixture
async def journal(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite", key=bytes(range(32))) as journal:
        yield journal


@pytest.fixture
def clock():
    return FakeClock(NOW)


@pytest.fixture
def stage(journal, clock):
    return AdtStage(journal, clock=clock)


async def feed(journal, handler, text: str) -> str:
    """Store the message as the door would, then hand it to the inbound stage (routing by type)."""
    raw = text.encode("utf-8")
    control_id = text.split("|")[9]
    key, _ = await journal.record_received(ReceivedMessage(
        raw=raw, channel="his", sending_application="GAM-TEST", sending_facility="CHU-TEST",
        control_id=control_id, message_type="ADT", received_at=NOW))
    process = ProcessStage(None, journal, None, cda_reader=None, schema_check=None, adt=handler)
    await process(Envelope(body=raw, message_id=key, headers={"channel": "his", "codec": "utf-8"}))
    return key


async def test_admission_records_an_admitted_stay_with_its_doctors(journal, stage):
    key = await feed(journal, stage, make_adt("A01", control_id="A01-1"))
    stay = await journal.stay("CHU-TEST", ENCOUNTER)
    assert stay.state == StayState.ADMITTED and stay.ipp == PATIENT.ipp and stay.ins == PATIENT.ins
    assert (stay.unit, stay.attending, stay.referring, stay.medecin_traitant) == \
        ("CARDIO", "810000023084", "801234567897", "812345678903")
    assert stay.admitted_at == datetime(2024, 3, 10, 8, 30, tzinfo=PARIS)
    assert stay.letter_due_at is None and stay.message_key == key
    record = await journal.message(key)
    assert record.state == MessageState.DELIVERED
    assert [(e.step, e.state) for e in await journal.events(key)][-2:] == [("stay", "admitted"),
                                                                          ("stay", "delivered")]


async def test_discharge_at_ten_is_due_at_the_end_of_the_day_in_paris(journal, stage):
    await feed(journal, stage, make_adt("A01", control_id="A01-1"))
    key = await feed(journal, stage, make_adt("A03", control_id="A03-1", discharge_time="20240315100000",
                                              disposition="7", destination="999000025"))
    stay = await journal.stay("CHU-TEST", ENCOUNTER)
    assert stay.state == StayState.DISCHARGED
    assert stay.discharged_at == datetime(2024, 3, 15, 10, 0, tzinfo=PARIS)
    assert stay.letter_due_at == datetime(2024, 3, 15, 23, 59, 59, tzinfo=PARIS)
    assert (stay.discharge_disposition, stay.discharge_destination) == ("7", "999000025")
    assert stay.message_key == key and stay.admitted_at is not None       # kept from the A01
    events = await journal.events(key)
    assert any(e.state == "discharged" and "letter due 2024-03-15T23:59:59+01:00" in e.detail for e in events)


async def test_a_deadline_in_hours_counts_from_the_discharge_time(journal, clock):
    stage = AdtStage(journal, deadline=48.0, clock=clock)
    await feed(journal, stage, make_adt("A03", control_id="A03-1", discharge_time="20240315100000"))
    stay = await journal.stay("CHU-TEST", ENCOUNTER)
    assert stay.letter_due_at == datetime(2024, 3, 15, 10, 0, tzinfo=PARIS) + timedelta(hours=48)


async def test_cancelled_discharge_readmits_and_clears_the_alert(journal, stage, clock):
    await feed(journal, stage, make_adt("A03", control_id="A03-1"))
    await journal.mark_stay("CHU-TEST", ENCOUNTER, alert_raised_at=clock())
    key = await feed(journal, stage, make_adt("A13", control_id="A13-1"))
    stay = await journal.stay("CHU-TEST", ENCOUNTER)
    assert stay.state == StayState.ADMITTED
    assert (stay.discharged_at, stay.letter_due_at, stay.alert_raised_at) == (None, None, None)
    assert ("alert", "alert_cleared") in [(e.step, e.state) for e in await journal.events(key)]
    assert await journal.stays_due(clock() + timedelta(days=30)) == []


async def test_a13_without_a_standing_alert_records_no_alert_event(journal, stage):
    await feed(journal, stage, make_adt("A03", control_id="A03-1"))
    key = await feed(journal, stage, make_adt("A13", control_id="A13-1"))
    assert "alert" not in [e.step for e in await journal.events(key)]


async def test_cancelled_admission_cancels_the_stay(journal, stage, clock):
    await feed(journal, stage, make_adt("A01", control_id="A01-1"))
    await feed(journal, stage, make_adt("A11", control_id="A11-1"))
    stay = await journal.stay("CHU-TEST", ENCOUNTER)
    assert stay.state == StayState.CANCELLED and stay.letter_due_at is None


async def test_update_changes_the_unit_and_keeps_the_state(journal, stage):
    await feed(journal, stage, make_adt("A03", control_id="A03-1"))
    before = await journal.stay("CHU-TEST", ENCOUNTER)
    key = await feed(journal, stage, make_adt("A08", control_id="A08-1", unit="NEUROLOGIE", attending=DR_DURAND))
    after = await journal.stay("CHU-TEST", ENCOUNTER)
    assert (after.unit, after.attending) == ("NEUROLOGIE", "812345678903")
    assert (after.state, after.letter_due_at) == (StayState.DISCHARGED, before.letter_due_at)
    assert ("stay", "updated") in [(e.step, e.state) for e in await journal.events(key)]


async def test_a_letter_sent_marks_the_stay_and_clears_its_alert(journal, stage, clock):
    a03 = await feed(journal, stage, make_adt("A03", control_id="A03-1"))
    await journal.mark_stay("CHU-TEST", ENCOUNTER, alert_raised_at=clock())
    found = await stage.letter_dispatched(facility="CHU-TEST", encounters=["", ENCOUNTER], message_key="K-MDM",
                                          document_id="DOC-LDL-1")
    assert found is not None and found.encounter == ENCOUNTER
    stay = await journal.stay("CHU-TEST", ENCOUNTER)
    assert (stay.letter_sent_at, stay.alert_raised_at) == (clock(), None)
    assert ("alert", "alert_cleared") in [(e.step, e.state) for e in await journal.events(a03)]
    assert ("stay", "letter_sent") in [(e.step, e.state) for e in await journal.events("K-MDM")]


async def test_a_letter_for_another_facility_or_stay_marks_nothing(journal, stage):
    await feed(journal, stage, make_adt("A03", control_id="A03-1"))
    assert await stage.letter_dispatched(facility="LABO", encounters=[ENCOUNTER], message_key="K",
                                         document_id="D") is None
    assert await stage.letter_dispatched(facility="CHU-TEST", encounters=["V-OTHER"], message_key="K",
                                         document_id="D") is None
    assert (await journal.stay("CHU-TEST", ENCOUNTER)).letter_sent_at is None


async def test_an_unreadable_adt_is_parked_with_its_reason(journal, stage):
    bad = make_adt("A01", control_id="BAD-INS", patient=replace(PATIENT, ins=WRONG_KEY_INS))
    with pytest.raises(ValidationError):
        await feed(journal, stage, bad)
    record = (await journal.search(control_id="BAD-INS"))[0]
    assert record.state == MessageState.PARKED and await journal.stay("CHU-TEST", ENCOUNTER) is None


async def test_without_an_adt_stage_an_adt_message_is_parked_as_unsupported(journal):
    with pytest.raises(UnsupportedMessageError):
        await feed(journal, None, make_adt("A01", control_id="NO-STAGE"))
    record = (await journal.search(control_id="NO-STAGE"))[0]
    assert record.state == MessageState.PARKED and "ADT stage" in record.detail


# --- DMP consent (PAM-FR ZFA) ------------------------------------------------------

async def test_an_admission_keeps_its_zfa_as_the_patients_consent_shown_with_the_stay(journal, stage):
    key = await feed(journal, stage, make_adt("A01", control_id="A01-1", zfa=zfa(feeding="IO", consultation="INC")))
    kept = await journal.dmp_consent("CHU-TEST", PATIENT.ipp)
    assert (kept.consent.status, kept.consent.feeding, kept.consent.consultation) == ("ACTIF", "IO", "INC")
    assert kept.message_key == key
    assert (await journal.stay("CHU-TEST", ENCOUNTER)).dmp_consent == kept.consent
    consent_events = [e for e in await journal.events(key) if e.step == "dmp_consent"]
    assert [e.state for e in consent_events] == ["kept"]
    assert "feeding ZFA-9 IO (objection" in consent_events[0].detail
    assert "consultation ZFA-11 INC (consent refused" in consent_events[0].detail


async def test_the_latest_adt_wins_and_every_stay_of_the_patient_shows_it(journal, stage):
    await feed(journal, stage, make_adt("A01", control_id="A01-1", zfa=zfa(feeding="INO")))
    await feed(journal, stage, make_adt("A01", control_id="A01-2", encounter="V2024000999"))
    assert (await journal.stay("CHU-TEST", "V2024000999")).dmp_consent.feeding == "INO"   # a new stay starts with it
    key = await feed(journal, stage, make_adt("A31", control_id="A31-1", zfa=zfa(feeding="IO", consultation="NA")))
    assert (await journal.dmp_consent("CHU-TEST", PATIENT.ipp)).consent.feeding == "IO"
    for encounter in (ENCOUNTER, "V2024000999"):
        assert (await journal.stay("CHU-TEST", encounter)).dmp_consent.consultation == "NA"
    assert (await journal.message(key)).state == MessageState.DELIVERED
    assert ("patient", "updated") in [(e.step, e.state) for e in await journal.events(key)]


async def test_a_patient_update_creates_no_stay(journal, stage):
    await feed(journal, stage, make_adt("A28", control_id="A28-1", zfa=zfa()))
    assert await journal.stay("CHU-TEST", "") is None and await journal.stay("CHU-TEST", ENCOUNTER) is None
    assert (await journal.dmp_consent("CHU-TEST", PATIENT.ipp)).consent.feeding == "INO"


async def test_an_adt_without_zfa_leaves_the_consent_in_force(journal, stage):
    first = await feed(journal, stage, make_adt("A01", control_id="A01-1", zfa=zfa(feeding="IO")))
    await feed(journal, stage, make_adt("A08", control_id="A08-1", unit="NEUROLOGIE"))
    await feed(journal, stage, make_adt("A31", control_id="A31-1"))
    assert (await journal.dmp_consent("CHU-TEST", PATIENT.ipp)).message_key == first
    assert (await journal.stay("CHU-TEST", ENCOUNTER)).dmp_consent.feeding == "IO"


async def test_a_redelivered_older_adt_does_not_undo_a_newer_consent(journal, stage):
    older_text = make_adt("A01", control_id="A01-1", zfa=zfa(feeding="INO"))
    older = await feed(journal, stage, older_text)
    newer = await feed(journal, stage, make_adt("A31", control_id="A31-1", zfa=zfa(feeding="IO")))
    await stage.handle(older, parse_message(older_text.encode("utf-8"), "utf-8"), "his")
    kept = await journal.dmp_consent("CHU-TEST", PATIENT.ipp)
    assert (kept.message_key, kept.consent.feeding) == (newer, "IO")
    assert (await journal.stay("CHU-TEST", ENCOUNTER)).dmp_consent.feeding == "IO"
    assert ("dmp_consent", "superseded") in [(e.step, e.state) for e in await journal.events(older)]


async def test_a_zfa_without_an_ipp_is_journaled_but_not_kept(journal, stage):
    key = await feed(journal, stage, make_adt("A31", control_id="A31-1", patient=replace(PATIENT, ipp=""),
                                              zfa=zfa(feeding="IO")))
    assert await journal.dmp_consent("CHU-TEST", "") is None
    assert ("dmp_consent", "not_kept") in [(e.step, e.state) for e in await journal.events(key)]
