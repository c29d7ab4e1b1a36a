"""``liaison directory import|lookup`` through its own parser, as channels/app/cli wires it."""

from __future__ import annotations

import argparse
from pathlib import Path

from channels.app.cli.directory import add_parser, default_index_path, run
from tests.support import directory_files as files


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="liaison")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["directory", *argv])


def test_the_index_defaults_to_var_lib_unless_the_environment_says(monkeypatch, tmp_path):
    monkeypatch.delenv("LIAISON_DIRECTORY_INDEX", raising=False)
    assert default_index_path() == Path("/var/lib/liaison/directory.sqlite")
    monkeypatch.setenv("LIAISON_DIRECTORY_INDEX", str(tmp_path / "x.sqlite"))
    assert default_index_path() == tmp_path / "x.sqlite"


async def test_import_prints_the_report_then_lookup_prints_the_mailboxes(tmp_path, monkeypatch):
    monkeypatch.setenv("LIAISON_DIRECTORY_INDEX", str(tmp_path / "d.sqlite"))
    rows = [files.per(n, family=f"NOM{n}", postcode="44000") for n in range(1, 31)]
    source = files.write_mssante(tmp_path, [*rows, "PER|cut"])
    out: list[str] = []
    assert await run(parse("import", str(source)), out=out.append) == 0
    assert "read 31, kept 30, rejected 1" in out[1] and "too_few_fields" in out[2]
    out.clear()
    assert await run(parse("lookup", files.rpps(7)), out=out.append) == 0
    assert out[0].startswith(f"PER pp7@{files.DOMAIN}") and "annuaire extraction 2026-08-01 12:00" in out[-1]
    out.clear()
    assert await run(parse("lookup", "--name", "nom8", "--postcode", "44000"), out=out.append) == 0
    assert len(out) == 2 and f"pp8@{files.DOMAIN}" in out[0]
    assert await run(parse("lookup", "8" + files.rpps(999)), out=out.append) == 1


async def test_a_refused_import_exits_2_with_its_reason(tmp_path, capsys):
    source = files.write_mssante(tmp_path, [])
    assert await run(parse("import", str(source), "--index", str(tmp_path / "d.sqlite")), out=print) == 2
    assert "no row kept" in capsys.readouterr().err
    assert not (tmp_path / "d.sqlite").exists()


async def test_lookup_needs_an_identifier_or_a_search_and_an_index(tmp_path, capsys):
    index = str(tmp_path / "none.sqlite")
    assert await run(parse("lookup", "--index", index), out=print) == 2
    assert await run(parse("lookup", files.rpps(1), "--index", index), out=print) == 2
    assert "not found" in capsys.readouterr().err


async def test_a_second_import_into_the_same_index_while_one_runs_is_not_started(tmp_path, capsys):
    from channels.journal.leases import file_lease
    index = tmp_path / "d.sqlite"
    source = files.write_mssante(tmp_path, [files.per(n) for n in range(1, 4)])
    async with file_lease(index, "import") as mine:                  # another import holds it
        assert mine
        assert await run(parse("import", str(source), "--index", str(index)), out=print) == 2
    assert "another import into" in capsys.readouterr().err
    assert not index.exists()
    assert await run(parse("import", str(source), "--index", str(index)), out=lambda line: None) == 0
