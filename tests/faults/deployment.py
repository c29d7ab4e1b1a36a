"""One scenario's deployment: 2 listeners and 3 workers, real processes, on the suite's servers.

The Python equivalent of ``deploy/scripts/cluster.sh start``: ``liaison run --ingest-only`` ×2 and
``liaison worker`` ×3 (``python -m channels.app.cli.main``), each from its own ``liaison.toml``, on the
suite's RabbitMQ cluster (a vhost of the scenario's own; each process lists the three nodes, starting
from a different one, as servers listing their nearest node first would), a PostgreSQL journal (a
schema of the scenario's own, encrypted with a fresh key), and the suite's Postfix reached through a
:class:`~tests.support.tcp_proxy.TcpProxy` the scenario can slow down or cut. The ZAMs go back to a
:class:`~channels.app.demo.his.RecordingHis` in the test's process. Each listener keeps its port across a
restart, so the sender finds it again.
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
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from channels.app.demo.his import RecordingHis
from channels.journal.postgresql import PostgresJournal
from channels.testing.engine_config import engine_toml, listener_toml, mail_and_acks_toml
from channels.testing.local import free_port, wait_port
from tests.faults.servers import LETTERS, Postgres, Servers
from tests.support.tcp_proxy import SlowUpload, TcpProxy

ROOT = Path(__file__).resolve().parents[2]
LEASE = 5                                   # engine.claim_lease: a dead worker's claims lapse after 5 s
RETRY_DELAYS = [1, 2, 3, 5, 8, 13]          # 32 s of retries: longer than any outage the suite makes
SMTP_POOL = 4                               # mails in flight per worker


class Deployment:
    """Start with :meth:`start`, end with :meth:`stop` (every process, the proxy, the HIS, the vhost)."""

    def __init__(self, servers: Servers, root: Path, name: str, *, listeners: int = 2, workers: int = 3,
                 slow: Sequence[float] | None = None, postgres: Postgres | None = None):
        self.servers = servers
        self.postgres = postgres or servers.postgres      # a scenario may bring its own (on a small volume)
        self.root = root
        self.name = name
        self.run = uuid.uuid4().hex[:8]
        self.vhost = f"faults-{name}-{self.run}"
        self.key = os.urandom(32)
        self.upload = SlowUpload(slow) if slow else None
        self.relay = TcpProxy(servers.postfix.port, upload=self.upload)
        self.his = RecordingHis()
        self.listener_names = [f"listener-{i + 1}" for i in range(listeners)]
        self.worker_names = [f"worker-{i + 1}" for i in range(workers)]
        self.ports = {name: free_port() for name in self.listener_names}
        self.processes: dict[str, subprocess.Popen] = {}
        self.journal: PostgresJournal | None = None
        self.journal_url = ""
        self.killed_at: list[float] = []          # time.time() of each kill -9 of an engine process

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.servers.rabbit.add_vhost(self.vhost)
        self.journal_url = self.postgres.new_schema(f"faults_{self.name}_{self.run}")
        await self.relay.start()
        his_port = await self.his.start()
        for index, name in enumerate(self.listener_names + self.worker_names):
            self._write_config(name, index, his_port)
        for name in self.listener_names:      # the first one migrates the schema alone
            self.start_process(name)
            await self.wait_listening(name)
        for name in self.worker_names:
            self.start_process(name)
        for name in self.worker_names:        # the stream starts on a deployment that is up
            await self.wait_connected(name)
        self.journal = PostgresJournal(self.journal_url, key=self.key, migrate=False)
        await self.journal.open()

    async def stop(self) -> None:
        for name in list(self.processes):
            self.terminate(name)
        for name in list(self.processes):
            await self.reap(name, 20)
        if self.upload is not None:
            self.upload.release()
        await self.relay.stop()
        await self.his.close()
        if self.journal is not None:
            await self.journal.close()
        await asyncio.to_thread(self.servers.rabbit.delete_vhost, self.vhost)

    # ------------------------------------------------------------------ processes

    def _write_config(self, name: str, index: int, his_port: int) -> None:
        urls = self.servers.rabbit.urls(self.vhost)
        first = index % len(LETTERS)
        bus = urls[first:] + urls[:first]            # each server lists another node first
        port = self.ports.get(name, 0)
        (self.root / f"{name}.toml").write_text(
            engine_toml(bus=bus, journal=self.journal_url, cda_schema_required=False, retry_delays=RETRY_DELAYS,
                        claim_lease=LEASE)
            + listener_toml(port=port)
            + mail_and_acks_toml(relay_port=self.relay.port, pool=SMTP_POOL, pki=self.servers.postfix.pki,
                                 his_port=his_port))

    def start_process(self, name: str) -> None:
        verb = ["run", "--ingest-only"] if name in self.ports else ["worker"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LIAISON_JOURNAL_KEY": base64.b64encode(self.key).decode()}
        with (self.root / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "channels.app.cli.main", *verb, "-c", str(self.root / f"{name}.toml")],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    async def wait_listening(self, name: str, timeout: float = 60) -> None:
        await wait_port(self.ports[name], time.monotonic() + timeout, still_starting=lambda: self.check_alive(name))

    async def wait_connected(self, name: str, timeout: float = 90) -> None:
        """Until the process logged its bus connection (after its journal opened, before its consumers)."""
        deadline = time.monotonic() + timeout
        while not self.logged("bus.amqp.connected", name):
            self.check_alive(name)
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} not connected after {timeout} s:\n{self.log(name)[-3000:]}")
            await asyncio.sleep(0.1)

    def check_alive(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            raise AssertionError(f"{name} exited {process.returncode}:\n{self.log(name)[-3000:]}")

    def alive(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is None]

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        """``kill -9``: no goodbye to the bus, the journal or the relay."""
        process = self.processes[name]
        self.killed_at.append(time.time())
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)

    def terminate(self, name: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.processes[name].terminate()

    async def reap(self, name: str, timeout: float) -> None:
        process = self.processes[name]
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
        except TimeoutError:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def restart(self, name: str) -> None:
        self.start_process(name)
        if name in self.ports:
            await self.wait_listening(name)

    def logged(self, event: str, *names: str) -> int:
        """How many times the processes (or those named) logged ``event`` (a structlog event name)."""
        count = 0
        for name in names or self.processes:
            for line in self.log(name).splitlines():
                with contextlib.suppress(ValueError):
                    if json.loads(line).get("event") == event:
                        count += 1
        return count
