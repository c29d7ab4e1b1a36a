"""channels.whitelist.refresher: scheduled updates, bounded, and the last good list stays on failure."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from channels.whitelist.refresher import WhitelistRefresher
from channels.whitelist.store import WhitelistStore
from tests.support.poll import eventually
from tests.support.whitelist_files import make_list, sha256_of

V1 = make_list(["ch-test.mssante.fr"], generated="2025-03-13T14:54:10Z")
V2 = make_list(["ch-test.mssante.fr", "nouveau.mssante.fr"], generated="2025-03-14T14:54:10Z")


async def test_first_attempt_is_immediate_without_a_stored_list(tmp_path, list_server):
    store = WhitelistStore(tmp_path / "store")
    refresher = WhitelistRefresher(store, list_server.publish(V1), interval_seconds=3600)
    refresher.start()
    try:
        await eventually(lambda: store.current is not None, "a stored list")
    finally:
        await asyncio.wait_for(refresher.stop(), timeout=2)
    assert refresher.attempts == 1 and refresher.last_result.accepted


async def test_a_new_good_list_replaces_the_old_one(tmp_path, list_server):
    store = WhitelistStore(tmp_path / "store")
    url = list_server.publish(V1)
    await store.update(url)
    refresher = WhitelistRefresher(store, url, interval_seconds=0.05)
    refresher.start()
    try:
        list_server.publish(V2)
        await eventually(lambda: store.current.check("x@nouveau.mssante.fr").allowed, "the new list")
    finally:
        await asyncio.wait_for(refresher.stop(), timeout=2)
    assert store.current.generated_at == datetime(2025, 3, 14, 14, 54, 10, tzinfo=UTC)
    assert WhitelistStore(tmp_path / "store").load().check("x@nouveau.mssante.fr").allowed


async def test_failures_are_alerted_and_the_last_good_list_stays_until_a_good_one_comes(tmp_path, list_server):
    store = WhitelistStore(tmp_path / "store")
    url = list_server.publish(V1)
    await store.update(url)
    list_server.publish(V2, checksum=sha256_of(V1))
    refresher = WhitelistRefresher(store, url, interval_seconds=0.05)
    with capture_logs() as logs:
        refresher.start()
        try:
            await eventually(lambda: len([e for e in logs if e.get("alert")]) >= 2, "two alerts")
            assert not store.current.check("x@nouveau.mssante.fr").allowed
            assert not refresher.last_result.accepted
            list_server.publish(V2)
            await eventually(lambda: store.current.check("x@nouveau.mssante.fr").allowed, "the new list")
        finally:
            await asyncio.wait_for(refresher.stop(), timeout=2)
    alerts = [e for e in logs if e.get("alert") == "whitelist"]
    assert len(alerts) >= 2 and all(e["event"] == "whitelist.update_refused" for e in alerts)
    assert all("SHA-256 mismatch" in e["reason"] for e in alerts)


async def test_a_peer_that_never_answers_is_bounded_by_the_attempt_timeout(tmp_path):
    release = asyncio.Event()

    async def silent(reader, writer):
        await reader.read(65536)
        await release.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = WhitelistStore(tmp_path / "store")
    refresher = WhitelistRefresher(store, f"http://127.0.0.1:{port}/listeblanchemssante.xml", 3600,
                                   attempt_timeout=0.3)
    try:
        with capture_logs() as logs:
            started = time.monotonic()
            assert await refresher.refresh_once() is None
            assert time.monotonic() - started < 3
    finally:
        release.set()
        server.close()
        await server.wait_closed()
    assert [(e["event"], e["reason"]) for e in logs] == [("whitelist.refresh_failed", "TimeoutError")]
    assert store.current is None


async def test_stop_is_prompt_while_waiting_and_harmless_when_not_started(tmp_path, list_server):
    store = WhitelistStore(tmp_path / "store")
    await store.update(list_server.publish(V1))
    refresher = WhitelistRefresher(store, list_server.url("mirror/listeblanchemssante.xml"), interval_seconds=3600)
    await refresher.stop()
    refresher.start()
    await asyncio.sleep(0)
    started = time.monotonic()
    await asyncio.wait_for(refresher.stop(), timeout=2)
    assert time.monotonic() - started < 1 and refresher.attempts == 0


async def test_first_attempt_waits_for_the_stored_list_to_be_due(tmp_path, list_server):
    fetched = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)
    store = WhitelistStore(tmp_path / "store", clock=lambda: fetched)
    await store.update(list_server.publish(V1))
    refresher = WhitelistRefresher(store, "unused", interval_seconds=86400)
    assert refresher.first_delay(fetched + timedelta(hours=6)) == pytest.approx(18 * 3600)
    assert refresher.first_delay(fetched + timedelta(days=3)) == 0
    assert refresher.first_delay(fetched - timedelta(hours=1)) == 86400


def test_interval_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        WhitelistRefresher(WhitelistStore(tmp_path), "x", interval_seconds=0)
