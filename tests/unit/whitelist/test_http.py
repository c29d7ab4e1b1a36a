"""Updates from an http(s) URL, against a server the test starts on 127.0.0.1."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from channels.whitelist.errors import FetchError
from channels.whitelist.fetch import default_checksum_source, fetch_pair
from channels.whitelist.store import WhitelistStore
from tests.support.fixtures import require_fixture
from tests.support.whitelist_files import make_list, sha256_of

GOOD = make_list(["ch-test.mssante.fr", "labo.mssante.fr"])


def test_checksum_defaults_to_the_file_beside_the_list():
    assert default_checksum_source("https://espacedeconfiance.mssante.fr/listeblanchemssante.xml") == \
        "https://espacedeconfiance.mssante.fr/checksum"
    assert default_checksum_source(
        "https://raw.githubusercontent.com/ansforge/MSS-liste-blanche/main/listeblanchemssante.xml") == \
        "https://raw.githubusercontent.com/ansforge/MSS-liste-blanche/main/checksum"
    assert default_checksum_source("/srv/mss/listeblanchemssante.xml") == "/srv/mss/checksum"


async def test_update_from_a_url_fetches_the_list_and_the_checksum_beside_it(tmp_path, list_server):
    url = list_server.publish(GOOD)
    store = WhitelistStore(tmp_path / "store")
    result = await store.update(url)
    assert result.accepted and result.domain_count == 2
    assert result.checksum_source == list_server.url("mirror/checksum")
    assert list_server.requests == ["/mirror/listeblanchemssante.xml", "/mirror/checksum"]
    assert WhitelistStore(tmp_path / "store").load().check("x@labo.mssante.fr").allowed


async def test_a_corrupted_download_is_refused_and_the_old_list_kept(tmp_path, list_server):
    store = WhitelistStore(tmp_path / "store")
    await store.update(list_server.publish(GOOD))
    corrupted = make_list(["ch-test.mssante.fr", "labo.mssante.fr", "attacker.example.org"])
    url = list_server.publish(corrupted, checksum=sha256_of(GOOD))
    with capture_logs() as logs:
        result = await store.update(url)
    assert not result.accepted and "SHA-256 mismatch" in result.reason
    assert not store.current.check("x@attacker.example.org").allowed
    assert [e["event"] for e in logs if e.get("alert")] == ["whitelist.update_refused"]


async def test_a_truncated_download_is_refused(tmp_path, list_server):
    store = WhitelistStore(tmp_path / "store")
    url = list_server.publish(GOOD[: len(GOOD) // 2], checksum=sha256_of(GOOD))
    result = await store.update(url)
    assert not result.accepted and "SHA-256 mismatch" in result.reason and store.current is None


async def test_an_html_page_served_as_checksum_is_refused(tmp_path, list_server):
    url = list_server.publish(GOOD, checksum=b"<!doctype html><title>Moved</title>")
    result = await WhitelistStore(tmp_path / "store").update(url)
    assert not result.accepted and "not a bare SHA-256" in result.reason


async def test_a_missing_checksum_url_is_refused_with_the_http_status(tmp_path, list_server):
    url = list_server.publish(GOOD)
    del list_server.files["/mirror/checksum"]
    result = await WhitelistStore(tmp_path / "store").update(url)
    assert not result.accepted
    assert f"HTTP 404 from {list_server.url('mirror/checksum')}" in result.reason


async def test_an_unreachable_server_is_a_fetch_error(unused_tcp_port):
    with pytest.raises(FetchError, match="cannot fetch http://127.0.0.1"):
        await fetch_pair(f"http://127.0.0.1:{unused_tcp_port}/listeblanchemssante.xml", timeout=2.0)


async def test_a_download_larger_than_the_limit_is_refused(list_server):
    url = list_server.publish(GOOD)
    with pytest.raises(FetchError, match="larger than 100 bytes"):
        await fetch_pair(url, max_bytes=100)


async def test_list_by_url_and_checksum_by_path_can_be_mixed(tmp_path, list_server):
    url = list_server.publish(GOOD)
    (tmp_path / "checksum").write_bytes(sha256_of(GOOD))
    result = await WhitelistStore(tmp_path / "store").update(url, str(tmp_path / "checksum"))
    assert result.accepted and list_server.requests == ["/mirror/listeblanchemssante.xml"]


@pytest.mark.fixtures
async def test_the_official_snapshot_served_over_http_is_accepted(tmp_path, list_server):
    data = require_fixture("MSS-liste-blanche", "listeblanchemssante.xml").read_bytes()
    checksum = require_fixture("MSS-liste-blanche", "checksum").read_bytes()
    result = await WhitelistStore(tmp_path / "store").update(list_server.publish(data, checksum))
    assert result.accepted and (result.domain_count, result.entry_count) == (516, 619)
