"""``liaison journal migrate`` and ``liaison check-config`` with the journals they name (SQLite, PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.app.cli.main import main
from channels.app.engine import Engine
from channels.app.settings import load_settings
from channels.journal.schema import LATEST
from router.errors import ConfigError
from tests.support import postgres


def config(tmp_path, journal: str, *, migrate: bool = True) -> str:
    path = tmp_path / "liaison.toml"
    path.write_text(f'[engine]\njournal = "{journal}"\njournal_migrate = {str(migrate).lower()}\n')
    return str(path)


def test_journal_migrate_creates_then_finds_the_schema_up_to_date(tmp_path, capsys):
    toml = config(tmp_path, f"sqlite://{tmp_path}/journal.sqlite", migrate=False)
    assert main(["journal", "migrate", "-c", toml]) == 0
    assert f"schema v0 -> v{LATEST}" in capsys.readouterr().out
    assert main(["journal", "-c", toml, "migrate"]) == 0
    assert f"schema v{LATEST}, up to date" in capsys.readouterr().out
    assert main(["journal", "-c", toml, "search"]) == 0      # a journal opened without migrating it


async def test_the_engine_refuses_a_journal_not_migrated_when_migrations_are_off(tmp_path):
    settings = load_settings(Path(config(tmp_path, f"sqlite://{tmp_path}/journal.sqlite", migrate=False)))
    with pytest.raises(ConfigError, match="liaison journal migrate") as error:
        await Engine(settings).start(listen=False, consume=False)
    assert error.value.key == "engine.journal"


def test_check_config_accepts_a_postgresql_journal_and_never_prints_its_password(tmp_path, capsys):
    assert main(["check-config", config(tmp_path, "postgresql://liaison:s3cret@db.example:5432/journal")]) == 0
    out = capsys.readouterr().out
    assert "journal  postgresql://liaison:***@db.example:5432/journal" in out
    assert "s3cret" not in out


@pytest.mark.postgresql
def test_journal_migrate_on_postgresql(tmp_path, capsys):
    with postgres.private_schema() as url:
        toml = config(tmp_path, url, migrate=False)
        assert main(["journal", "migrate", "-c", toml]) == 0
        assert main(["journal", "migrate", "-c", toml]) == 0
        out = capsys.readouterr().out
        assert f"schema v0 -> v{LATEST}" in out and f"schema v{LATEST}, up to date" in out
        assert postgres.postgres_url().split("@")[0].split(":")[-1] not in out       # the password


def test_journal_search_finds_a_message_by_ipp_ins_document_and_recipient(tmp_path, capsys):
    import asyncio
    from datetime import UTC, datetime

    from channels.journal import SqliteJournal
    from router.ports import Outcome, OutcomeStatus, ReceivedMessage

    async def fill() -> None:
        async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
            for control_id, ipp in (("CLI-1", "IPP-1"), ("CLI-2", "IPP-2")):
                key, _ = await journal.record_received(ReceivedMessage(
                    raw=b"MSH|^~\\&|X", channel="his", sending_application="DXCARE", sending_facility="CHU",
                    control_id=control_id, message_type="ORU^R01", received_at=datetime.now(UTC),
                    identifiers=(("ipp", ipp), ("ins", f"INS-{ipp}"))))
                await journal.record_outcome(Outcome(f"DOC-{ipp}", f"dr.{ipp.lower()}@test.mssante.fr",
                                                     OutcomeStatus.ACCEPTED, "250", datetime.now(UTC), key))

    asyncio.run(fill())
    toml = config(tmp_path, f"sqlite://{tmp_path}/journal.sqlite")
    capsys.readouterr()
    for option, value in (("--ipp", "IPP-2"), ("--ins", "INS-IPP-2"), ("--document", "DOC-IPP-2"),
                          ("--recipient", "dr.ipp-2@test.mssante.fr")):
        assert main(["journal", "-c", toml, "search", option, value]) == 0
        out = capsys.readouterr().out
        assert "CLI-2" in out and "CLI-1" not in out, (option, out)


def test_journal_migrate_from_v6_files_older_messages_under_their_identifiers(tmp_path, capsys):
    import asyncio
    import sqlite3
    from datetime import UTC, datetime

    from channels.journal import SqliteJournal
    from router.ports import ReceivedMessage

    path = tmp_path / "journal.sqlite"

    async def fill() -> None:
        async with SqliteJournal(path) as journal:
            await journal.record_received(ReceivedMessage(
                raw=b"MSH|^~\\&|DXCARE|CHU|LIAISON|CHU|20261206||ADT^A01|OLD-1|P|2.5\rPID|||IPP-OLD^^^CHU^PI\r",
                channel="his", sending_application="DXCARE", sending_facility="CHU", control_id="OLD-1",
                message_type="ADT^A01", received_at=datetime.now(UTC)))

    asyncio.run(fill())
    import re

    from channels.journal.schema import statements
    later = [(kind, name) for version, listed in statements("sqlite").items() if version >= 7
             for text in listed for kind, name in re.findall(r"CREATE (TABLE|INDEX) (?:IF NOT EXISTS )?(\w+)", text)]
    with sqlite3.connect(path) as conn:         # back to v6: what v7 and later made is dropped, newest first
        conn.execute("ALTER TABLE messages ADD COLUMN raw BLOB NOT NULL DEFAULT x''")     # v11 moved the bytes
        conn.execute("UPDATE messages SET raw = (SELECT raw FROM message_contents c WHERE c.key = messages.key)")
        for kind, name in reversed(later):
            conn.execute(f"DROP {kind} IF EXISTS {name}")
        conn.execute("DELETE FROM schema_version WHERE version >= 7")
    toml = config(tmp_path, f"sqlite://{path}", migrate=False)
    capsys.readouterr()
    assert main(["journal", "migrate", "-c", toml]) == 0
    out = capsys.readouterr().out
    assert f"schema v6 -> v{LATEST}" in out and "identifiers filed for 1 messages" in out
    assert main(["journal", "-c", toml, "search", "--ipp", "IPP-OLD"]) == 0
    assert "OLD-1" in capsys.readouterr().out
    assert main(["journal", "-c", toml, "reindex"]) == 0
    assert "identifiers filed for 1 messages, 0 outcomes" in capsys.readouterr().out
