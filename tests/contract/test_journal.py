"""Contract suite for the Journal port: every adapter must pass it.

Runs against ``SqliteJournal`` and ``PostgresJournal``, each in clear and encrypted at rest
(``BACKENDS``); the PostgreSQL runs are marked ``postgresql`` and use the test run's cluster
(``tests/support/postgres.py``), a fresh schema per test. The last section holds checks specific
to the SQLite adapter (URL, locking, group commit, tampering); ``test_journal_postgresql.py`` has
PostgreSQL's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.synchronize
import os
import random
import sqlite3
import stat
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from channels.app.engine import journal_from_url
from channels.journal import DecryptError, EncryptionKeyError, SqliteJournal, from_url
from channels.journal.digests import IdentifierDigests
from channels.journal.postgresql import PostgresJournal
from channels.journal.schema import LATEST
from router.errors import ConfigError, TransientError
from router.model import Action
from router.ports import (DmpEntry, Journal, RenderedDocument, JournalEvent, MessageState, Outcome, OutcomeStatus, ReceivedMessage, Stay,
                          StayState)
from tests.support import postgres

KEY = bytes.fromhex("8f1c2e3d4a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5")
OTHER_KEY = bytes(32)
T0 = datetime(2025, 3, 14, 9, 30, 0, 123456, tzinfo=UTC)


def hl7(control_id: str, *, app: str = "DXCARE", facility: str = "CHU-TEST", trigger: str = "A03",
        note: bytes = b"") -> bytes:
    """A fictitious ADT message in ISO 8859-1, as hospital systems send them."""
    return (f"MSH|^~\\&|{app}|{facility}|LIAISON|CHU-TEST|20250314093000||ADT^{trigger}^ADT_A03|{control_id}|P|2.5"
            "|||||FRA|8859/1\r".encode("ascii")
            + "PID|||700123^^^CHU-TEST^PI||DURAND^Hélène^^^^^L||19800101|F\r".encode("latin-1")
            + b"PV1||I|CARDIO^^^CHU-TEST|||||10001234567^MARTIN^Paul\r" + note)


def received(control_id: str, *, app: str = "DXCARE", facility: str = "CHU-TEST", raw: bytes | None = None,
             at: datetime = T0, message_type: str = "ADT^A03", peer: str = "127.0.0.1:40001") -> ReceivedMessage:
    return ReceivedMessage(raw=raw if raw is not None else hl7(control_id, app=app, facility=facility),
                           channel="mllp", sending_application=app, sending_facility=facility,
                           control_id=control_id, message_type=message_type, received_at=at, peer=peer)


# ---------------------------------------------------------------- backends

_DEFAULT = object()


@dataclass
class Backend:
    name: str
    encrypted: bool
    make: Callable[..., Journal]          # make(key=...) -> an unopened journal on the same store
    stored_bytes: Callable[[], bytes]      # everything the store holds (on disk, or in its tables)
    url: str = ""                          # the store as the configuration names it (engine.journal)
    dialect: str = "sqlite"
    execute: Callable[[list[tuple[str, tuple]]], list[tuple]] = lambda statements: []   # behind the journal's back
    cleanup: ExitStack = field(default_factory=ExitStack)


def sqlite_backend(tmp_path: Path, encrypted: bool) -> Backend:
    path = tmp_path / "journal.sqlite"

    def make(key: object = _DEFAULT) -> Journal:
        return SqliteJournal(path, key=(KEY if encrypted else None) if key is _DEFAULT else key)

    def stored_bytes() -> bytes:
        return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("journal.sqlite*")))

    def execute(statements: list[tuple[str, tuple]]) -> list[tuple]:
        with sqlite3.connect(path) as conn:
            return [conn.execute(sql, params).fetchall() for sql, params in statements][-1]

    return Backend(f"sqlite-{'encrypted' if encrypted else 'clear'}", encrypted, make, stored_bytes,
                   f"sqlite://{path}", "sqlite", execute)


def postgresql_backend(tmp_path: Path, encrypted: bool) -> Backend:
    cleanup = ExitStack()
    url = cleanup.enter_context(postgres.private_schema())

    def make(key: object = _DEFAULT) -> Journal:
        return PostgresJournal(url, key=(KEY if encrypted else None) if key is _DEFAULT else key)

    return Backend(f"postgresql-{'encrypted' if encrypted else 'clear'}", encrypted, make,
                   lambda: postgres.stored_bytes(url), url, "postgresql", lambda s: postgres.execute(url, s), cleanup)


BACKENDS = {
    "sqlite-clear": lambda tmp_path: sqlite_backend(tmp_path, encrypted=False),
    "sqlite-encrypted": lambda tmp_path: sqlite_backend(tmp_path, encrypted=True),
    "postgresql-clear": lambda tmp_path: postgresql_backend(tmp_path, encrypted=False),
    "postgresql-encrypted": lambda tmp_path: postgresql_backend(tmp_path, encrypted=True),
}


@pytest.fixture(params=[pytest.param(name, marks=[pytest.mark.postgresql] if name.startswith("postgresql") else [])
                        for name in sorted(BACKENDS)])
def backend(request, tmp_path) -> Backend:
    made = BACKENDS[request.param](tmp_path)
    with made.cleanup:
        yield made


@pytest.fixture
async def journal(backend):
    journal = backend.make()
    await journal.open()
    yield journal
    await journal.close()


# ----------------------------------------------------------- received bytes

async def test_raw_bytes_round_trip_unaltered(journal):
    raw = (hl7("RAW-1") + "OBX|1|TX|||Compte rendu: très bien, cœur régulier\r".encode("latin-1", errors="replace")
           + "NTE|1||Grüße – UTF-8 text\r".encode("utf-8") + b"NTE|2||\xff\xfe\x80\x00\x1b binary\r\r\n")
    key, is_new = await journal.record_received(received("RAW-1", raw=raw))

    record = await journal.message(key)
    assert is_new is True
    assert type(record.raw) is bytes
    assert record.raw == raw


async def test_received_message_is_stored_with_its_identifiers(journal):
    key, _ = await journal.record_received(received("META-1", facility="CHU-SUD", message_type="ADT^A03"))

    record = await journal.message(key)
    assert (record.key, record.channel, record.sending_application, record.sending_facility, record.control_id,
            record.message_type) == (key, "mllp", "DXCARE", "CHU-SUD", "META-1", "ADT^A03")
    assert record.state is MessageState.RECEIVED
    assert record.received_at == T0
    assert record.ack_code == ""
    assert [event.step for event in await journal.events(key)] == ["received"]


async def test_unknown_key_has_no_message_and_no_events(journal):
    assert await journal.message("01NOSUCHKEY0000000000000000") is None
    assert await journal.events("01NOSUCHKEY0000000000000000") == []


# -------------------------------------------------------------- idempotency

async def test_resent_message_returns_first_key_and_is_recorded_as_duplicate(journal):
    first, first_new = await journal.record_received(received("DUP-1"))
    again, again_new = await journal.record_received(received("DUP-1", at=T0 + timedelta(seconds=30)))

    assert (first_new, again_new) == (True, False)
    assert again == first
    assert len(await journal.search(control_id="DUP-1")) == 1
    steps = [event.step for event in await journal.events(first)]
    assert steps == ["received", "duplicate"]
    assert (await journal.message(first)).received_at == T0


async def test_resend_with_different_bytes_keeps_the_first_copy_and_says_so(journal):
    key, _ = await journal.record_received(received("DUP-2"))
    changed = hl7("DUP-2", note=b"NTE|1||edited\r")
    again, is_new = await journal.record_received(received("DUP-2", raw=changed))

    assert (again, is_new) == (key, False)
    assert (await journal.message(key)).raw == hl7("DUP-2")
    duplicate = [event for event in await journal.events(key) if event.step == "duplicate"]
    assert len(duplicate) == 1 and "different bytes" in duplicate[0].detail


async def test_identifiers_holding_a_nul_are_stored_and_deduplicated(journal):
    raw = hl7("NUL\x001", app="DX\x00CARE")
    key, is_new = await journal.record_received(received("NUL\x001", app="DX\x00CARE", raw=raw))
    again = await journal.record_received(received("NUL\x001", app="DX\x00CARE", raw=raw))

    assert is_new and again == (key, False)
    assert (await journal.message(key)).raw == raw
    assert [r.key for r in await journal.search(control_id="NUL\x001")] == [key]


async def test_sending_facility_is_not_part_of_the_idempotency_key(journal):
    key, _ = await journal.record_received(received("FAC-1", facility="CHU-NORD"))
    again, is_new = await journal.record_received(received("FAC-1", facility="CHU-SUD"))

    assert (again, is_new) == (key, False)


async def test_same_control_id_from_two_applications_is_two_messages(journal):
    dxcare, new_a = await journal.record_received(received("SHARED-1", app="DXCARE"))
    labo, new_b = await journal.record_received(received("SHARED-1", app="GLIMS"))

    assert new_a and new_b
    assert dxcare != labo
    assert {record.sending_application for record in await journal.search(control_id="SHARED-1")} == {
        "DXCARE", "GLIMS"}


async def test_a_message_resent_to_another_listener_is_known_there(backend, journal):
    other = backend.make()
    await other.open()
    try:
        results = await asyncio.gather(*(door.record_received(received(f"TWO-{i}"))
                                         for i in range(20) for door in (journal, other)))
    finally:
        await other.close()

    for first, second in zip(results[::2], results[1::2]):
        assert first[0] == second[0] and sorted((first[1], second[1])) == [False, True]
    assert len(await journal.search(limit=100)) == 20


# ----------------------------------------------------------- state and events

async def test_state_transitions_keep_timestamps_ack_code_and_ordered_events(journal):
    key, _ = await journal.record_received(received("STATE-1", at=datetime.now(UTC)))
    await journal.set_state(key, MessageState.QUEUED, step="queued", ack_code="AA")
    await journal.set_state(key, MessageState.PROCESSING, step="parsed")
    await journal.set_state(key, MessageState.PARKED, step="validated", detail="CDA invalide: section manquante")

    record = await journal.message(key)
    assert record.state is MessageState.PARKED
    assert record.ack_code == "AA"
    assert record.detail == "CDA invalide: section manquante"
    assert record.updated_at >= record.received_at
    events = await journal.events(key)
    assert [(e.step, e.state) for e in events] == [
        ("received", "received"), ("queued", "queued"), ("parsed", "processing"), ("validated", "parked")]
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert events[-1].detail == "CDA invalide: section manquante"
    assert events[-1].at == record.updated_at


async def test_set_state_on_unknown_key_raises_key_error(journal):
    with pytest.raises(KeyError):
        await journal.set_state("01NOSUCHKEY0000000000000000", MessageState.QUEUED, step="queued")


async def test_events_are_returned_in_time_order(journal):
    key, _ = await journal.record_received(received("EVT-1"))
    await journal.add_event(JournalEvent(key, T0 + timedelta(seconds=20), "zam", "sent", "ZAM^Z01 acquitté",
                                         "1.2.250.1.999.1.1.20250314.1", "his"))
    await journal.add_event(JournalEvent(key, T0 + timedelta(seconds=10), "validated", "ok"))

    events = await journal.events(key)
    assert [e.step for e in events] == ["received", "validated", "zam"]
    assert events[2] == JournalEvent(key, T0 + timedelta(seconds=20), "zam", "sent", "ZAM^Z01 acquitté",
                                     "1.2.250.1.999.1.1.20250314.1", "his")



async def test_add_events_appends_them_all_in_one_write(journal):
    key, _ = await journal.record_received(received("EVT-2"))
    batch = [JournalEvent(key, T0 + timedelta(seconds=3), "schema", "valid", "CDA conforms"),
             JournalEvent(key, T0 + timedelta(seconds=1), "pfi", "read", "new CR-BIO for 2 recipient(s)"),
             JournalEvent(key, T0 + timedelta(seconds=2), "recipient", "kept", "PRT RCT", "1.2.3^DOC",
                          "dr.martin@hopital-test.mssante.fr")]
    await journal.add_events(batch)
    await journal.add_events([])

    events = await journal.events(key)
    assert [e.step for e in events] == ["received", "pfi", "recipient", "schema"]
    assert events[2] == batch[2]


# ------------------------------------------------------------------- outcomes

DOC = "1.2.250.1.999.1.1.20250314.7"
MAIL_A = "dr.martin@hopital-test.mssante.fr"
MAIL_B = "dr.bernard@cabinet-test.mssante.fr"


async def test_latest_outcome_per_document_and_destination_wins_and_history_is_kept(journal):
    key, _ = await journal.record_received(received("OUT-1"))
    await journal.record_outcome(Outcome(DOC, MAIL_A, OutcomeStatus.RETRYING, "451 4.3.0 try later", T0, key))
    await journal.record_outcome(Outcome(DOC, MAIL_B, OutcomeStatus.FAILED, "550 5.1.1 unknown", T0, key))
    await journal.record_outcome(Outcome(DOC, MAIL_A, OutcomeStatus.ACCEPTED, "250 2.0.0 queued",
                                         T0 + timedelta(minutes=1), key))

    current = {o.destination: o for o in await journal.outcomes(DOC)}
    assert current == {
        MAIL_A: Outcome(DOC, MAIL_A, OutcomeStatus.ACCEPTED, "250 2.0.0 queued", T0 + timedelta(minutes=1), key),
        MAIL_B: Outcome(DOC, MAIL_B, OutcomeStatus.FAILED, "550 5.1.1 unknown", T0, key),
    }
    history = [(e.destination, e.state, e.detail) for e in await journal.events(key) if e.document_id == DOC]
    assert history == [(MAIL_A, "retrying", "451 4.3.0 try later"), (MAIL_B, "failed", "550 5.1.1 unknown"),
                       (MAIL_A, "accepted", "250 2.0.0 queued")]


async def test_an_older_outcome_arriving_late_does_not_replace_a_newer_one(journal):
    await journal.record_outcome(Outcome(DOC, "dmp", OutcomeStatus.ACCEPTED, "Success", T0 + timedelta(minutes=5)))
    await journal.record_outcome(Outcome(DOC, "dmp", OutcomeStatus.RETRYING, "timeout", T0))

    [current] = await journal.outcomes(DOC)
    assert current.status is OutcomeStatus.ACCEPTED
    assert [e.state for e in await journal.document_events(DOC)] == ["retrying", "accepted"]


async def test_outcomes_of_an_unknown_document_are_empty(journal):
    assert await journal.outcomes("1.2.250.1.999.404") == []


# --------------------------------------------------------------------- search

async def test_search_filters_by_state_and_control_id_newest_first(journal):
    keys = []
    for i in range(5):
        key, _ = await journal.record_received(received(f"S-{i}", at=T0 + timedelta(seconds=i)))
        keys.append(key)
    await journal.set_state(keys[1], MessageState.QUEUED, step="queued")
    await journal.set_state(keys[3], MessageState.QUEUED, step="queued")

    assert [r.key for r in await journal.search(state=MessageState.QUEUED)] == [keys[3], keys[1]]
    assert [r.key for r in await journal.search(control_id="S-2")] == [keys[2]]
    assert [r.key for r in await journal.search(state=MessageState.QUEUED, control_id="S-2")] == []
    assert [r.key for r in await journal.search()] == keys[::-1]
    assert [r.key for r in await journal.search(limit=2)] == [keys[4], keys[3]]


async def test_search_extra_filters(journal):
    old, _ = await journal.record_received(received("X-1", at=T0, message_type="ADT^A03"))
    new, _ = await journal.record_received(received("X-2", at=T0 + timedelta(hours=1), message_type="ORU^R01"))
    lab, _ = await journal.record_received(received("X-3", app="GLIMS", at=T0 + timedelta(hours=2),
                                                    message_type="ORU^R01"))

    assert [r.key for r in await journal.search(since=T0 + timedelta(minutes=30))] == [lab, new]
    assert [r.key for r in await journal.search(message_type="ORU^R01")] == [lab, new]
    assert [r.key for r in await journal.search(sending_application="DXCARE")] == [new, old]


async def test_search_pages_by_keyset_without_gaps_or_repeats(journal):
    keys = []
    for i in range(7):      # two share a received_at: the key breaks the tie
        at = T0 + timedelta(seconds=min(i, 5))
        keys.append((await journal.record_received(received(f"P-{i}", at=at)))[0])
    newest_first = sorted(keys, key=lambda k: (min(keys.index(k), 5), k), reverse=True)

    seen, before = [], None
    while True:
        page = await journal.search(limit=3, before=before)
        seen += [r.key for r in page]
        if len(page) < 3:
            break
        before = (page[-1].received_at, page[-1].key)
    assert seen == newest_first

    queued = [keys[1], keys[4]]
    for key in queued:
        await journal.set_state(key, MessageState.QUEUED, step="queued")
    first = await journal.search(state=MessageState.QUEUED, limit=1)
    rest = await journal.search(state=MessageState.QUEUED, limit=5, before=(first[0].received_at, first[0].key))
    assert [r.key for r in first + rest] == [keys[4], keys[1]]


async def test_search_until_is_exclusive(journal):
    early, _ = await journal.record_received(received("U-1", at=T0))
    await journal.record_received(received("U-2", at=T0 + timedelta(hours=1)))

    assert [r.key for r in await journal.search(until=T0 + timedelta(hours=1))] == [early]
    assert [r.key for r in await journal.search(since=T0, until=T0)] == []



# ------------------------------------------- search by identifiers held as keyed digests

IPP_1, IPP_2 = "IPP7733991", "IPP7733992"
INS_1 = "279035121518989"
DOC_2 = "1.2.250.1.999.1.1^DOC-RENDERED-2"


def with_patient(control_id: str, ipp: str, ins: str = "", at: datetime = T0) -> ReceivedMessage:
    """A message whose PID-3 carries this IPP (and INS), as the door hands it to the journal."""
    pid3 = f"{ipp}^^^CHU-TEST^PI" + (f"~{ins}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS" if ins else "")
    raw = hl7(control_id).replace(b"700123^^^CHU-TEST^PI", pid3.encode("ascii"))
    identifiers = (("ipp", ipp),) + ((("ins", ins),) if ins else ())
    return replace(received(control_id, raw=raw, at=at), identifiers=identifiers)


async def test_search_finds_messages_by_ipp_ins_document_id_and_recipient(journal):
    first, _ = await journal.record_received(with_patient("ID-1", IPP_1, INS_1, at=T0))
    second, _ = await journal.record_received(with_patient("ID-2", IPP_2, at=T0 + timedelta(seconds=1)))
    third, _ = await journal.record_received(with_patient("ID-3", IPP_1, at=T0 + timedelta(seconds=2)))
    await journal.record_outcome(Outcome(DOC, MAIL_A, OutcomeStatus.ACCEPTED, "250 ok", T0, first))
    await journal.record_outcome(Outcome(f"{DOC}#delete", MAIL_B, OutcomeStatus.FAILED, "550", T0, third))
    await journal.bind_content(DOC_2, "ab" * 32, second)
    await journal.record_document(a_document(document_id="TXA-DOC-3", message_key=third))

    async def found(**filters) -> list[str]:
        return [r.key for r in await journal.search(**filters)]

    assert await found(ipp=IPP_1) == [third, first]
    assert await found(ipp=IPP_2) == [second]
    assert await found(ins=INS_1) == [first]
    assert await found(ins=INS_1.lower() + " ") == [first]          # typed loosely, found all the same
    assert await found(ipp=INS_1) == []                             # an INS is not an IPP
    assert await found(document_id=DOC) == [third, first]           # a deletion is found by its document
    assert await found(document_id=DOC_2) == [second]
    assert await found(document_id="DOC-RENDERED-2") == [second]    # the extension alone
    assert await found(document_id="TXA-DOC-3") == [third]
    assert await found(recipient=MAIL_A.upper()) == [first]
    assert await found(recipient=MAIL_B) == [third]
    assert await found(recipient="nobody@hopital-test.mssante.fr") == []
    assert await found(ipp=IPP_1, recipient=MAIL_A) == [first]      # every filter given must match
    assert await found(ipp=IPP_1, control_id="ID-3") == [third]
    page = await journal.search(ipp=IPP_1, limit=1)
    rest = await journal.search(ipp=IPP_1, limit=5, before=(page[0].received_at, page[0].key))
    assert [r.key for r in page + rest] == [third, first]


async def test_a_resend_keeps_the_identifiers_of_the_first_copy(journal):
    key, _ = await journal.record_received(with_patient("ID-DUP", IPP_1))
    again, new = await journal.record_received(with_patient("ID-DUP", IPP_1))
    assert (again, new) == (key, False)
    assert [r.key for r in await journal.search(ipp=IPP_1)] == [key]


async def test_searchable_identifiers_are_not_stored_in_clear(backend, journal):
    key, _ = await journal.record_received(with_patient("ID-REST", IPP_1, INS_1))
    await journal.record_outcome(Outcome(DOC, MAIL_A, OutcomeStatus.ACCEPTED, "250 ok", T0, key))
    assert [r.key for r in await journal.search(ins=INS_1)] == [key]
    await journal.close()
    stored = backend.stored_bytes()
    digests = backend.execute([("SELECT digest FROM message_identifiers WHERE message_key = ?", (key,))])
    assert len(digests) == 4                          # IPP, INS, document id, recipient
    for (digest,) in digests:
        assert len(bytes(digest)) == 16 and bytes(digest) in stored
    for clear in (IPP_1.encode(), INS_1.encode()):    # only inside the sealed raw bytes
        assert (clear in stored) is (not backend.encrypted), clear
    reopened = backend.make()
    async with reopened:
        assert [r.key for r in await reopened.search(ipp=IPP_1)] == [key]


async def test_digests_depend_on_the_journal_key(backend):
    if not backend.encrypted:
        pytest.skip("a clear journal's digests are plain hashes")
    journal = backend.make()
    async with journal:
        key, _ = await journal.record_received(with_patient("ID-KEYED", IPP_1))
    (stored,), = backend.execute([("SELECT digest FROM message_identifiers WHERE message_key = ?", (key,))])
    assert bytes(stored) == IdentifierDigests(KEY).digest("ipp", IPP_1)
    assert bytes(stored) != IdentifierDigests(OTHER_KEY).digest("ipp", IPP_1)
    assert bytes(stored) != IdentifierDigests(None).digest("ipp", IPP_1)



async def test_activity_counts_the_last_hour_and_day_hourly_and_finds_the_oldest_waiting(journal):
    now = T0 + timedelta(days=2)
    at = {"old": now - timedelta(days=3), "day": now - timedelta(hours=5), "hour": now - timedelta(minutes=10)}
    keys = {}
    for name, when in at.items():
        for n in range(2):
            keys[name, n], _ = await journal.record_received(received(f"ACT-{name}-{n}", at=when))
    await journal.set_state(keys["hour", 0], MessageState.DELIVERED, step="delivered")
    await journal.set_state(keys["day", 0], MessageState.QUEUED, step="queued")
    await journal.set_state(keys["old", 0], MessageState.DELIVERED, step="delivered")
    await journal.set_state(keys["old", 1], MessageState.PARKED, step="parked")
    await journal.record_outcome(Outcome("DOC-A", MAIL_A, OutcomeStatus.RETRYING, "451", now - timedelta(minutes=5),
                                         keys["hour", 0]))
    await journal.record_outcome(Outcome("DOC-B", MAIL_A, OutcomeStatus.ACCEPTED, "250", now - timedelta(hours=3),
                                         keys["day", 0]))

    seen = await journal.activity(now)
    counts = {(c.state, c.last_hour, c.last_day) for c in seen.messages}
    assert counts == {("received", 1, 2), ("delivered", 1, 1), ("queued", 0, 1)}
    assert {c.channel for c in seen.messages} == {"mllp"} and {c.message_type for c in seen.messages} == {"ADT^A03"}
    assert len(seen.hourly) == 24 and seen.hourly[-1][0] <= now < seen.hourly[-1][0] + timedelta(hours=1)
    assert sum(received for _, received, _ in seen.hourly) == 4
    assert sum(delivered for _, _, delivered in seen.hourly) == 1
    by_hour = {start: received for start, received, _ in seen.hourly}
    assert by_hour[(now - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)] == 2
    outcomes = {status: rest for status, *rest in seen.outcomes}
    assert outcomes["retrying"] == [1, 1, 1] and outcomes["accepted"] == [0, 1, 0]
    assert seen.oldest_waiting == (keys["day", 1], at["day"], "received")
    # both "hour" messages came from 127.0.0.1 on the same port; two more connections of another host:
    for n, peer in enumerate(("10.1.2.3:50001", "10.1.2.3:50002")):
        await journal.record_received(received(f"ACT-peer-{n}", at=now - timedelta(minutes=n + 1), peer=peer))
    assert (await journal.activity(now)).peers == (
        ("mllp", "10.1.2.3", 2, now - timedelta(minutes=1)), ("mllp", "127.0.0.1", 2, at["hour"]))


# ---------------------------------------------------------------- durability

async def test_everything_survives_close_and_reopen(backend):
    journal = backend.make()
    await journal.open()
    key, _ = await journal.record_received(received("DUR-1"))
    await journal.set_state(key, MessageState.QUEUED, step="queued", ack_code="AA", detail="publié")
    await journal.record_outcome(Outcome(DOC, MAIL_A, OutcomeStatus.ACCEPTED, "250 ok", datetime.now(UTC), key))
    await journal.close()

    reopened = backend.make()
    await reopened.open()
    try:
        record = await reopened.message(key)
        assert (record.raw, record.state, record.ack_code, record.detail) == (
            hl7("DUR-1"), MessageState.QUEUED, "AA", "publié")
        assert [e.step for e in await reopened.events(key)] == ["received", "queued", "outcome"]
        assert [o.status for o in await reopened.outcomes(DOC)] == [OutcomeStatus.ACCEPTED]
        assert await reopened.record_received(received("DUR-1")) == (key, False)
    finally:
        await reopened.close()


async def test_a_write_is_committed_when_it_returns(backend, journal):
    key, _ = await journal.record_received(received("COMMIT-1"))
    await journal.set_state(key, MessageState.QUEUED, step="queued", ack_code="AA")

    other = backend.make()
    await other.open()
    try:
        record = await other.message(key)
        assert (record.state, record.ack_code) == (MessageState.QUEUED, "AA")
    finally:
        await other.close()


async def test_close_commits_the_writes_already_queued(backend):
    journal = backend.make()
    await journal.open()
    tasks = [asyncio.create_task(journal.record_received(received(f"Q-{i}"))) for i in range(50)]
    await asyncio.sleep(0)          # let every task queue its write
    await journal.close()
    keys = [task.result()[0] for task in tasks]

    reopened = backend.make()
    await reopened.open()
    try:
        assert {r.key for r in await reopened.search(limit=100)} == set(keys)
    finally:
        await reopened.close()


async def test_writes_after_close_raise_transient_error(backend):
    journal = backend.make()
    await journal.open()
    await journal.close()

    with pytest.raises(TransientError):
        await journal.record_received(received("LATE-1"))


async def test_concurrent_writers_all_stored_with_unique_keys(journal):
    async def connection(n: int) -> list[tuple[str, bool]]:
        return [await journal.record_received(received(f"C{n}-{i}")) for i in range(500)]

    results = await asyncio.gather(*(connection(n) for n in range(8)))

    keys = [key for batch in results for key, _ in batch]
    assert all(is_new for batch in results for _, is_new in batch)
    assert len(set(keys)) == 8 * 500
    assert {r.key for r in await journal.search(limit=10_000)} == set(keys)
    assert (await journal.message(results[5][321][0])).raw == hl7("C5-321")


async def test_a_faulty_write_fails_alone_in_its_batch(journal):
    results = await asyncio.gather(
        *(journal.record_received(received(f"B-{i}")) for i in range(5)),
        journal.set_state("01NOSUCHKEY0000000000000000", MessageState.QUEUED, step="queued"),
        *(journal.record_received(received(f"B-{i}")) for i in range(5, 10)),
        return_exceptions=True)

    assert isinstance(results[5], KeyError)
    good = results[:5] + results[6:]
    assert all(isinstance(result, tuple) and result[1] for result in good)
    assert len(await journal.search(limit=100)) == 10


async def test_concurrent_writes_share_commits(journal):
    async def connection(n: int) -> None:
        for i in range(100):
            await journal.record_received(received(f"G{n}-{i}"))

    await asyncio.gather(*(connection(n) for n in range(8)))

    stats = journal.stats()
    assert stats["operations"] == 800
    assert stats["commits"] < stats["operations"]


# ------------------------------------------------------------------ at rest

async def test_contents_are_encrypted_at_rest_and_metadata_stays_searchable(backend, journal):
    secret = b"MARKER-NIR-180017512345678"
    key, _ = await journal.record_received(received("REST-1", raw=hl7("REST-1", note=b"NTE|1||" + secret + b"\r")))
    await journal.set_state(key, MessageState.PARKED, step="validated", detail="MARKER-DETAIL-DURAND")
    await journal.record_outcome(Outcome(DOC, MAIL_A, OutcomeStatus.FAILED, "MARKER-OUTCOME-DURAND", T0, key))
    await journal.record_document(a_document(cda=b"<ClinicalDocument>MARKER-CDA-DURAND</ClinicalDocument>"))
    await journal.record_job_content("K-1:DOC", key, b"<ClinicalDocument>MARKER-JOB-DURAND</ClinicalDocument>")
    while_open = backend.stored_bytes()
    await journal.close()
    after_close = backend.stored_bytes()

    for stored in (while_open, after_close):
        assert b"REST-1" in stored                      # searchable metadata in clear
        for marker in (secret, b"MARKER-DETAIL-DURAND", b"MARKER-OUTCOME-DURAND", b"MARKER-CDA-DURAND",
                       b"MARKER-JOB-DURAND"):
            assert (marker in stored) is (not backend.encrypted), marker


async def test_opening_with_a_key_that_does_not_fit_fails_clearly(backend, journal):
    await journal.record_received(received("K-1"))
    await journal.close()

    wrong = backend.make(key=OTHER_KEY) if backend.encrypted else backend.make(key=KEY)
    with pytest.raises(EncryptionKeyError) as error:
        await wrong.open()
    assert isinstance(error.value, ConfigError)
    assert ("wrong key" if backend.encrypted else "without encryption") in str(error.value)


async def test_an_encrypted_journal_needs_its_key(backend, journal):
    if not backend.encrypted:
        pytest.skip("clear journal")
    await journal.close()

    with pytest.raises(EncryptionKeyError, match="key is required"):
        await backend.make(key=None).open()


async def test_a_value_moved_to_another_row_does_not_decrypt(backend):
    async with backend.make(key=KEY) as journal:
        first, _ = await journal.record_received(received("MOVE-1"))
        second, _ = await journal.record_received(received("MOVE-2"))
    backend.execute([("UPDATE message_contents SET raw = (SELECT raw FROM message_contents WHERE key = ?) "
                      "WHERE key = ?", (first, second))])

    async with backend.make(key=KEY) as journal:
        assert (await journal.message(first)).raw == hl7("MOVE-1")
        with pytest.raises(DecryptError, match="wrong key or altered value"):
            await journal.message(second)


async def test_events_cannot_be_rewritten(backend, journal):
    await journal.record_received(received("APPEND-1"))
    await journal.close()
    with pytest.raises((sqlite3.Error, psycopg.Error), match="append-only"):
        backend.execute([("UPDATE events SET step = 'forged'", ())])


# ------------------------------------------------------ SQLite adapter only

def test_from_url_reads_absolute_and_relative_paths():
    assert from_url("sqlite:///var/lib/liaison/journal.sqlite").path == Path("/var/lib/liaison/journal.sqlite")
    assert from_url("sqlite:////var/lib/liaison/journal.sqlite").path == Path("/var/lib/liaison/journal.sqlite")
    assert from_url("sqlite:journal.sqlite").path == Path("journal.sqlite")
    with pytest.raises(ConfigError):
        from_url("postgresql://db/liaison")


def test_a_key_must_be_32_bytes(tmp_path):
    with pytest.raises(EncryptionKeyError, match="32 bytes"):
        SqliteJournal(tmp_path / "j.sqlite", key=b"too short")


async def test_a_locked_database_raises_transient_error_then_recovers(tmp_path):
    path = tmp_path / "j.sqlite"
    async with SqliteJournal(path, busy_timeout=0.05) as journal:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(TransientError, match="journal unavailable"):
            await journal.record_received(received("LOCK-1"))
        holder.execute("ROLLBACK")
        holder.close()

        assert (await journal.record_received(received("LOCK-1")))[1] is True


async def test_file_is_private_and_schema_version_recorded(tmp_path):
    path = tmp_path / "sub" / "j.sqlite"
    async with SqliteJournal(path):
        pass
    async with SqliteJournal(path):       # reopening does not migrate again
        pass

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(v,) for v in range(1, LATEST + 1)]


async def test_claim_gives_one_sender_per_document_and_recipient(journal):
    args = dict(message_key="K1", stale_after=timedelta(minutes=5))
    assert await journal.claim("DOC-C", "a@x.mssante.fr", **args) is True
    assert await journal.claim("DOC-C", "a@x.mssante.fr", **args) is False          # someone is sending
    assert await journal.claim("DOC-C", "b@x.mssante.fr", **args) is True           # another recipient
    now = datetime.now(UTC)
    await journal.record_outcome(Outcome("DOC-C", "a@x.mssante.fr", OutcomeStatus.RETRYING, "451", now, "K1"))
    assert await journal.claim("DOC-C", "a@x.mssante.fr", **args) is True           # a 4xx may be retried
    await journal.record_outcome(Outcome("DOC-C", "a@x.mssante.fr", OutcomeStatus.ACCEPTED, "250",
                                         now + timedelta(seconds=1), "K1"))
    assert await journal.claim("DOC-C", "a@x.mssante.fr", **args) is False          # final: never again
    stale = dict(message_key="K2", stale_after=timedelta(0))
    assert await journal.claim("DOC-C", "b@x.mssante.fr", **stale) is True          # its sender died
    statuses = {o.destination: o.status for o in await journal.outcomes("DOC-C")}
    assert statuses == {"a@x.mssante.fr": OutcomeStatus.ACCEPTED, "b@x.mssante.fr": OutcomeStatus.SENDING}


async def test_a_failure_blocks_its_own_message_but_a_resend_may_try_again(journal):
    args = dict(stale_after=timedelta(minutes=5))
    assert await journal.claim("DOC-F", "a@x.mssante.fr", message_key="K1", **args)
    await journal.record_outcome(Outcome("DOC-F", "a@x.mssante.fr", OutcomeStatus.FAILED, "550 5.1.1",
                                         datetime.now(UTC), "K1"))
    assert await journal.claim("DOC-F", "a@x.mssante.fr", message_key="K1", **args) is False   # a redelivery
    assert await journal.claim("DOC-F", "a@x.mssante.fr", message_key="K2", **args) is True    # a re-send
    assert await journal.claim("DOC-F", "a@x.mssante.fr", message_key="K3", **args) is False   # now claimed


async def test_renewing_a_claim_keeps_it_from_looking_stale(journal):
    args = dict(stale_after=timedelta(minutes=5))
    assert await journal.claim("DOC-R", "a@x.mssante.fr", message_key="K1", **args)
    assert await journal.claim("DOC-R", "b@x.mssante.fr", message_key="K1", **args)
    assert await journal.claim("DOC-R", "c@x.mssante.fr", message_key="K2", **args)
    await journal.record_outcome(Outcome("DOC-R", "b@x.mssante.fr", OutcomeStatus.ACCEPTED, "250",
                                         datetime.now(UTC), "K1"))
    mid = datetime.now(UTC)
    renewed = await journal.renew_claims("DOC-R", ["a@x.mssante.fr", "b@x.mssante.fr", "c@x.mssante.fr"],
                                         message_key="K1")
    assert renewed == 1                           # b is final, c is another message's claim
    outcomes = {o.destination: o for o in await journal.outcomes("DOC-R")}
    assert outcomes["a@x.mssante.fr"].status == OutcomeStatus.SENDING and outcomes["a@x.mssante.fr"].at >= mid
    assert outcomes["b@x.mssante.fr"].status == OutcomeStatus.ACCEPTED and outcomes["b@x.mssante.fr"].at < mid
    stale = await journal.stale_claims(mid)       # a lease ending at ``mid``: only c was left unrenewed
    assert [(o.destination, o.message_key) for o in stale] == [("c@x.mssante.fr", "K2")]
    assert await journal.renew_claims("DOC-R", [], message_key="K1") == 0


async def test_stale_claims_lists_sending_claims_older_than_the_lease_oldest_first(journal):
    args = dict(message_key="K1", stale_after=timedelta(minutes=5))
    assert await journal.claim("DOC-S", "a@x.mssante.fr", **args)
    assert await journal.claim("DOC-S", "b@x.mssante.fr", **args)
    assert await journal.claim("DOC-T", "c@x.mssante.fr", **args)
    await journal.record_outcome(Outcome("DOC-T", "c@x.mssante.fr", OutcomeStatus.ACCEPTED, "250",
                                         datetime.now(UTC) + timedelta(seconds=1), "K1"))
    assert await journal.stale_claims(datetime.now(UTC) - timedelta(minutes=1)) == []      # all fresh
    stale = await journal.stale_claims(datetime.now(UTC) + timedelta(minutes=1))
    assert [(o.document_id, o.destination, o.status) for o in stale] == [
        ("DOC-S", "a@x.mssante.fr", OutcomeStatus.SENDING), ("DOC-S", "b@x.mssante.fr", OutcomeStatus.SENDING)]
    assert stale[0].message_key == "K1" and stale[0].detail == "claimed for sending"
    assert len(await journal.stale_claims(datetime.now(UTC) + timedelta(minutes=1), limit=1)) == 1


async def test_a_document_id_is_bound_to_the_first_content_dispatched_under_it(journal):
    first = await journal.bind_content("DOC-B", "d1" * 32, "K1")
    assert (first.document_id, first.digest, first.message_key) == ("DOC-B", "d1" * 32, "K1")
    again = await journal.bind_content("DOC-B", "d1" * 32, "K2")         # a re-send: same content, other message
    assert again == first
    other = await journal.bind_content("DOC-B", "d2" * 32, "K3")         # other content under the same id
    assert other == first
    assert (await journal.bind_content("DOC-C", "d2" * 32, "K3")).message_key == "K3"


async def test_reading_a_binding_never_creates_one(journal):
    assert await journal.content_binding("DOC-R") is None
    assert await journal.content_binding("DOC-R") is None                # still nothing: the read bound nothing
    bound = await journal.bind_content("DOC-R", "d3" * 32, "K4")
    assert await journal.content_binding("DOC-R") == bound
    assert await journal.content_binding("DOC-S") is None


def _claim_everything(url: str, key: bytes | None, targets: list[tuple[str, str]], message_key: str,
                      start: multiprocessing.synchronize.Barrier, won: multiprocessing.Queue) -> None:
    """One worker process: open the journal, wait for the other one, claim every target at once, say which it got."""
    async def claim_all() -> list[tuple[str, str]]:
        journal = journal_from_url(url, key)
        await journal.open()
        try:
            start.wait(timeout=60)
            results = await asyncio.gather(*(journal.claim(document, destination, message_key=message_key,
                                                           stale_after=timedelta(minutes=5))
                                              for document, destination in targets))
        finally:
            await journal.close()
        return [target for target, taken in zip(targets, results) if taken]

    try:
        won.put((message_key, asyncio.run(claim_all())))
    except BaseException as exc:      # say so at once rather than let the test (and the other process) wait
        start.abort()
        won.put((message_key, f"{type(exc).__name__}: {exc}"))
        raise


async def test_two_processes_claiming_the_same_recipients_get_each_one_once(backend):
    async with backend.make():
        pass                                # the schema exists before the race
    targets = [(f"DOC-{d}", f"dr.{r}@x.mssante.fr") for d in range(40) for r in range(5)]
    shuffled = random.Random(13).sample(targets, len(targets))
    context = multiprocessing.get_context("spawn")
    start, won = context.Barrier(2), context.Queue()
    key = KEY if backend.encrypted else None
    workers = [context.Process(target=_claim_everything, args=(backend.url, key, order, name, start, won))
               for name, order in (("K-A", targets), ("K-B", shuffled[::-1]))]
    for worker in workers:
        worker.start()
    try:
        results = dict([await asyncio.to_thread(won.get, True, 120) for _ in workers])
    finally:
        for worker in workers:
            await asyncio.to_thread(worker.join, 60)

    assert all(isinstance(result, list) for result in results.values()), results
    assert [worker.exitcode for worker in workers] == [0, 0]
    first, second = set(results["K-A"]), set(results["K-B"])
    assert first.isdisjoint(second)
    assert first | second == set(targets)
    async with backend.make() as journal:
        holders = {(o.document_id, o.destination): o.message_key
                   for document in {d for d, _ in targets} for o in await journal.outcomes(document)}
    assert holders == {**dict.fromkeys(first, "K-A"), **dict.fromkeys(second, "K-B")}


# ------------------------------------------------------------------- stays

def a_stay(encounter: str = "V2025000001", **changes) -> Stay:
    fields = dict(facility="CHU-TEST", encounter=encounter, state=StayState.DISCHARGED, ipp="IPP000123",
                  ins="285057512345678", unit="CARDIO", attending="810000023084", referring="801234567897",
                  medecin_traitant="812345678903", discharge_disposition="8", discharge_destination="",
                  admitted_at=T0 - timedelta(days=3), discharged_at=T0, letter_due_at=T0 + timedelta(hours=12),
                  message_key="K-A03")
    fields.update(changes)
    return Stay(**fields)


async def test_a_stay_round_trips_and_is_replaced_by_facility_and_encounter(journal):
    stay = a_stay()
    await journal.record_stay(stay)
    stored = await journal.stay("CHU-TEST", "V2025000001")
    assert replace(stored, updated_at=None) == stay and stored.updated_at is not None
    assert await journal.stay("OTHER-FACILITY", "V2025000001") is None

    await journal.record_stay(replace(stay, state=StayState.ADMITTED, unit="NEURO", discharged_at=None,
                                      letter_due_at=None, message_key="K-A13"))
    again = await journal.stay("CHU-TEST", "V2025000001")
    assert (again.state, again.unit, again.discharged_at, again.letter_due_at, again.message_key) == \
        (StayState.ADMITTED, "NEURO", None, None, "K-A13")


async def test_stays_due_are_discharged_unsent_unalerted_and_past_their_deadline(journal):
    due_at = T0 + timedelta(hours=12)
    await journal.record_stay(a_stay("DUE"))
    await journal.record_stay(a_stay("LATER", letter_due_at=due_at + timedelta(hours=1)))
    await journal.record_stay(a_stay("SENT", letter_sent_at=T0))
    await journal.record_stay(a_stay("ALERTED", alert_raised_at=due_at))
    await journal.record_stay(a_stay("ADMITTED", state=StayState.ADMITTED))
    await journal.record_stay(a_stay("CANCELLED", state=StayState.CANCELLED))
    await journal.record_stay(a_stay("OTHER-SITE", facility="CH-AUTRE", letter_due_at=due_at - timedelta(hours=2)))

    assert await journal.stays_due(due_at - timedelta(hours=3)) == []
    assert [s.encounter for s in await journal.stays_due(due_at - timedelta(seconds=1))] == ["OTHER-SITE"]
    assert [s.encounter for s in await journal.stays_due(due_at)] == ["OTHER-SITE", "DUE"]
    assert [s.encounter for s in await journal.stays_due(due_at + timedelta(hours=2))] == \
        ["OTHER-SITE", "DUE", "LATER"]
    assert [s.encounter for s in await journal.stays_due(due_at + timedelta(hours=2), limit=1)] == ["OTHER-SITE"]


async def test_mark_stay_sets_letter_and_alert_and_returns_the_previous_stay(journal):
    due_at = T0 + timedelta(hours=12)
    await journal.record_stay(a_stay())
    alerted_at = due_at + timedelta(minutes=1)

    before = await journal.mark_stay("CHU-TEST", "V2025000001", alert_raised_at=alerted_at)
    assert before.alert_raised_at is None
    assert (await journal.stay("CHU-TEST", "V2025000001")).alert_raised_at == alerted_at
    assert await journal.stays_due(due_at + timedelta(hours=1)) == []          # alerted once only

    before = await journal.mark_stay("CHU-TEST", "V2025000001", letter_sent_at=alerted_at, clear_alert=True)
    assert before.alert_raised_at == alerted_at
    after = await journal.stay("CHU-TEST", "V2025000001")
    assert (after.letter_sent_at, after.alert_raised_at) == (alerted_at, None)
    assert await journal.stays_due(due_at + timedelta(hours=1)) == []          # sent: never due again

    assert await journal.mark_stay("CHU-TEST", "UNKNOWN", letter_sent_at=alerted_at) is None


async def test_two_journals_marking_the_same_stays_each_find_an_alert_unraised_once(backend, journal):
    encounters = [f"V{n:03d}" for n in range(30)]
    for encounter in encounters:
        await journal.record_stay(a_stay(encounter))
    other = backend.make()
    await other.open()
    try:
        befores = await asyncio.gather(*(door.mark_stay("CHU-TEST", encounter, alert_raised_at=T0)
                                         for encounter in encounters for door in (journal, other)))
    finally:
        await other.close()

    assert sum(before.alert_raised_at is None for before in befores) == len(encounters)


async def test_stays_survive_reopening(backend):
    async with backend.make() as first:
        await first.record_stay(a_stay())
    async with backend.make() as second:
        assert (await second.stay("CHU-TEST", "V2025000001")).ins == "285057512345678"


async def test_the_ins_of_a_stay_is_encrypted_at_rest(backend, journal):
    await journal.record_stay(a_stay(ins="285057512345678"))
    await journal.close()
    stored = backend.stored_bytes()
    assert b"IPP000123" in stored                      # identifiers stay searchable
    assert (b"285057512345678" in stored) is not backend.encrypted


def a_document(**changes) -> RenderedDocument:
    fields = dict(facility="CHU-TEST", source_id="TXA-DOC-1", document_id="TXA-DOC-1", set_id="SET-1", version=1,
                  type_code="11490-0", action=Action.PUBLISH, message_key="K-MDM-1", cda=b"<ClinicalDocument/>")
    fields.update(changes)
    return RenderedDocument(**fields)


async def test_a_rendered_document_is_found_by_facility_and_source_id_and_its_latest_version_wins(journal):
    first = a_document()
    await journal.record_document(first)
    assert await journal.rendered_document("CHU-TEST", "TXA-DOC-1") == first
    assert await journal.rendered_document("OTHER-SITE", "TXA-DOC-1") is None
    assert await journal.rendered_document("CHU-TEST", "TXA-DOC-2") is None

    second = a_document(document_id="TXA-DOC-1.2", version=2, action=Action.REPLACE, message_key="K-MDM-2",
                        cda=b"<ClinicalDocument>v2</ClinicalDocument>")
    await journal.record_document(second)
    assert await journal.rendered_document("CHU-TEST", "TXA-DOC-1") == second


async def test_a_large_jobs_cda_is_kept_once_under_its_job_id(journal):
    cda = b"<ClinicalDocument>" + bytes(range(256)) * 8192 + b"</ClinicalDocument>"      # 2 MiB, every byte value
    assert await journal.job_content("K-1:DOC-1") is None
    await journal.record_job_content("K-1:DOC-1", "K-1", cda)
    await journal.record_job_content("K-1:DOC-1", "K-1", b"<other/>")     # a redelivered message: the first stays
    kept = await journal.job_content("K-1:DOC-1")
    assert type(kept) is bytes and kept == cda
    assert await journal.job_content("K-1:DOC-2") is None


async def test_the_dmp_entry_of_a_document_is_kept_and_its_latest_version_wins(journal):
    assert await journal.dmp_entry("DOC-1") is None
    await journal.record_dmp_entry(DmpEntry("DOC-1", "urn:uuid:first", 1, "K1"))
    await journal.record_dmp_entry(DmpEntry("DOC-1", "urn:uuid:second", 2, "K2"))
    assert await journal.dmp_entry("DOC-1") == DmpEntry("DOC-1", "urn:uuid:second", 2, "K2")


async def test_discharges_lists_the_stays_discharged_in_a_window_in_discharge_order(journal):
    await journal.record_stay(a_stay("V-LATE", discharged_at=T0 + timedelta(hours=5)))
    await journal.record_stay(a_stay("V-EARLY", discharged_at=T0 + timedelta(hours=1), unit="NEURO"))
    await journal.record_stay(a_stay("V-BEFORE", discharged_at=T0 - timedelta(hours=1)))
    await journal.record_stay(a_stay("V-IN", state=StayState.ADMITTED, discharged_at=None))
    await journal.mark_stay("CHU-TEST", "V-LATE", letter_sent_at=T0 + timedelta(hours=6))

    found = await journal.discharges(T0, T0 + timedelta(days=1))
    assert [s.encounter for s in found] == ["V-EARLY", "V-LATE"]
    assert found[0].unit == "NEURO" and found[1].letter_sent_at == T0 + timedelta(hours=6)
    assert [s.encounter for s in await journal.discharges(T0, T0 + timedelta(days=1), limit=1)] == ["V-EARLY"]


async def test_metrics_sample_gives_the_events_after_its_cursor_with_their_times(journal):
    start = await journal.metrics_sample(None, T0)
    assert start.events == ()
    key, _ = await journal.record_received(received("MET-1", at=T0))
    await journal.add_event(JournalEvent(key, T0 + timedelta(milliseconds=3), "queued", "queued"))
    await journal.record_outcome(Outcome(DOC, MAIL_A, OutcomeStatus.ACCEPTED, "250", T0 + timedelta(seconds=9), key))
    await journal.set_state(key, MessageState.PARKED, step="parked")
    await journal.record_stay(a_stay("V-MET", discharged_at=T0 - timedelta(days=1), letter_due_at=T0 - timedelta(hours=1)))

    sample = await journal.metrics_sample(start.last_event, T0)
    steps = [(e.step, e.state, e.channel) for e in sample.events]
    assert steps == [("received", "received", "mllp"), ("queued", "queued", "mllp"),
                     ("outcome", "accepted", "mllp"), ("parked", "parked", "mllp")]
    outcome = sample.events[2]
    assert outcome.received_at == T0 and outcome.queued_at == T0 + timedelta(milliseconds=3)
    assert sample.events[1].queued_at is None
    assert (sample.parked, sample.overdue_letters) == (1, 1)
    again = await journal.metrics_sample(sample.last_event, T0)
    assert again.events == () and again.last_event == sample.last_event
    assert len((await journal.metrics_sample(start.last_event, T0, limit=2)).events) == 2


# ---------------------------------------------------------- sent mails and notices

def a_mail(envelope_id: str = "ENV-1", *, message_id: str = "<m1@liaison.test>", message_key: str = "K-ORU-1",
           recipients=("martin@hopital-test.mssante.fr", "dupont@hopital-test.mssante.fr")):
    from router.model import MessageSource
    from router.ports import MailRecipient, SentMail
    source = MessageSource("DXCARE", "CHU-TEST", "LIAISON", "CHU-TEST", "CTRL-1", "ORU^R01",
                           msh="MSH|^~\\&|DXCARE|CHU-TEST|LIAISON|CHU-TEST|20250314||ORU^R01|CTRL-1|P|2.5")
    return SentMail(envelope_id=envelope_id, message_id=message_id, message_key=message_key, document_id="DOC-1",
                    delivery_key="DOC-1", source=source, ack_reception=True, ack_lecture=False, sent_at=T0,
                    recipients=tuple(MailRecipient(a, identifier=f"8{i:011d}") for i, a in enumerate(recipients)))


async def test_a_sent_mail_is_found_by_envelope_id_and_by_message_id_with_its_recipients(journal):
    await journal.record_mail(a_mail())

    by_envid = await journal.sent_mail(envelope_id="ENV-1")
    by_message_id = await journal.sent_mail(message_id="<m1@liaison.test>")
    expected = a_mail()
    assert by_envid == by_message_id == replace(expected, recipients=tuple(sorted(expected.recipients,
                                                                                key=lambda r: r.address)))
    assert [r.identifier for r in by_envid.recipients] == ["800000000001", "800000000000"]   # by address
    assert await journal.sent_mail(envelope_id="ENV-NONE") is None
    assert await journal.sent_mail(message_id="<none@x>") is None


async def test_a_mail_kept_twice_keeps_its_first_copy(journal):
    await journal.record_mail(a_mail())
    await journal.record_mail(a_mail(message_key="K-OTHER"))

    assert (await journal.sent_mail(envelope_id="ENV-1")).message_key == "K-ORU-1"
    assert [m.envelope_id for m in await journal.sent_mails("K-ORU-1")] == ["ENV-1"]
    assert await journal.sent_mails("K-OTHER") == []


async def test_a_recipient_step_is_marked_once_and_becomes_an_event_of_its_message(journal):
    from router.ports import MailStep
    key, _ = await journal.record_received(received("MAIL-1"))
    await journal.record_mail(a_mail(message_key=key))
    at = T0 + timedelta(minutes=2)

    first = await journal.mark_mail("ENV-1", "martin@hopital-test.mssante.fr", MailStep.DELIVERED, at=at,
                                    detail="2.0.0 delivered")
    again = await journal.mark_mail("ENV-1", "martin@hopital-test.mssante.fr", MailStep.DELIVERED,
                                    at=at + timedelta(minutes=1), detail="2.0.0 delivered (second copy)")

    assert (first, again) == (True, False)
    martin = {r.address: r for r in (await journal.sent_mail(envelope_id="ENV-1")).recipients}[
        "martin@hopital-test.mssante.fr"]
    assert martin.delivered_at == at and martin.detail == "2.0.0 delivered"
    notices = [e for e in await journal.events(key) if e.step == "notice"]
    assert [(e.state, e.destination, e.document_id) for e in notices] == [
        ("delivered", "martin@hopital-test.mssante.fr", "DOC-1")]


async def test_delivered_and_failed_exclude_each_other_and_unknown_recipients_change_nothing(journal):
    from router.ports import MailStep
    await journal.record_mail(a_mail())
    martin, dupont = "martin@hopital-test.mssante.fr", "dupont@hopital-test.mssante.fr"

    assert await journal.mark_mail("ENV-1", martin, MailStep.FAILED, at=T0, detail="5.1.1") is True
    assert await journal.mark_mail("ENV-1", martin, MailStep.DELIVERED, at=T0) is False
    assert await journal.mark_mail("ENV-1", dupont, MailStep.DELIVERED, at=T0) is True
    assert await journal.mark_mail("ENV-1", dupont, MailStep.FAILED, at=T0) is False
    assert await journal.mark_mail("ENV-1", dupont, MailStep.READ, at=T0) is True
    assert await journal.mark_mail("ENV-1", "nobody@x.fr", MailStep.READ, at=T0) is False
    assert await journal.mark_mail("ENV-NONE", martin, MailStep.READ, at=T0) is False
    await journal.unmark_mail("ENV-1", dupont, MailStep.READ)
    assert await journal.mark_mail("ENV-1", dupont, MailStep.READ, at=T0) is True


async def test_a_notice_is_kept_once_and_listed_newest_first_by_verdict(journal):
    from router.ports import NoticeRecord, NoticeVerdict
    first = NoticeRecord("<dsn-1@relay>", "dsn", NoticeVerdict.MATCHED, T0, "ENV-1", "K1", "delivered")
    garbage = NoticeRecord("sha256:ab12", "unknown", NoticeVerdict.MALFORMED, T0 + timedelta(seconds=1),
                           detail="not a delivery or read notice")

    assert await journal.record_notice(first) is True
    assert await journal.record_notice(garbage) is True
    assert await journal.record_notice(first) is False
    assert await journal.notices() == [garbage, first]
    assert await journal.notices(verdicts=frozenset({NoticeVerdict.MALFORMED, NoticeVerdict.UNMATCHED})) == [garbage]
    assert await journal.notices(limit=1) == [garbage]


async def test_reindex_files_older_messages_under_their_identifiers_again(backend, journal):
    first, _ = await journal.record_received(with_patient("RIX-1", IPP_1, INS_1))
    second, _ = await journal.record_received(with_patient("RIX-2", IPP_2))
    await journal.record_outcome(Outcome(DOC, MAIL_A, OutcomeStatus.ACCEPTED, "250", T0, first))
    await journal.bind_content(DOC_2, "ab" * 32, second)
    await journal.record_document(a_document(document_id="TXA-RIX", message_key=second))
    await journal.close()
    backend.execute([("DELETE FROM message_identifiers", ())])      # as a journal of before v7 has them
    reopened = backend.make()
    async with reopened:
        assert await reopened.search(ipp=IPP_1) == []
        counts = await reopened.reindex(batch=1)
        again = await reopened.reindex()                                # idempotent
        found = {name: [r.key for r in await reopened.search(**{kind: value})] for name, kind, value in (
            ("ipp", "ipp", IPP_1), ("ins", "ins", INS_1), ("ipp2", "ipp", IPP_2), ("doc", "document_id", DOC),
            ("doc2", "document_id", "DOC-RENDERED-2"), ("rendered", "document_id", "TXA-RIX"),
            ("mail", "recipient", MAIL_A))}
    assert counts == again == {"messages": 2, "outcomes": 1, "document_contents": 1, "documents": 1}
    assert found == {"ipp": [first], "ins": [first], "ipp2": [second], "doc": [first], "doc2": [second],
                     "rendered": [second], "mail": [first]}
