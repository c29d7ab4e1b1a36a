"""``liaison release|retry|discard|replay`` run as an operator runs them (a subprocess on this tree).

One line per message on stdout (``KEY<TAB>done|refused<TAB>what``), the reason of a refusal on stderr,
exit 0 / 1 (refused) / 2 (usage or configuration); the action lands in the journal and the console's
audit trail under ``--user``; ``replay`` puts the raw HL7 back on the bus.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from channels.console.users import SqliteUsers
from channels.embedded import EmbeddedBus
from channels.journal import SqliteJournal
from router import queues
from router.ports import MessageState, ReceivedMessage
from tests.integration.test_cli_manners import config, liaison
from tests.support.poll import eventually

RAW = b"MSH|^~\\&|HIS|CH|LIAISON|CH|20261206093000||ORU^R01^ORU_R01|{id}|P|2.5\rPID|||700123^^^CH^PI\r"


async def journal_with(path, states: dict[str, MessageState]) -> dict[str, str]:
    keys = {}
    async with SqliteJournal(path) as journal:
        for control_id, state in states.items():
            key, _ = await journal.record_received(ReceivedMessage(
                raw=RAW.replace(b"{id}", control_id.encode()), channel="his", sending_application="HIS",
                sending_facility="CH", control_id=control_id, message_type="ORU^R01", received_at=datetime.now(UTC)))
            await journal.set_state(key, state, step="test")
            keys[control_id] = key
    return keys


def toml(tmp_path):
    return str(config(tmp_path, f'[engine]\njournal = "sqlite://{tmp_path}/journal.sqlite"\n'
                                f'bus = "embedded://{tmp_path}/bus.sqlite"\n[console]\nusers = "users.sqlite"\n'))


async def test_discard_says_what_it_did_per_message_and_audits_it(tmp_path):
    keys = await journal_with(tmp_path / "journal.sqlite", {"A": MessageState.FAILED, "B": MessageState.PARKED,
                                                             "C": MessageState.DELIVERED})
    path = toml(tmp_path)
    done = liaison("discard", "-c", path, keys["A"], keys["B"], "--reason", "sent by post", "--user", "alice")
    refused = liaison("discard", "-c", path, keys["C"], "NO-SUCH-KEY", "--reason", "x", "--user", "alice")
    no_reason = liaison("discard", "-c", path, keys["A"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{keys['A']}\tdone\tdiscarded: sent by post",
                                        f"{keys['B']}\tdone\tdiscarded: sent by post"]
    assert refused.returncode == 1
    assert [line.split("\t")[1] for line in refused.stdout.splitlines()] == ["refused", "refused"]
    assert "only a parked, failed or partly delivered message is discarded" in refused.stderr
    assert "no message 'NO-SUCH-KEY'" in refused.stderr and "Traceback" not in refused.stderr
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        assert (await journal.message(keys["A"])).state == MessageState.DISCARDED
        assert (await journal.message(keys["C"])).state == MessageState.DELIVERED
    users = SqliteUsers(tmp_path / "users.sqlite").open()
    try:
        trail = [(u, a, t, o) for _, u, a, t, o in users.audit_trail()]
    finally:
        users.close()
    assert ("alice", "discard", keys["A"], "done") in trail and ("alice", "discard", keys["C"], "refused") in trail
    assert ("alice", "discard", "NO-SUCH-KEY", "refused: no such message") in trail


async def test_replay_puts_the_raw_message_back_on_the_inbound_queue(tmp_path):
    keys = await journal_with(tmp_path / "journal.sqlite", {"R": MessageState.PARTIAL, "P": MessageState.PROCESSING})
    path = toml(tmp_path)
    retry = liaison("retry", "-c", path, keys["R"], "--recipient", "a@x.mssante.fr")
    release = liaison("release", "-c", path, keys["R"])
    done = liaison("replay", "-c", path, keys["R"])
    busy = liaison("replay", "-c", path, keys["P"])
    again = liaison("replay", "-c", path, keys["R"])            # queued now: its new run is not over
    assert done.returncode == 0 and done.stdout.startswith(f"{keys['R']}\tdone\truns again from its HL7")
    assert busy.returncode == 1 and "its own run is not over" in busy.stderr
    assert again.returncode == 1 and "is queued" in again.stderr
    assert release.returncode == 1 and "nothing of message" in release.stderr
    assert retry.returncode == 1 and "has no recipient 'a@x.mssante.fr'" in retry.stderr
    bus = EmbeddedBus(tmp_path / "bus.sqlite", poll_interval=0.05)
    await bus.connect()
    got = []

    async def take(delivery) -> None:
        got.append(delivery.envelope)
        await delivery.ack()

    subscription = await bus.consume(queues.INBOUND, take)
    try:
        await eventually(lambda: got, "the replayed message")
        await asyncio.sleep(0.2)
    finally:
        await subscription.cancel()
        await bus.close()
    assert [e.message_id for e in got] == [keys["R"]] and b"|R|P|2.5" in got[0].body


def test_an_action_on_a_journal_that_does_not_exist_names_it_and_creates_nothing(tmp_path):
    done = liaison("release", "-c", toml(tmp_path), "01ABC")
    assert done.returncode == 2 and f"{tmp_path}/journal.sqlite does not exist" in done.stderr
    assert not (tmp_path / "journal.sqlite").exists()
