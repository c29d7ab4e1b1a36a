"""The chain ``bench/e2e.py`` (and ``bench/soak.py``, ``bench/memory.py``) runs: its processes and its config.

From a written ``liaison.toml``: ``liaison run --ingest-only`` and N ``liaison worker`` on RabbitMQ (a vhost
of the bench's own, deleted after), or one ``liaison run`` with ``--bus embedded``; a SQLite journal; the
local TLS mail sink (``bench/smtp_sink.py``) and the DMP double over mutual TLS (``bench/dmp_double.py``),
each in its own process; the fake HIS receiving the ZAMs, an MLLP listener in the bench's process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.e2e_load import RENDER_ROLES
from bench.e2e_watch import DmpLedger, FakeHis, MailCount
from channels.journal.sqlite import SqliteJournal
from channels.testing.engine_config import engine_toml, listener_toml, mail_and_acks_toml
from channels.testing.cachet_pki import make_cachet_pki, vihf_table
from channels.testing.local import free_port, wait_port
from channels.testing.mdm_messages import CORRESPONDENTS
from channels.testing.pki import make_test_pki
from channels.testing.rabbitmq import rabbitmq_vhost

ROOT = Path(__file__).resolve().parents[1]


def exited(processes: dict[str, subprocess.Popen], logs: Path) -> None:
    """Raise with its log's end when one of ``processes`` has exited (they are meant to keep running)."""
    for name, proc in processes.items():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited {proc.returncode}:\n{(logs / f'{name}.log').read_text()[-3000:]}")


class Processes:
    """Subprocesses each logging to its own file; all stopped (SIGTERM, then SIGKILL) by :meth:`stop_all`."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        with (self.logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.running[name] = proc
        return proc

    def liaison(self, name: str, *args: str) -> subprocess.Popen:
        return self.start(name, ["-m", "channels.app.cli.main", "--log-level", "warning", *args])

    def stop_all(self) -> None:
        alive = [p for p in self.running.values() if p.poll() is None]
        for proc in alive:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in alive:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def write_config(root: Path, *, bus_url: str, mllp_port: int, relay_port: int, his_port: int, dmp_port: int, pki,
                 cachet, smtp_pool: int, schematrons: str, max_frame_bytes: int = 16 * 2**20) -> Path:
    """The chain's ``liaison.toml``: the PFI and render paths both configured, the DMP through its double."""
    vihf = "\n".join(f"{key} = {json.dumps(value)}" for key, value in vihf_table(cachet).items())
    roles = "\n".join(f"{key} = {json.dumps(value)}" for key, value in RENDER_ROLES.items())
    correspondents = "\n".join(
        "[[correspondents]]\n" + "\n".join(f"{key} = {json.dumps(value)}" for key, value in entry.items())
        for entry in CORRESPONDENTS)
    path = root / "liaison.toml"
    path.write_text(
        engine_toml(bus=bus_url, journal=f"sqlite://{root / 'journal.sqlite'}", cda_schema_required=True,
                    schematrons=schematrons)
        + listener_toml(port=mllp_port, max_frame_bytes=max_frame_bytes)
        + mail_and_acks_toml(relay_port=relay_port, pool=smtp_pool, pki=pki, his_port=his_port)
        + f"""
[dmp]
url = "https://localhost:{dmp_port}/repository"
registry_url = "https://localhost:{dmp_port}/registry"
client_cert = "{pki.client_cert}"
client_key = "{pki.client_key}"
ca_file = "{pki.ca_cert}"
timeout = 30

[dmp.vihf]
{vihf}

[render]
{roles}

{correspondents}
""")
    return path


@dataclass
class Chain:
    """The running chain of one configuration: its processes, the fake HIS, the journal (read side), the mails
    at the relay and the DMP double's ledger."""
    tmp: Path
    engine: dict[str, subprocess.Popen]
    his: FakeHis
    journal: SqliteJournal
    mails: MailCount
    dmp: DmpLedger
    mllp_port: int
    label: str


@contextlib.asynccontextmanager
async def running_chain(args, workers: int):
    """Start sink, DMP double, listener and workers (or one engine) from a written config; stop and clean up after.

    ``args`` needs bus, amqp_url, smtp_pool, smtp_delay, schematrons and keep (:func:`add_chain_options`)."""
    tmp = Path(tempfile.mkdtemp(prefix="liaison-e2e-"))
    processes = Processes(tmp)
    his = FakeHis()
    journal = SqliteJournal(tmp / "journal.sqlite")
    stack = contextlib.ExitStack()
    try:
        pki = make_test_pki(tmp / "pki")
        cachet = make_cachet_pki(tmp / "cachet")
        relay_port, mllp_port, dmp_port = free_port(), free_port(), free_port()
        maildir, ledger = tmp / "maildir", tmp / "dmp-ledger.txt"
        sink = processes.start("sink", ["-m", "bench.smtp_sink", "--pki", str(tmp / "pki"), "--maildir",
                                        str(maildir), "--port", str(relay_port), "--delay", str(args.smtp_delay)])
        dmp = processes.start("dmp", ["-m", "bench.dmp_double", "--pki", str(tmp / "pki"), "--cachet-ca",
                                      str(cachet.ca_cert), "--port", str(dmp_port), "--ledger", str(ledger)])
        his_port = await his.start()
        if args.bus == "amqp":
            bus_url = stack.enter_context(rabbitmq_vhost(args.amqp_url, "liaison-e2e"))
        else:
            bus_url = f"embedded://{tmp / 'bus.sqlite'}"
        config = str(write_config(tmp, bus_url=bus_url, mllp_port=mllp_port, relay_port=relay_port,
                                  his_port=his_port, dmp_port=dmp_port, pki=pki, cachet=cachet,
                                  smtp_pool=args.smtp_pool, schematrons=args.schematrons,
                                  max_frame_bytes=getattr(args, "max_frame_bytes", 16 * 2**20)))
        engine: dict[str, subprocess.Popen] = {"sink": sink, "dmp": dmp}
        if args.bus == "amqp":
            engine["listener"] = processes.liaison("listener", "run", "-c", config, "--ingest-only")
            for k in range(workers):
                engine[f"worker-{k + 1}"] = processes.liaison(f"worker-{k + 1}", "worker", "-c", config)
        else:
            engine["engine"] = processes.liaison("engine", "run", "-c", config)
        for port in (relay_port, dmp_port, mllp_port):
            await wait_port(port, time.monotonic() + 90, still_starting=lambda: exited(engine, tmp))
        await journal.open()
        label = (f"RabbitMQ, {workers} worker(s)" if args.bus == "amqp" else "embedded bus, one `liaison run`")
        yield Chain(tmp, engine, his, journal, MailCount(maildir), DmpLedger(ledger), mllp_port, label)
    finally:
        processes.stop_all()
        stack.close()
        await journal.close()
        await his.close()
        if args.keep:
            print(f"  kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def add_chain_options(parser: argparse.ArgumentParser) -> None:
    """The flags that choose the chain (shared by bench/e2e.py, bench/memory.py and bench/soak.py)."""
    parser.add_argument("--bus", choices=["amqp", "embedded"], default="amqp")
    parser.add_argument("--amqp-url", default=os.environ.get("LIAISON_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--smtp-pool", type=int, default=16, help="mss.relay ?pool=: SMTP connections per process")
    parser.add_argument("--smtp-delay", type=float, default=0.0,
                        help="seconds the sink holds each DATA reply (a slow relay)")
    parser.add_argument("--schematrons", choices=["off", "volet", "all"], default="volet")
    parser.add_argument("--stall", type=float, default=60, help="give up after this many seconds without progress")
    parser.add_argument("--keep", action="store_true", help="keep the run directories (logs, journal, Maildir)")
