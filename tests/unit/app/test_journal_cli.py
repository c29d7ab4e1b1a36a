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
