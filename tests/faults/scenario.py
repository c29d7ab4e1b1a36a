"""Run one scenario: deploy, stream, inject the fault mid-stream, recover, wait until settled, count.

A fault is a coroutine ``fault(deployment, stream, mails)`` that waits for its moment (looking at the
state: messages acknowledged, mails delivered or held on the slowed link — never a guessed sleep),
injects the fault, brings the part back, and returns the moment (``time.monotonic()``) it struck.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from router.errors import TransientError
from tests.faults.deployment import Deployment
from tests.faults.servers import Postgres, Servers
from tests.faults.stream import Stream, make_messages
from tests.faults.tally import (BAD, FINAL, MailIndex, Row, claims_taken_over, distinct_zams, expected_pairs,
                                expected_zams, journal_states)

Fault = Callable[[Deployment, Stream, MailIndex], Awaitable[float]]
MESSAGES = int(os.environ.get("LIAISON_FAULTS_MESSAGES", "60"))
SETTLE_TIMEOUT = float(os.environ.get("LIAISON_FAULTS_SETTLE", "150"))
REPORT = os.environ.get("LIAISON_FAULTS_REPORT", "")


async def run_scenario(servers: Servers, root: Path, name: str, fault: Fault, *, messages: int = MESSAGES,
                       slow: Sequence[float] | None = None, postgres: Postgres | None = None) -> Row:
    deployment = Deployment(servers, root, name, slow=slow, postgres=postgres)
    try:
        await deployment.start()
        stream = Stream(list(deployment.ports.values()), make_messages(deployment.run, messages))
        mails = MailIndex(servers.postfix, deployment.run)
        await asyncio.to_thread(mails.mails)          # the earlier scenarios' mails, read once, off the loop
        sending = asyncio.create_task(stream.run(timeout=SETTLE_TIMEOUT))
        try:
            struck = await asyncio.wait_for(fault(deployment, stream, mails), SETTLE_TIMEOUT)
        finally:
            await sending
        row = await settle(deployment, stream, mails, name, struck)
        dead = [n for n in deployment.processes if n not in deployment.alive()]
        row.died = len(dead)
        taken_over = await claims_taken_over(deployment.journal, stream.messages)
        row.taken_over = len(taken_over)
        row.smtp_window = mails.window_copies(taken_over, deployment.killed_at)
        row.duplicates -= row.smtp_window
        detail = {"answers": dict(stream.answers), "dropped_on_link": getattr(deployment.upload, "dropped", 0),
                  "dead": dead, "killed_at": deployment.killed_at,
                  "copies": {f"{pair[0]} {pair[1]}": copies for pair, copies in mails.copies.items()
                             if len(copies) > 1},
                  "taken_over_pairs": sorted(f"{e} {d}" for e, d in taken_over),
                  "unexplained": sorted(f"{p[0]} {p[1]}" for p, c in mails.copies.items() if len(c) > 1
                                        and p not in mails.explained(taken_over, deployment.killed_at))}
        print(f"\n{name}: {json.dumps(row.as_dict())} {json.dumps(detail)}")
        for process in dead:
            print(f"----- {process} exited; end of its log:\n{deployment.log(process)[-4000:]}")
        if REPORT:
            with open(REPORT, "a") as out:
                out.write(json.dumps({**row.as_dict(), **detail}) + "\n")
        return row
    finally:
        await deployment.stop()


async def settle(deployment: Deployment, stream: Stream, mails: MailIndex, name: str, struck: float) -> Row:
    """Poll until every expected mail and ZAM is there and every message is final (or the time is up)."""
    messages = stream.messages
    pairs, zams_wanted = expected_pairs(messages, stream.aa), expected_zams(messages, stream.aa)
    deadline = time.monotonic() + SETTLE_TIMEOUT
    settled_at = None
    states: dict = {}
    while time.monotonic() < deadline:
        try:
            states = await journal_states(deployment.journal, messages)
        except TransientError:
            await asyncio.sleep(0.5)
            continue
        delivered = set(await asyncio.to_thread(mails.mails))
        if (pairs <= delivered and zams_wanted <= distinct_zams(deployment.his)
                and all(states.get(m.control_id) in FINAL for m in messages if m.control_id in stream.aa)):
            settled_at = time.monotonic()
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(2.0)                       # late copies, if any, are counted too
    states = await journal_states(deployment.journal, messages)
    found = Counter(await asyncio.to_thread(mails.mails))
    zams = distinct_zams(deployment.his)
    return Row(
        scenario=name, messages=len(messages), aa=len(stream.aa), mails_expected=len(pairs),
        lost=len(pairs - set(found)), duplicates=sum(found.values()) - len(found),
        aa_without_record=sum(1 for control_id in stream.aa if control_id not in states),
        zams_missing=len(zams_wanted - zams),
        parked=sum(1 for state in states.values() if state in BAD),
        stuck=sum(1 for m in messages if m.control_id in stream.aa and states.get(m.control_id) not in FINAL),
        settled_after=round((settled_at or time.monotonic()) - struck, 1), resent=stream.resent)


async def until(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Wait for a state of the run (polled), failing with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
