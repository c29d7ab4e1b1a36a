"""The fault suite: the real deployment (2 listeners, 3 workers, a 3-node RabbitMQ cluster, PostgreSQL,
Postfix), a stream of PFI messages, one fault injected mid-stream, then counts that must all be zero.

See ``scenario.py`` for the run and ``tally.py`` for what is counted. Each test prints its row of the
fault table; ``bench/faults.py`` runs the same scenarios longer and prints the table.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.scenario import run_scenario, until
from tests.faults.servers import Postgres, SmallVolume, postfix_start, postfix_stop

pytestmark = pytest.mark.faults

SLOW = (0.5, 1.0, 1.5)              # seconds each mail's DATA is held before the relay sees its end


def check(row) -> None:
    assert row.aa == row.messages, f"{row.messages - row.aa} message(s) never acknowledged AA"
    assert (row.lost, row.duplicates, row.aa_without_record, row.zams_missing, row.parked, row.stuck, row.died) == \
        (0, 0, 0, 0, 0, 0, 0), row


async def test_a_worker_killed_mid_send(servers, tmp_path):
    async def fault(deployment, stream, mails):
        upload = deployment.upload
        await until(lambda: len(mails.mails()) >= 10 and upload.held >= 3, "mails in flight on the slow link")
        struck = time.monotonic()
        deployment.kill("worker-1")
        await asyncio.sleep(2)
        await deployment.restart("worker-1")
        return struck

    check(await run_scenario(servers, tmp_path, "worker_kill", fault, slow=SLOW))


async def test_a_listener_killed_mid_batch(servers, tmp_path):
    async def fault(deployment, stream, mails):
        await until(lambda: len(stream.aa) >= len(stream.messages) // 3, "a third of the stream acknowledged")
        struck = time.monotonic()
        deployment.kill("listener-1")
        await asyncio.sleep(3)
        await deployment.restart("listener-1")
        return struck

    check(await run_scenario(servers, tmp_path, "listener_kill", fault))


async def test_a_rabbitmq_node_killed(servers, tmp_path):
    async def fault(deployment, stream, mails):
        await until(lambda: len(stream.aa) >= len(stream.messages) // 3, "a third of the stream acknowledged")
        struck = time.monotonic()
        deployment.servers.rabbit.kill_node("a")
        await asyncio.sleep(5)
        await asyncio.to_thread(deployment.servers.rabbit.start)       # node A restarted, rejoins
        return struck

    check(await run_scenario(servers, tmp_path, "rabbitmq_node_kill", fault))


async def test_postgresql_restarted(servers, tmp_path):
    async def fault(deployment, stream, mails):
        await until(lambda: len(stream.aa) >= len(stream.messages) // 3, "a third of the stream acknowledged")
        struck = time.monotonic()
        await asyncio.to_thread(deployment.servers.postgres.restart, "fast")
        return struck

    check(await run_scenario(servers, tmp_path, "postgresql_restart", fault))


async def test_postgresql_crashed_and_restarted(servers, tmp_path):
    async def fault(deployment, stream, mails):
        await until(lambda: len(stream.aa) >= len(stream.messages) // 3, "a third of the stream acknowledged")
        struck = time.monotonic()
        await asyncio.to_thread(deployment.servers.postgres.restart, "immediate")     # no checkpoint: WAL recovery
        return struck

    check(await run_scenario(servers, tmp_path, "postgresql_crash", fault))


async def test_postfix_down_then_back(servers, tmp_path):
    async def fault(deployment, stream, mails):
        await until(lambda: len(mails.mails()) >= 10, "the first mails delivered")
        struck = time.monotonic()
        await asyncio.to_thread(postfix_stop, deployment.servers.postfix)
        await asyncio.sleep(10)
        await asyncio.to_thread(postfix_start, deployment.servers.postfix)
        return struck

    check(await run_scenario(servers, tmp_path, "postfix_down_10s", fault))


async def test_tcp_cut_between_workers_and_the_relay(servers, tmp_path):
    async def fault(deployment, stream, mails):
        upload = deployment.upload
        await until(lambda: len(mails.mails()) >= 10 and upload.held >= 3, "mails in flight on the slow link")
        struck = time.monotonic()
        await deployment.relay.stop()                # every relayed connection cut both ways, new ones refused
        await asyncio.sleep(2)
        await deployment.relay.start()
        return struck

    check(await run_scenario(servers, tmp_path, "tcp_cut_worker_mta", fault, slow=SLOW))


async def test_the_journal_volume_full(servers, tmp_path):
    """PostgreSQL on a small tmpfs, filled to the last byte mid-stream, then freed (and started again if it
    stopped itself). While it is full the door must answer AR (resend later), never AA."""
    volume = SmallVolume()
    postgres = Postgres(parent=volume.path)
    try:
        await asyncio.to_thread(postgres.start)
        # Without zero-filled WAL segments a full volume fails the next commit, not the next segment.
        await asyncio.to_thread(postgres.configure, wal_init_zero="off", wal_recycle="off")

        async def fault(deployment, stream, mails):
            await until(lambda: len(stream.aa) >= len(stream.messages) // 3, "a third of the stream acknowledged")
            refused_before = stream.resent
            struck = time.monotonic()
            await asyncio.to_thread(volume.fill)
            await until(lambda: stream.resent >= refused_before + 5, "the door refusing messages", timeout=60)
            await asyncio.sleep(3)
            volume.empty()
            if not await asyncio.to_thread(postgres.running):
                await asyncio.to_thread(postgres.start_again)
            return struck

        row = await run_scenario(servers, tmp_path, "journal_volume_full", fault, postgres=postgres)
        assert row.resent >= 5                      # the fault bit: messages were refused, and resent
        check(row)
    finally:
        volume.empty()
        await asyncio.to_thread(postgres.stop)
        volume.remove()
