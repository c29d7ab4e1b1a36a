"""A server started while its journal is away (a database restarting, machines booting in any order)
waits for it, within ``Engine.start_patience``, instead of exiting: found by the fault suite, where
workers starting during a PostgreSQL crash recovery exited with "journal unavailable"."""

from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import urlsplit, urlunsplit

import pytest

from channels.app.engine import Engine
from channels.app.settings import Settings
from channels.testing.local import free_port
from router.errors import TransientError
from tests.support import postgres
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgresql


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.netloc.rsplit('@', 1)[0]}@127.0.0.1:{port}"))


async def test_the_engine_waits_for_a_journal_that_comes_later(tmp_path):
    with postgres.private_schema() as url:
        real_port = urlsplit(url).port
        proxy = TcpProxy(real_port)
        proxy.port = free_port()                    # nothing listens there yet: the database is "down"
        settings = dataclasses.replace(Settings(), journal=_through(url, proxy.port),
                                       bus=f"embedded://{tmp_path / 'bus.sqlite'}")
        engine = Engine(settings, start_patience=30)
        starting = asyncio.create_task(engine.start(listen=False, consume=False))
        await asyncio.sleep(2)
        assert not starting.done()                  # still waiting, not exited
        await proxy.start()                         # the database is back
        try:
            await asyncio.wait_for(starting, 20)
            assert await engine.journal.search(limit=1) == []
        finally:
            await engine.stop()
            await proxy.stop()


async def test_the_engine_gives_up_after_its_patience(tmp_path):
    settings = dataclasses.replace(Settings(), journal=f"postgresql://liaison@127.0.0.1:{free_port()}/liaison",
                                   bus=f"embedded://{tmp_path / 'bus.sqlite'}")
    engine = Engine(settings, start_patience=1.5)
    with pytest.raises(TransientError, match="journal unavailable"):
        await asyncio.wait_for(engine.start(listen=False, consume=False), 20)
    await engine.stop()
