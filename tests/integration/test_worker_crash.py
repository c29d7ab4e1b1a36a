"""A worker killed with ``kill -9`` while its relay is slow, then restarted: every recipient is mailed
exactly once, every message ends DELIVERED, and the HIS gets one ZAM^Z02 per recipient.

The engine runs as the real commands, in their own processes, from a ``liaison.toml`` written here:
``liaison run --ingest-only`` and ``liaison worker`` on RabbitMQ (in a vhost of their own, created for
the test and deleted after it), or one ``liaison run`` on the embedded bus (its SQLite file is locked
by one process, so a listener and a worker cannot share it: there the whole engine is killed and
started again). Mail goes through a slow link in front of the tests' Postfix
(:class:`~tests.support.tcp_proxy.SlowUpload`): each mail's DATA is held 1 to 3 s before Postfix
sees its end, as with the relay of the issue that took 3 s per mail.

What is killed, and when, is chosen by looking at the state, not by a sleep: once some mails went
through, the link holds every new mail until its sender goes away; the worker is killed when every
connection that carries a mail is held there and everything the relay already took is recorded in
the journal and answered to the HIS. The mails held die with the worker and never reach Postfix.
Their recipients stay claimed ("sending") by the dead worker, which no longer renews the claims; the
jobs come back from the bus to the new worker, wait in place until the claims lapse
(``engine.claim_lease``), then take them over (journal step ``claim``, state ``taken_over``) and
mail them. The test checks that every claim the dead worker left is taken over once (none given up
by the claim sweep, which fails a claim nobody took over after twice the lease plus the retry delays)
and that no claim of a live worker, however long its mail waits for the slow link, is ever reported
stale.

SMTP itself cannot give exactly-once in one window, which this test keeps out on purpose: a worker
that dies after Postfix queued the mail (end of DATA received) but before it read the 250 and wrote
it in the journal. The next copy of the job sends it again; it carries the same Message-ID (derived
from the job), and the journal's ``taken_over`` note says a first copy may exist, so the duplicate is
recognisable. The link drops a held mail when its client dies, so here no mail is in that window.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from channels.journal.sqlite import SqliteJournal
from channels.app.demo.his import RecordingHis
from channels.mllp.sender import MllpSender
from channels.testing.engine_config import engine_toml, listener_toml, mail_and_acks_toml
from channels.testing.rabbitmq import RabbitmqctlMissing, rabbitmq_vhost
from channels.testing.messages import DR_MARTIN, PATIENT, encode_message, make_cda, make_pfi_oru, patient_rct
from router.ports import MessageState, OutcomeStatus
from tests.contract.conftest import AMQP_URL, _check_rabbitmq
from tests.integration.harness import xdm_cda
from tests.support.poll import eventually
from tests.support.postfix import postfix_fixture
from tests.support.tcp_proxy import SlowUpload, TcpProxy

pytestmark = pytest.mark.postfix

postfix = postfix_fixture()

ROOT = Path(__file__).resolve().parents[2]
RECIPIENTS = (DR_MARTIN.address, PATIENT.address)   # two mails a message, one recipient each
SMTP_POOL = 8                        # mails in flight at once (mss.relay ?pool=), so the kill catches several
BEFORE_KILL = 8                      # mails through before the link starts holding them
DELAYS = (1.0, 2.0, 3.0, 1.5, 2.5)   # seconds each mail's DATA is held before Postfix sees its end
LEASE = 3                            # engine.claim_lease: renewed every second while a worker sends
RETRY_DELAYS = [0.5, 1, 1, 2]        # a claim nobody takes over is given up after 2 × 3 + 4.5 = 10.5 s
DEADLINE = 120.0
FINAL = {MessageState.DELIVERED, MessageState.PARTIAL, MessageState.FAILED, MessageState.PARKED,
         MessageState.REJECTED}


@pytest.mark.rabbitmq
async def test_a_worker_killed_mid_send_on_rabbitmq_leaves_every_recipient_mailed_once(postfix, tmp_path):
    await _check_rabbitmq()
    with own_vhost() as bus_url:
        await crash_and_recover(postfix, tmp_path, bus_url, split=True, messages=40)


async def test_the_engine_killed_mid_send_on_the_embedded_bus_leaves_every_recipient_mailed_once(
        postfix, tmp_path):
    await crash_and_recover(postfix, tmp_path, f"embedded://{tmp_path / 'bus.sqlite'}", split=False, messages=20)


async def crash_and_recover(postfix, tmp_path: Path, bus_url: str, *, split: bool, messages: int) -> None:
    """Send, kill the process that mails mid-send, start it again, and check what everyone got.

    With more messages than a worker takes at once (``engine.prefetch``, 16), jobs are still queued
    when the worker dies: the dead worker's jobs, back from the bus, must take its claims over
    without waiting behind them, or the claim sweep gives those recipients up first.
    """
    run = uuid.uuid4().hex[:8]
    cdas = {f"CR-{run}-{i:02d}": make_cda(document_extension=f"CRASH-{run}-{i:02d}") for i in range(messages)}
    expected_mails = messages * len(RECIPIENTS)
    key = base64.b64encode(os.urandom(32)).decode("ascii")
    upload = SlowUpload(DELAYS)
    his = RecordingHis()
    processes = Processes(tmp_path, env={"LIAISON_JOURNAL_KEY": key})
    journal = SqliteJournal(tmp_path / "journal.sqlite", key=base64.b64decode(key))
    his_port = await his.start()
    try:
        async with TcpProxy(postfix.port, upload=upload) as relay:
            config = write_config(tmp_path, bus_url=bus_url, relay_port=relay.port, his_port=his_port,
                                  pki=postfix.pki)
            if split:
                listener = await processes.start("listener", "run", "-c", config, "--ingest-only")
                worker = await processes.start("worker-1", "worker", "-c", config)
            else:
                listener = worker = await processes.start("engine-1", "run", "-c", config)
            port = await processes.listening_port(listener)
            await journal.open()
            await send_all(port, cdas)

            # Some mails through, then every new one held; kill once nothing is between Postfix and the journal.
            await eventually(lambda: upload.forwarded >= BEFORE_KILL, "the first mails to go through",
                             timeout=DEADLINE, interval=0.05)
            upload.gate()
            await eventually(lambda: quiet_moment(upload, journal, his, cdas), "every mail in flight held",
                             timeout=DEADLINE, interval=0.05)
            through = upload.forwarded
            await processes.kill(worker)
            await eventually(lambda: upload.held == 0, "the held mails to be dropped with their sender")
            upload.release()
            dropped = upload.dropped
            assert dropped >= 1, "the kill caught no mail in flight"
            abandoned = await claims_held(journal, cdas)           # the dead worker's, nobody renews them now
            assert abandoned, "the dead worker held no claim"

            if split:
                await processes.start("worker-2", "worker", "-c", config)
            else:
                await processes.listening_port(await processes.start("engine-2", "run", "-c", config))
            final = await eventually(lambda: all_final(journal, cdas), "every message final",
                                     timeout=DEADLINE, interval=0.2)
            assert {r.control_id: r.state for r in final} == dict.fromkeys(cdas, MessageState.DELIVERED)
            zams = await eventually(lambda: at_least(distinct_zams(his), expected_mails), "one ZAM per recipient",
                                    timeout=30, interval=0.1)
            mails = await eventually(lambda: at_least(mailed(postfix, cdas), expected_mails),
                                     "every mail in the Maildir", timeout=30, interval=0.1)

            expected = Counter((control_id, address) for control_id in cdas for address in RECIPIENTS)
            assert Counter(mails) == expected                       # each recipient mailed, and only once
            assert upload.forwarded == expected_mails               # and nothing else reached the relay
            assert Counter((control_id, address) for control_id, address, _ in zams.values()) == expected
            assert {answer for _, _, answer in zams.values()} == {"Y"}
            for cda in cdas.values():
                assert {o.status for o in await journal.outcomes(read_document_id(cda))} == {OutcomeStatus.ACCEPTED}

            events = [e for r in final for e in await journal.events(r.key) if e.step == "claim"]
            taken_over = Counter((e.document_id, e.destination) for e in events if e.state == "taken_over")
            stale = {(e.document_id, e.destination) for e in events if e.state == "stale"}
            assert taken_over == Counter(abandoned)                 # every dead claim taken over, once
            assert stale <= set(abandoned)                          # a live worker's claims never looked dead
            print(f"\n{'worker' if split else 'engine'} killed: {len(cdas)} messages, {expected_mails} mails; "
                  f"{through} through before the kill, {dropped} dropped with it, {len(abandoned)} claim(s) "
                  f"taken over ({len(stale)} reported stale first), {len(his.received) - len(zams)} ZAM(s) "
                  "delivered twice by the bus")
    finally:
        upload.release()
        await processes.stop_all()
        await journal.close()
        await his.close()


# ------------------------------------------------------------------ the engine's processes


class Processes:
    """``python -m channels.app.cli.main`` subprocesses, each logging to its own file, all ended at the end."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root = root
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.running: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, name: str, *args: str) -> str:
        log = (self.root / f"{name}.log").open("wb")
        try:
            self.running[name] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "channels.app.cli.main", *args, cwd=ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        return name

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    async def listening_port(self, name: str) -> int:
        """The MLLP port the process says it listens on (``engine.listening``), once it does."""
        def port() -> int | None:
            process = self.running[name]
            if process.returncode is not None:
                raise AssertionError(f"{name} exited {process.returncode}:\n{self.log(name)[-3000:]}")
            for line in self.log(name).splitlines():
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("event") == "engine.listening":
                        return int(entry["port"])
            return None
        return await eventually(port, f"{name} to listen", timeout=60, interval=0.05)

    async def kill(self, name: str) -> None:
        """``kill -9``: no shutdown, no goodbye to the bus, the relay or the journal."""
        process = self.running[name]
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 30)

    async def stop_all(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL for whoever is still there after 20 s."""
        alive = [p for p in self.running.values() if p.returncode is None]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in alive:
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


def write_config(root: Path, *, bus_url: str, relay_port: int, his_port: int, pki) -> str:
    path = root / "liaison.toml"
    path.write_text(engine_toml(bus=bus_url, journal=f"sqlite://{root / 'journal.sqlite'}", cda_schema_required=False,
                                retry_delays=RETRY_DELAYS, claim_lease=LEASE)
                    + listener_toml(port=0)
                    + mail_and_acks_toml(relay_port=relay_port, pool=SMTP_POOL, pki=pki, his_port=his_port))
    return str(path)


@contextlib.contextmanager
def own_vhost():
    """A vhost of the test's own (its queues go with it); skipped without rabbitmqctl, failed where required."""
    try:
        with rabbitmq_vhost(AMQP_URL, "liaison-crash") as url:
            yield url
    except RabbitmqctlMissing as exc:
        if os.environ.get("LIAISON_REQUIRE_RABBITMQ") == "1":
            pytest.fail(str(exc), pytrace=False)
        pytest.skip(str(exc))


# ------------------------------------------------------------------ what the test looks at


async def send_all(port: int, cdas: dict[str, bytes]) -> None:
    async with MllpSender("127.0.0.1", port, timeout=30.0) as sender:
        for control_id, cda in cdas.items():
            raw = encode_message(make_pfi_oru(cda, control_id=control_id, recipients=[DR_MARTIN, patient_rct()],
                                              flags={"DESTMSSANTEPAT": "Y", "ACK_RECEPTION": "Y"}))
            reply, _ = await sender.exchange(raw)
            assert reply.code == "AA", reply


async def quiet_moment(upload: SlowUpload, journal, his: RecordingHis, cdas: dict[str, bytes]) -> bool:
    """Every mail on the link is held by the gate, and each one it let through is journaled and answered."""
    if upload.gated == 0 or upload.held != upload.gated:
        return False
    accepted = 0
    for cda in cdas.values():
        accepted += sum(o.status == OutcomeStatus.ACCEPTED for o in await journal.outcomes(read_document_id(cda)))
    return accepted == upload.forwarded and len(distinct_zams(his)) == upload.forwarded


async def all_final(journal, cdas: dict[str, bytes]):
    """The journal rows of the run's messages once every one is final, else None."""
    found = [r for r in await journal.search(limit=10 * len(cdas)) if r.control_id in cdas]
    return found if len(found) == len(cdas) and all(r.state in FINAL for r in found) else None


async def claims_held(journal, cdas: dict[str, bytes]) -> list[tuple[str, str]]:
    """(document id, recipient) of every claim still "sending"."""
    return [(o.document_id, o.destination) for cda in cdas.values()
            for o in await journal.outcomes(read_document_id(cda)) if o.status == OutcomeStatus.SENDING]


def at_least(found, count: int):
    return found if len(found) >= count else None


def distinct_zams(his: RecordingHis) -> dict[str, tuple[str, str, str]]:
    """ZAM^Z02 by their own MSH-10 (a copy the bus delivered twice is one answer): (MSH-10 answered, address, Y/N)."""
    found = {}
    for text in his.received:
        segments = text.split("\r")
        msh = segments[0].split("|")
        if msh[8].startswith("ZAM^Z02"):
            obx1, obx2 = [s.split("|") for s in segments if s.startswith("OBX|")][:2]
            found[msh[9]] = (obx1[4], obx2[5].split("^")[3], obx1[5][:1])
    return found


def mailed(postfix, cdas: dict[str, bytes]) -> list[tuple[str, str]]:
    """(MSH-10, recipient) of every mail of this run in Postfix's Maildir."""
    by_cda = {cda: control_id for control_id, cda in cdas.items()}
    found = []
    for mail in postfix.delivered():
        control_id = by_cda.get(xdm_cda(mail.message))
        if control_id is not None:
            found.append((control_id, mail.recipient))
    return found


def read_document_id(cda: bytes) -> str:
    from mappings.cda_header import read_header
    return read_header(cda).document_id
