"""The sampled profile check (router/profile_sample.py): which documents, after dispatch, never a refusal."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest

from channels.embedded.bus import EmbeddedBus
from channels.journal.sqlite import SqliteJournal
from channels.testing.messages import DR_LEROY, DR_MARTIN, encode_message, make_cda, make_pfi_oru
from mappings.cda_header import read_header
from router.config import engine_settings
from router.errors import ConfigError
from router.ports import Envelope, MessageState, ReceivedMessage
from router.profile_sample import ProfileSample
from router.stages.process import ProcessStage

NOW = datetime(2024, 3, 15, 16, 0, tzinfo=timezone.utc)


def test_one_document_in_n_by_its_content_and_always_the_same_ones():
    digests = [hashlib.sha256(b"doc %d" % n).hexdigest() for n in range(2000)]
    sample = ProfileSample(10, check=lambda cda: [])
    picked = [d for d in digests if sample.due(d)]
    assert 150 <= len(picked) <= 250
    assert picked == [d for d in digests if sample.due(d)]
    assert all(ProfileSample(1, check=lambda cda: []).due(d) for d in digests[:50])


def test_the_setting_samples_only_alongside_the_volet_schematron():
    assert engine_settings({"schematrons": "volet", "profile_sample": 50}, {}, None).profile_sample == 50
    assert engine_settings({}, {}, None).profile_sample == 0
    with pytest.raises(ConfigError, match="profile_sample"):
        engine_settings({"schematrons": "all", "profile_sample": 50}, {}, None)


@pytest.mark.parametrize("findings, state", [(["[rule-1] a failed assertion"], "warning"), ([], "valid")])
async def test_a_sampled_document_is_dispatched_and_its_findings_are_an_event_not_a_refusal(tmp_path, findings,
                                                                                           state):
    seen = []

    def check(cda: bytes) -> list[str]:
        seen.append(cda)
        return findings

    raw = encode_message(make_pfi_oru(make_cda(), control_id="ORU-S1", recipients=[DR_MARTIN, DR_LEROY]))
    bus = EmbeddedBus(tmp_path / "bus.sqlite")
    await bus.connect()
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        key, _ = await journal.record_received(ReceivedMessage(
            raw=raw, channel="his", sending_application="LABO-TEST", sending_facility="CH-TEST",
            control_id="ORU-S1", message_type="ORU^R01", received_at=NOW))
        stage = ProcessStage(bus, journal, None, cda_reader=read_header, schema_check=None,
                             profile_sample=ProfileSample(1, check))
        await stage(Envelope(body=raw, message_id=key, headers={"channel": "his", "codec": "utf-8"}))
        record = await journal.message(key)
        events = [e for e in await journal.events(key) if e.step == "profiles"]
        assert record.state == MessageState.DISPATCHED
        assert len(seen) == 1 and [e.state for e in events] == [state]
        assert ("1 failed assertion" in events[0].detail) == bool(findings)
    await bus.close()
