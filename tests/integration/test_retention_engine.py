"""``[retention]`` inside the engine: the periodic pass removes old final messages and old audit rows.

A parked message of the same age stays (it waits for its operator); ``liaison retention --dry-run``
counts before, and says so in one line per kind.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from channels.app.engine import Engine
from channels.app.settings import settings_from_dict
from channels.console.users import SqliteUsers
from channels.journal import SqliteJournal
from router.errors import ConfigError
from router.ports import MessageState, ReceivedMessage
from router.retention import retention_settings
from tests.integration.test_cli_manners import config, liaison
from tests.support.poll import eventually

OLD = datetime.now(UTC) - timedelta(days=10)


async def old_messages(path) -> dict[str, str]:
    keys = {}
    async with SqliteJournal(path) as journal:
        for control_id, state in (("DONE", MessageState.DELIVERED), ("WAITS", MessageState.PARKED)):
            key, _ = await journal.record_received(ReceivedMessage(
                raw=b"MSH|^~\\&|HIS|CH|||20261126||ORU^R01|" + control_id.encode() + b"|P|2.5\r", channel="his",
                sending_application="HIS", sending_facility="CH", control_id=control_id, message_type="ORU^R01",
                received_at=OLD))
            await journal.set_state(key, state, step="test")
            keys[control_id] = key
    return keys


def old_audit_row(users_path) -> None:
    SqliteUsers(users_path).open().close()
    with sqlite3.connect(users_path) as conn:
        conn.execute("INSERT INTO audit (at, user, action, target, outcome) VALUES (?, 'bob', 'login', '', 'ok')",
                     (OLD.isoformat(),))


async def test_the_engine_removes_old_final_messages_and_audit_rows_and_keeps_a_parked_one(tmp_path):
    keys = await old_messages(tmp_path / "journal.sqlite")
    old_audit_row(tmp_path / "users.sqlite")
    toml = config(tmp_path, f'[engine]\njournal = "sqlite://{tmp_path}/journal.sqlite"\n'
                            f'bus = "embedded://{tmp_path}/bus.sqlite"\n[console]\nusers = "users.sqlite"\n'
                            '[retention]\ncontent_days = 3\nmetadata_days = 7\naudit_days = 5\ninterval = 1\n')
    dry = liaison("retention", "--dry-run", "-c", str(toml))
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0].startswith("content\t1 message(s) would be emptied")
    assert lines[1].startswith("metadata\t1 message(s) would be removed")
    assert lines[2].startswith("audit\t1 audit row(s) would be removed")

    settings = settings_from_dict({"engine": {"journal": f"sqlite://{tmp_path}/journal.sqlite",
                                              "bus": f"embedded://{tmp_path}/bus.sqlite",
                                              "cda_schema_required": False},
                                   "render": {"schematrons": "off"},
                                   "console": {"users": str(tmp_path / "users.sqlite")},
                                   "retention": {"content_days": 3, "metadata_days": 7, "audit_days": 5,
                                                 "interval": 1}})
    engine = Engine(settings)
    await engine.start(listen=False)

    async def gone() -> bool:
        return await engine.journal.message(keys["DONE"]) is None

    try:
        await eventually(gone, "the old delivered message removed", timeout=20)
        parked = await engine.journal.message(keys["WAITS"])
    finally:
        await engine.stop()
    assert parked.state == MessageState.PARKED and parked.raw.startswith(b"MSH|")
    with sqlite3.connect(tmp_path / "users.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM audit WHERE user = 'bob'").fetchone()[0] == 0


@pytest.mark.parametrize("table,problem", [
    ({"content_days": 0}, "retention.content_days"),
    ({"content_days": 30, "metadata_days": 10}, "expected at least content_days"),
    ({"keep": 3}, "retention"),
    ({"audit_days": "a year"}, "retention.audit_days"),
])
def test_a_wrong_retention_table_names_the_key(table, problem):
    with pytest.raises(ConfigError, match=problem):
        retention_settings(table)
