"""channels.whitelist.store: accept only verified lists, keep the last good copy on disk, reload it."""

from __future__ import annotations

import json
import shutil

import pytest
from structlog.testing import capture_logs

from channels.whitelist.store import WhitelistStore
from tests.support.fixtures import require_fixture
from tests.support.whitelist_files import make_list, sha256_of, write_pair

GOOD = make_list(["ch-test.mssante.fr", "UC-CMP.mssante.fr"])


def _alerts(logs):
    return [e for e in logs if e.get("alert") == "whitelist"]


async def test_a_verified_list_is_accepted_stored_and_in_force(tmp_path):
    source = write_pair(tmp_path / "src", GOOD)
    store = WhitelistStore(tmp_path / "store")
    result = await store.update(str(source))
    assert result.accepted and result.changed
    assert (result.domain_count, result.entry_count) == (2, 2)
    assert result.checksum_source == str(tmp_path / "src" / "checksum")
    assert store.current.check("x@ch-test.mssante.fr").allowed
    meta = json.loads((tmp_path / "store" / "current.json").read_text())
    assert meta["sha256"] == sha256_of(GOOD).decode()
    assert meta["source"] == str(source) and meta["domain_count"] == 2
    assert meta["generated_at"] == "2025-03-13T14:54:10+00:00"
    assert (tmp_path / "store" / meta["xml"]).read_bytes() == GOOD
    assert (tmp_path / "store" / meta["checksum"]).read_bytes() == sha256_of(GOOD)


async def test_the_stored_copy_is_loaded_at_start(tmp_path):
    source = write_pair(tmp_path / "src", GOOD)
    await WhitelistStore(tmp_path / "store").update(str(source))
    fresh = WhitelistStore(tmp_path / "store", always_allowed=["patient.mssante.fr"])
    assert fresh.current is None
    whitelist = fresh.load()
    assert whitelist is fresh.current and whitelist.domains == {"ch-test.mssante.fr", "uc-cmp.mssante.fr"}
    assert fresh.metadata.source == str(source)
    assert whitelist.check("x@patient.mssante.fr").allowed


def test_an_empty_store_loads_nothing(tmp_path):
    assert WhitelistStore(tmp_path / "nowhere").load() is None


async def test_a_tampered_list_is_refused_the_old_one_kept_and_an_alert_logged(tmp_path):
    store = WhitelistStore(tmp_path / "store")
    await store.update(str(write_pair(tmp_path / "v1", GOOD)))
    tampered = make_list(["ch-test.mssante.fr", "UC-CMP.mssante.fr", "evil.example.com"])
    source = write_pair(tmp_path / "v2", tampered, checksum=sha256_of(GOOD))
    with capture_logs() as logs:
        result = await store.update(str(source))
    assert not result.accepted
    assert result.reason.startswith("refused: SHA-256 mismatch")
    assert "kept the list generated 2025-03-13 (2 domains)" in result.reason
    assert not store.current.check("x@evil.example.com").allowed
    assert WhitelistStore(tmp_path / "store").load().domains == {"ch-test.mssante.fr", "uc-cmp.mssante.fr"}
    [alert] = _alerts(logs)
    assert alert["event"] == "whitelist.update_refused" and alert["log_level"] == "error"
    assert alert["source"] == str(source) and "SHA-256 mismatch" in alert["reason"]


@pytest.mark.parametrize("checksum, reason", [
    (b"", "checksum file is empty"),
    (b"d41d8cd98f00b204e9800998ecf8427e", "not a bare SHA-256"),
])
async def test_a_checksum_of_another_format_is_refused_and_the_old_list_kept(tmp_path, checksum, reason):
    store = WhitelistStore(tmp_path / "store")
    await store.update(str(write_pair(tmp_path / "v1", GOOD)))
    with capture_logs() as logs:
        result = await store.update(str(write_pair(tmp_path / "v2", make_list(["new.mssante.fr"]), checksum)))
    assert not result.accepted and reason in result.reason
    assert store.current.domains == {"ch-test.mssante.fr", "uc-cmp.mssante.fr"}
    assert len(_alerts(logs)) == 1


@pytest.mark.parametrize("data, reason", [
    (b"<ListeBlancheMSSante", "not well-formed"),
    (make_list([]), "the list has no domains"),
])
async def test_an_unparsable_or_empty_list_is_refused_even_with_a_matching_checksum(tmp_path, data, reason):
    store = WhitelistStore(tmp_path / "store")
    await store.update(str(write_pair(tmp_path / "v1", GOOD)))
    result = await store.update(str(write_pair(tmp_path / "v2", data)))
    assert not result.accepted and reason in result.reason
    assert len(store.current) == 2


async def test_a_missing_source_is_refused_with_no_list_in_force(tmp_path):
    store = WhitelistStore(tmp_path / "store")
    with capture_logs() as logs:
        result = await store.update(str(tmp_path / "absent" / "listeblanchemssante.xml"))
    assert not result.accepted
    assert "cannot read" in result.reason and result.reason.endswith("no list in force")
    assert store.current is None and not (tmp_path / "store" / "current.json").exists()
    assert len(_alerts(logs)) == 1


async def test_an_explicit_checksum_source_is_used(tmp_path):
    source = tmp_path / "elsewhere.xml"
    source.write_bytes(GOOD)
    (tmp_path / "sum.txt").write_bytes(sha256_of(GOOD) + b"\n")
    result = await WhitelistStore(tmp_path / "store").update(str(source), str(tmp_path / "sum.txt"))
    assert result.accepted and result.checksum_source == str(tmp_path / "sum.txt")


async def test_a_new_list_replaces_the_old_generation_on_disk(tmp_path):
    store = WhitelistStore(tmp_path / "store")
    await store.update(str(write_pair(tmp_path / "v1", GOOD)))
    newer = make_list(["ch-test.mssante.fr", "new.mssante.fr"], generated="2025-03-14T10:00:00Z")
    result = await store.update(str(write_pair(tmp_path / "v2", newer)))
    assert result.accepted and result.changed
    assert store.current.check("x@new.mssante.fr").allowed and not store.current.check("x@uc-cmp.mssante.fr").allowed
    names = sorted(p.name for p in (tmp_path / "store").iterdir() if not p.name.startswith("."))
    short = sha256_of(newer).decode()[:12]
    assert names == [f"checksum-{short}", "current.json", f"listeblanchemssante-{short}.xml"]
    again = await store.update(str(write_pair(tmp_path / "v2", newer)))
    assert again.accepted and not again.changed and again.reason.endswith(", unchanged")


async def test_a_stored_copy_altered_on_disk_is_not_trusted_at_load(tmp_path):
    await WhitelistStore(tmp_path / "store").update(str(write_pair(tmp_path / "v1", GOOD)))
    meta = json.loads((tmp_path / "store" / "current.json").read_text())
    (tmp_path / "store" / meta["xml"]).write_bytes(GOOD.replace(b"ch-test", b"ch-evil"))
    with capture_logs() as logs:
        assert WhitelistStore(tmp_path / "store").load() is None
    assert [e["event"] for e in _alerts(logs)] == ["whitelist.stored_copy_unusable"]


@pytest.mark.fixtures
async def test_the_official_snapshot_is_accepted_from_its_folder(tmp_path):
    xml = require_fixture("MSS-liste-blanche", "listeblanchemssante.xml")
    require_fixture("MSS-liste-blanche", "checksum")
    store = WhitelistStore(tmp_path / "store")
    result = await store.update(str(xml))
    assert result.accepted and (result.domain_count, result.entry_count) == (516, 619)
    assert WhitelistStore(tmp_path / "store").load().generated_at.date().isoformat() == "2025-03-13"


@pytest.mark.fixtures
async def test_a_tampered_copy_of_the_official_snapshot_is_refused(tmp_path):
    xml = require_fixture("MSS-liste-blanche", "listeblanchemssante.xml")
    checksum = require_fixture("MSS-liste-blanche", "checksum")
    store = WhitelistStore(tmp_path / "store")
    await store.update(str(write_pair(tmp_path / "v1", GOOD)))
    folder = tmp_path / "tampered"
    folder.mkdir()
    (folder / "listeblanchemssante.xml").write_bytes(
        xml.read_bytes().replace(b"<Nom>ae.mssante.fr</Nom>", b"<Nom>gmail.com</Nom>", 1))
    shutil.copyfile(checksum, folder / "checksum")
    result = await store.update(str(folder / "listeblanchemssante.xml"))
    assert not result.accepted and "SHA-256 mismatch" in result.reason
    assert not store.current.check("x@gmail.com").allowed and len(store.current) == 2
