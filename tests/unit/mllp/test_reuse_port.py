"""``reuse_port``: several listeners (one per ``liaison run`` process) share one MLLP port.

Why: a door process is bound by one Python thread (bench/ingest.py: ~1.2 ms of it per message);
on a machine with more cores, N processes on the same port let the kernel spread the HIS's
connections over N of them without a load balancer in front. Without the setting, a second
listener on a port in use fails at start, as before.
"""

from __future__ import annotations

import asyncio

import pytest

from channels.mllp.framer import frame
from channels.mllp.server import MllpServer
from channels.mllp.settings import listeners_settings
from channels.testing.local import free_port
from router.errors import ConfigError
from tests.unit.hl7.samples import oru
from tests.unit.mllp.helpers import RecordingHandler, read_frames, reply


async def test_two_listeners_on_one_port_each_take_connections():
    port = free_port()
    handlers = [RecordingHandler(), RecordingHandler()]
    servers = [MllpServer(h, host="127.0.0.1", port=port, reuse_port=True) for h in handlers]
    for server in servers:
        await server.start()
    try:
        for i in range(40):                # the kernel spreads connections by their address and port
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(frame(oru(f"RP{i:02d}").encode()))
            [ack] = await read_frames(reader, 1)
            assert reply(ack).control_id == f"RP{i:02d}"
            writer.close()
        counts = [len(h.frames) for h in handlers]
        assert sum(counts) == 40 and min(counts) >= 1, counts
    finally:
        for server in servers:
            await server.close(grace=2.0)


async def test_without_reuse_port_a_second_listener_on_the_port_fails_to_start():
    first = MllpServer(RecordingHandler(), host="127.0.0.1", port=0)
    await first.start()
    try:
        with pytest.raises(OSError):
            await MllpServer(RecordingHandler(), host="127.0.0.1", port=first.port).start()
    finally:
        await first.close(grace=2.0)


def test_the_setting_is_read_and_checked():
    [listener] = listeners_settings([{"name": "his", "port": 2575, "reuse_port": True}])
    assert listener.reuse_port is True
    assert listeners_settings([{"name": "his"}])[0].reuse_port is False
    with pytest.raises(ConfigError, match="reuse_port"):
        listeners_settings([{"name": "his", "reuse_port": "yes"}])
