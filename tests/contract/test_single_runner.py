"""The SingleRunner port (one runner at a time for a named job), on both journals.

Run against every journal backend of ``test_journal.py``: two journals on one store stand for two
servers. Two concurrent callers: one runs, the other is told at once and skips; the lease is free
again after the block, after an error in it, and after its holder was killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

from router.watchdog import LetterWatchdog
from tests.contract.test_journal import backend  # noqa: F401 - the parametrised fixture
from tests.support.poll import eventually


async def _opened(backend, count: int):  # noqa: F811
    journals = [backend.make() for _ in range(count)]
    for journal in journals:
        await journal.open()
    return journals


async def test_two_concurrent_callers_one_runs(backend):  # noqa: F811
    first, second = await _opened(backend, 2)
    try:
        inside = asyncio.Event()
        leave = asyncio.Event()
        seen: dict[str, bool] = {}

        async def hold(journal, who: str) -> None:
            async with journal.alone("watchdog") as mine:
                seen[who] = mine
                if mine:
                    inside.set()
                    await leave.wait()

        holder = asyncio.create_task(hold(first, "first"))
        await asyncio.wait_for(inside.wait(), 10)
        await hold(second, "second")
        async with first.alone("watchdog") as again:        # one process, another caller: excluded too
            assert again is False
        async with second.alone("whitelist") as other_name:  # another lease is independent
            assert other_name is True
        leave.set()
        await holder
        assert seen == {"first": True, "second": False}
        async with second.alone("watchdog") as after:       # released at the end of the block
            assert after is True
    finally:
        for journal in (first, second):
            await journal.close()


async def test_many_racing_callers_exactly_one_runs(backend):  # noqa: F811
    journals = await _opened(backend, 3)
    racers = 3 * len(journals)
    answers: list[bool] = []
    everyone_tried = asyncio.Event()

    async def race(journal) -> None:
        async with journal.alone("race") as mine:
            answers.append(mine)
            if len(answers) == racers:
                everyone_tried.set()
            if mine:                    # the holder keeps it until every other racer has been answered
                await asyncio.wait_for(everyone_tried.wait(), 30)

    try:
        await asyncio.gather(*(race(journal) for journal in journals for _ in range(3)))
        assert sorted(answers) == [False] * (racers - 1) + [True]
    finally:
        for journal in journals:
            await journal.close()


async def test_the_lease_is_released_when_the_block_raises(backend):  # noqa: F811
    (journal,) = await _opened(backend, 1)
    try:
        try:
            async with journal.alone("failing") as mine:
                assert mine
                raise RuntimeError("the pass failed")
        except RuntimeError:
            pass
        async with journal.alone("failing") as again:
            assert again is True
    finally:
        await journal.close()


async def test_a_holder_killed_with_sigkill_leaves_the_lease_free(backend):  # noqa: F811
    (journal,) = await _opened(backend, 1)
    script = textwrap.dedent(f"""
        import asyncio, sys
        from tests.contract.test_journal import KEY
        from channels.app.engine import journal_from_url
        async def main():
            journal = journal_from_url({backend.url!r}, KEY if {backend.encrypted!r} else None)
            await journal.open()
            async with journal.alone("watchdog") as mine:
                print("HELD" if mine else "REFUSED", file=sys.stderr, flush=True)
                await asyncio.sleep(60)
        asyncio.run(main())
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                             env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        line = await asyncio.wait_for(asyncio.to_thread(_marker, child.stderr), 30)
        assert line == "HELD"
        async with journal.alone("watchdog") as mine:
            assert mine is False
        child.send_signal(signal.SIGKILL)
        child.wait(10)

        async def free() -> bool:
            async with journal.alone("watchdog") as mine:
                return mine
        await eventually(free, "the lease freed by the holder's death", timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        await journal.close()


async def test_the_watchdog_skips_its_pass_while_another_server_holds_the_lease(backend):  # noqa: F811
    first, second = await _opened(backend, 2)
    try:
        dog = LetterWatchdog(second, interval=60, runner=second)
        async with first.alone("letter-watchdog") as mine:
            assert mine
            assert await dog._timer.tick() is None          # skipped: the other server does this pass
        assert await dog._timer.tick() == []                 # its own pass: nothing overdue
    finally:
        for journal in (first, second):
            await journal.close()


def _marker(stream) -> str:
    """The child's first HELD/REFUSED line on stderr (its logs may come first)."""
    for line in stream:
        if line.strip() in ("HELD", "REFUSED"):
            return line.strip()
    return ""


async def test_the_claim_sweep_skips_its_pass_while_another_server_holds_the_lease(backend):  # noqa: F811
    from datetime import timedelta

    from router.claim_sweep import ClaimSweep
    from router.stages.zam import ZamQueue

    first, second = await _opened(backend, 2)
    try:
        sweep = ClaimSweep(second, ZamQueue(None, second, enabled=False), lease=timedelta(seconds=60),
                           give_up_after=timedelta(seconds=120), interval=60, runner=second)
        async with first.alone("claim-sweep") as mine:
            assert mine
            assert await sweep._task.tick() is None          # skipped: another server sweeps now
        assert await sweep._task.tick() == 0                  # its own sweep: nothing stale
    finally:
        for journal in (first, second):
            await journal.close()
