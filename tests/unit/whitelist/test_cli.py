"""``liaison whitelist update|check``: output and exit codes."""

from __future__ import annotations

import argparse

import pytest

from channels.app.cli import whitelist as whitelist_cli
from channels.whitelist.fetch import OFFICIAL_URL
from tests.support.whitelist_files import make_list, sha256_of, write_pair

GOOD = make_list(["ch-test.mssante.fr", "UC-CMP.mssante.fr"])


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="liaison")
    whitelist_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["whitelist", *argv])


async def _run(*argv: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = await whitelist_cli.run(_args(*argv), out=lines.append)
    return code, lines


def test_update_defaults_to_the_official_url():
    args = _args("update")
    assert args.source == OFFICIAL_URL and args.checksum is None and args.store is None


async def test_update_accepted_prints_counts_and_date_and_exits_0(tmp_path):
    source = write_pair(tmp_path / "src", GOOD)
    code, lines = await _run("update", str(source), "--store", str(tmp_path / "store"))
    assert code == 0
    assert "domains: 2 (2 entries)" in lines
    assert "generated: 2025-03-13 14:54:10 UTC" in lines
    assert lines[-1] == "accepted: 2 domains (2 entries) generated 2025-03-13"


async def test_update_refused_says_why_and_exits_1(tmp_path):
    store = str(tmp_path / "store")
    await _run("update", str(write_pair(tmp_path / "v1", GOOD)), "--store", store)
    bad = write_pair(tmp_path / "v2", make_list(["x.mssante.fr"]), checksum=sha256_of(GOOD))
    code, lines = await _run("update", str(bad), "--store", store)
    assert code == 1
    assert lines[-1].startswith("refused: SHA-256 mismatch")
    assert lines[-1].endswith("kept the list generated 2025-03-13 (2 domains)")


async def test_update_with_an_explicit_checksum(tmp_path, list_server):
    url = list_server.publish(GOOD, checksum=b"")
    list_server.files["/other/sum"] = sha256_of(GOOD)
    code, lines = await _run("update", url, "--checksum", list_server.url("other/sum"),
                             "--store", str(tmp_path / "store"))
    assert code == 0 and f"checksum: {list_server.url('other/sum')}" in lines


async def test_check_exit_codes_allowed_refused_malformed(tmp_path):
    store = str(tmp_path / "store")
    await _run("update", str(write_pair(tmp_path / "src", GOOD)), "--store", store)
    code, lines = await _run("check", "Dr.Martin@uc-cmp.MSSANTE.fr", "--store", store)
    assert code == 0 and lines[-1].startswith("allowed: domain uc-cmp.mssante.fr is on the MSSanté whitelist")
    code, lines = await _run("check", "someone@gmail.com", "--store", store)
    assert (code, lines[-1]) == (1, "not allowed: domain gmail.com is not on the MSSanté whitelist "
                                    "(generated 2025-03-13)")
    code, lines = await _run("check", "not-an-address", "--store", store)
    assert (code, lines[-1]) == (1, "not allowed: malformed address")


async def test_check_with_an_always_allowed_domain(tmp_path):
    store = str(tmp_path / "store")
    await _run("update", str(write_pair(tmp_path / "src", GOOD)), "--store", store)
    code, _ = await _run("check", "dr.x@autre-test.mssante.fr", "--store", store)
    assert code == 1
    code, lines = await _run("check", "dr.x@autre-test.mssante.fr", "--store", store,
                             "--always-allow", "autre-test.mssante.fr")
    assert code == 0 and "always allowed by configuration" in lines[-1]
    code, lines = await _run("check", "x@ch-test.mssante.fr", "--store", store, "--always-allow", "not a domain")
    assert code == 2 and "not a domain name" in lines[-1]


async def test_check_allows_the_patients_domain_by_rule_as_the_engine_does(tmp_path):
    store = str(tmp_path / "store")
    await _run("update", str(write_pair(tmp_path / "src", GOOD)), "--store", store)
    code, lines = await _run("check", "279035121518989@patient.mssante.fr", "--store", store)
    assert code == 0 and "by rule" in lines[-1]


async def test_check_without_a_list_exits_2(tmp_path):
    code, lines = await _run("check", "x@ch-test.mssante.fr", "--store", str(tmp_path / "empty"))
    assert code == 2 and "no usable whitelist" in lines[-1]


async def test_store_defaults_to_liaison_whitelist_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LIAISON_WHITELIST_DIR", str(tmp_path / "env-store"))
    code, _ = await _run("update", str(write_pair(tmp_path / "src", GOOD)))
    assert code == 0 and (tmp_path / "env-store" / "current.json").exists()
    code, _ = await _run("check", "x@ch-test.mssante.fr")
    assert code == 0


def test_a_subcommand_is_required():
    with pytest.raises(SystemExit):
        _args()
