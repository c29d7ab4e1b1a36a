"""End-to-end benchmark (first cut): MLLP in → journal → bus → CDA checks → XDM mail → ZAMs back to the HIS.

Starts the real chain in subprocesses from a written ``liaison.toml``: ``liaison run --ingest-only`` and N
``liaison worker`` on RabbitMQ (a vhost of the bench's own, deleted after), or one ``liaison run`` with
``--bus embedded`` (the embedded bus is one SQLite file locked by one process: no separate workers); a
SQLite journal; the local TLS mail sink (``bench/smtp_sink.py``: STARTTLS, client certificate required —
the sink, not Postfix) in its own process; a fake HIS receiving the ZAMs (an MLLP listener in this process).
It feeds the PFI mix over 8 persistent MLLP connections, each waiting for its ACK: 45 % ADT (A01/A03/A08,
each its own stay), 45 % ORU^R01 with a structured CR-BIO CDA in OBX-5, 10 % MDM^T02 with an LDL-SES CDA
carrying a larger PDF; each document to 2 PS recipients (no DMP in this cut).

A document is done when both its ZAM^Z02 reached the fake HIS (the ZAM follows the recipient's final
outcome); an ADT when the journal says DELIVERED and its stay is recorded. It prints documents/s,
p50/p99 latency MLLP-in → last ZAM (ADT: → journal update), and CPU seconds per document of each process.
It checks as it goes that nothing was lost or duplicated (mails per recipient and Message-ID at the sink,
ZAMs per document and recipient, final journal states): a run with a loss or a duplicate prints FAILED
and the bench exits 1. Figures only: nothing here asserts a timing.

    PYTHONPATH=. .venv/bin/python bench/e2e.py [--workers 1,2] [--messages 400] [--runs 2] [--bus amqp|embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.e2e_load import ADT_TRIGGERS, Document, pfi_mix  # noqa: E402
from bench.e2e_watch import FakeHis, MailCount, cpu_seconds, find_rabbitmq_pid  # noqa: E402
from channels.journal.sqlite import SqliteJournal  # noqa: E402
from channels.testing.local import free_port, wait_port  # noqa: E402
from channels.testing.pki import make_test_pki  # noqa: E402
from channels.testing.rabbitmq import rabbitmq_vhost  # noqa: E402
from router.ports import MessageState  # noqa: E402

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
CONNECTIONS = 8
FACILITY = "CHU-TEST"           # MSH-4 of the ADT builder: the stays' facility
BAD_STATES = {MessageState.PARKED, MessageState.FAILED, MessageState.PARTIAL, MessageState.REJECTED}
NOT_FINAL = {MessageState.RECEIVED, MessageState.QUEUED, MessageState.PROCESSING, MessageState.DISPATCHED}


def exited(processes: dict[str, subprocess.Popen], logs: Path) -> None:
    """Raise with its log's end when one of ``processes`` has exited (they are meant to keep running)."""
    for name, proc in processes.items():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited {proc.returncode}:\n{(logs / f'{name}.log').read_text()[-3000:]}")


# ------------------------------------------------------------------ processes


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


def write_config(root: Path, *, bus_url: str, mllp_port: int, relay_port: int, his_port: int, pki,
                 smtp_pool: int, schematrons: str, max_frame_bytes: int = 16 * 2**20) -> Path:
    path = root / "liaison.toml"
    path.write_text(f"""\
[engine]
bus = "{bus_url}"
journal = "sqlite://{root / 'journal.sqlite'}"
cda_schema_required = true
schematrons = "{schematrons}"

[[listeners]]
name = "his"
host = "127.0.0.1"
port = {mllp_port}
max_frame_bytes = {max_frame_bytes}

[mss]
relay = "smtp://127.0.0.1:{relay_port}?pool={smtp_pool}"
sender = "pfi@hopital-test.mssante.fr"
client_cert = "{pki.client_cert}"
client_key = "{pki.client_key}"
ca_file = "{pki.ca_cert}"
nil = "TEST-NIL-0001"
message_id_domain = "hopital-test.mssante.fr"
timeout = 30

[acks]
host = "127.0.0.1"
port = {his_port}
timeout = 5
""")
    return path


# ------------------------------------------------------------------ one phase: send, wait, check


@dataclass
class Phase:
    documents: list[Document]
    sent_at: dict[str, float] = field(default_factory=dict)        # control id → wall clock at send
    acked_at: dict[str, float] = field(default_factory=dict)
    done_at: dict[str, float] = field(default_factory=dict)
    non_aa: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def feed(port: int, phase: Phase, rate: float | None = None) -> None:
    """Send every document over CONNECTIONS persistent connections, each waiting for its ACK.

    With ``rate``, message i is not sent before i / rate seconds (an offered load below saturation);
    without, as fast as the ACKs come back.
    """
    queue = enumerate(phase.documents)
    started = time.monotonic()

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i, doc in queue:
                if rate:
                    await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
                phase.sent_at[doc.control_id] = time.time()
                writer.write(VT + doc.raw + FS + CR)
                ack = await reader.readuntil(FS + CR)
                phase.acked_at[doc.control_id] = time.time()
                if b"MSA|AA" not in ack:
                    phase.non_aa.append(f"{doc.control_id}: {ack[:200]!r}")
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(CONNECTIONS)))


async def settle(phase: Phase, his: FakeHis, journal: SqliteJournal, mails: MailCount, since: datetime,
                 stall: float) -> None:
    """Wait until every document is done, checking for losses and duplicates as it goes."""
    by_id = {d.control_id: d for d in phase.documents}
    adts = {d.control_id for d in phase.documents if d.kind == "ADT"}
    progress_at, done_before = time.monotonic(), 0
    while True:
        for control_id, doc in by_id.items():
            if doc.kind != "ADT" and control_id not in phase.done_at:
                when = his.done_at(control_id, doc.recipients)
                if when is not None:
                    phase.done_at[control_id] = when
        # Queried by state and type: a search returns each message's raw bytes (an MDM is ~500 KB).
        for state in BAD_STATES:
            for record in await journal.search(state=state, since=since, limit=100_000):
                if record.control_id in by_id:
                    doc = by_id.pop(record.control_id)
                    adts.discard(record.control_id)
                    phase.problems.append(f"{record.control_id} ({doc.kind}) ended {record.state}: {record.detail}")
        for trigger in ADT_TRIGGERS:
            for record in await journal.search(state=MessageState.DELIVERED, message_type=f"ADT^{trigger}",
                                               since=since, limit=100_000):
                control_id = record.control_id
                if control_id in adts and control_id not in phase.done_at:
                    if await journal.stay(FACILITY, by_id[control_id].encounter) is not None:
                        phase.done_at[control_id] = record.updated_at.timestamp()
        phase.problems.extend(his.duplicates())
        phase.problems.extend(mails.check())
        if phase.problems or len(phase.done_at) == len(phase.documents):
            return
        if len(phase.done_at) > done_before:
            progress_at, done_before = time.monotonic(), len(phase.done_at)
        elif time.monotonic() - progress_at > stall:
            missing = sorted(set(by_id) - set(phase.done_at))
            phase.problems.append(f"{len(missing)} document(s) not done after {stall:.0f} s without progress: "
                                  f"{', '.join(missing[:10])}")
            return
        await asyncio.sleep(0.5)


async def run_phase(documents: list[Document], port: int, his: FakeHis, journal: SqliteJournal,
                    mails: MailCount, stall: float, rate: float | None = None) -> Phase:
    phase = Phase(documents)
    mails.expect([d for d in documents if d.recipients])
    since = datetime.now(timezone.utc).replace(microsecond=0)
    sender = asyncio.create_task(feed(port, phase, rate))
    try:
        await settle(phase, his, journal, mails, since, stall)
    finally:
        await sender
    if phase.non_aa:
        phase.problems.append(f"{len(phase.non_aa)} non-AA acknowledgement(s), first: {phase.non_aa[0]}")
    if not phase.problems:
        # Every mail in, and nothing more; every ZAM says Y.
        phase.problems.extend(mails.check(final=True))
        phase.problems.extend(his.refusals([d for d in documents if d.kind != "ADT"]))
        problem = await journal_final(journal, {d.control_id for d in documents}, since)
        if problem:
            phase.problems.append(problem)
    return phase


async def journal_final(journal: SqliteJournal, ids: set[str], since: datetime, grace: float = 10) -> str:
    """"" when every message is final in the journal (within ``grace`` s of its last ZAM), else what is left."""
    deadline = time.monotonic() + grace
    while True:
        left = [(r.control_id, r.state) for state in NOT_FINAL
                for r in await journal.search(state=state, since=since, limit=100_000) if r.control_id in ids]
        if not left:
            return ""
        if time.monotonic() > deadline:
            return (f"{len(left)} message(s) not final in the journal {grace:.0f} s after their ZAMs: "
                    + ", ".join(f"{c} {s}" for c, s in left[:5]))
        await asyncio.sleep(0.2)


# ------------------------------------------------------------------ one configuration


@dataclass
class Result:
    label: str
    documents: int
    rate: float
    ingest_rate: float
    p50: float
    p99: float
    p50_by_kind: dict[str, float]
    cpu_ms: dict[str, float]
    problems: list[str]


@dataclass
class Chain:
    """The running chain of one configuration: its processes, the fake HIS, the journal (read side), the mails."""
    tmp: Path
    engine: dict[str, subprocess.Popen]
    his: FakeHis
    journal: SqliteJournal
    mails: MailCount
    mllp_port: int
    label: str


@contextlib.asynccontextmanager
async def running_chain(args, workers: int):
    """Start sink, listener and workers (or one engine) from a written config; stop and clean up after.

    ``args`` needs bus, amqp_url, smtp_pool, smtp_delay, schematrons and keep (bench/e2e.py's flags)."""
    tmp = Path(tempfile.mkdtemp(prefix="liaison-e2e-"))
    processes = Processes(tmp)
    his = FakeHis()
    journal = SqliteJournal(tmp / "journal.sqlite")
    stack = contextlib.ExitStack()
    try:
        pki = make_test_pki(tmp / "pki")
        relay_port, mllp_port = free_port(), free_port()
        maildir = tmp / "maildir"
        sink = processes.start("sink", ["-m", "bench.smtp_sink", "--pki", str(tmp / "pki"), "--maildir",
                                        str(maildir), "--port", str(relay_port), "--delay", str(args.smtp_delay)])
        his_port = await his.start()
        if args.bus == "amqp":
            bus_url = stack.enter_context(rabbitmq_vhost(args.amqp_url, "liaison-e2e"))
        else:
            bus_url = f"embedded://{tmp / 'bus.sqlite'}"
        config = str(write_config(tmp, bus_url=bus_url, mllp_port=mllp_port, relay_port=relay_port,
                                  his_port=his_port, pki=pki, smtp_pool=args.smtp_pool, schematrons=args.schematrons,
                                  max_frame_bytes=getattr(args, "max_frame_bytes", 16 * 2**20)))
        engine: dict[str, subprocess.Popen] = {"sink": sink}
        if args.bus == "amqp":
            engine["listener"] = processes.liaison("listener", "run", "-c", config, "--ingest-only")
            for k in range(workers):
                engine[f"worker-{k + 1}"] = processes.liaison(f"worker-{k + 1}", "worker", "-c", config)
        else:
            engine["engine"] = processes.liaison("engine", "run", "-c", config)
        for port in (relay_port, mllp_port):
            await wait_port(port, time.monotonic() + 90, still_starting=lambda: exited(engine, tmp))
        await journal.open()
        label = (f"RabbitMQ, {workers} worker(s)" if args.bus == "amqp" else "embedded bus, one `liaison run`")
        yield Chain(tmp, engine, his, journal, MailCount(maildir), mllp_port, label)
    finally:
        processes.stop_all()
        stack.close()
        await journal.close()
        await his.close()
        if args.keep:
            print(f"  kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


async def run_config(args, workers: int, run_index: int, pdf_kb: int) -> Result:
    async with running_chain(args, workers) as chain:
        engine, his, journal, mails, mllp_port, label = (chain.engine, chain.his, chain.journal, chain.mails,
                                                         chain.mllp_port, chain.label)
        tag = f"{uuid.uuid4().hex[:6]}"
        warm = pfi_mix(args.warmup, f"W{tag}", pdf_kb=pdf_kb)
        print(f"  [{label}, run {run_index}] warm-up: {len(warm)} messages (start-up, schematron compile)",
              flush=True)
        phase = await run_phase(warm, mllp_port, his, journal, mails, args.stall)
        if phase.problems:
            return failed_result(label, phase)
        # Let the workers go quiet (ZAMs of the warm-up are in) before counting CPU.
        await asyncio.sleep(0.5)
        documents = pfi_mix(args.messages, f"M{tag}", pdf_kb=pdf_kb)
        pids = {name: proc.pid for name, proc in engine.items()}
        rabbit = find_rabbitmq_pid() if args.bus == "amqp" else None
        if rabbit:
            pids["rabbitmq (shared)"] = rabbit
        pids["bench (load + fake HIS)"] = os.getpid()
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        print(f"  [{label}, run {run_index}] measuring: {len(documents)} messages", flush=True)
        phase = await run_phase(documents, mllp_port, his, journal, mails, args.stall, args.rate)
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        if phase.problems:
            return failed_result(label, phase)
        first = min(phase.sent_at.values())
        latencies = {d.control_id: phase.done_at[d.control_id] - phase.sent_at[d.control_id] for d in documents}
        ordered = sorted(latencies.values())
        by_kind = {kind: statistics.median([latencies[d.control_id] for d in documents if d.kind == kind]) * 1000
                   for kind in ("ADT", "ORU", "MDM")}
        count = len(documents)
        return Result(label=label, documents=count, rate=count / (max(phase.done_at.values()) - first),
                      ingest_rate=count / (max(phase.acked_at.values()) - first),
                      p50=statistics.median(ordered) * 1000, p99=ordered[max(0, int(count * 0.99) - 1)] * 1000,
                      p50_by_kind=by_kind, cpu_ms={name: c / count * 1000 for name, c in cpu.items()}, problems=[])


def failed_result(label: str, phase: Phase) -> Result:
    return Result(label=label, documents=len(phase.documents), rate=0, ingest_rate=0, p50=0, p99=0, p50_by_kind={},
                  cpu_ms={}, problems=phase.problems)


# ------------------------------------------------------------------ main


def add_chain_options(parser: argparse.ArgumentParser) -> None:
    """The flags that choose the chain (shared by bench/memory.py and bench/soak.py)."""
    parser.add_argument("--bus", choices=["amqp", "embedded"], default="amqp")
    parser.add_argument("--amqp-url", default=os.environ.get("LIAISON_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--smtp-pool", type=int, default=16, help="mss.relay ?pool=: SMTP connections per process")
    parser.add_argument("--smtp-delay", type=float, default=0.0,
                        help="seconds the sink holds each DATA reply (a slow relay)")
    parser.add_argument("--schematrons", choices=["off", "volet", "all"], default="volet")
    parser.add_argument("--stall", type=float, default=60, help="give up after this many seconds without progress")
    parser.add_argument("--keep", action="store_true", help="keep the run directories (logs, journal, Maildir)")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=400, help="messages measured per run (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (RabbitMQ only)")
    parser.add_argument("--runs", type=int, default=2, help="runs per configuration (the machine is shared)")
    add_chain_options(parser)
    parser.add_argument("--rate", type=float, help="offered messages/s (default: as fast as the ACKs come back, "
                        "which saturates the workers: latencies then measure the queue)")
    parser.add_argument("--pdf-kb", type=int, default=200, help="size of the PDF in the MDM's CDA")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    workers = [int(w) for w in args.workers.split(",")] if args.bus == "amqp" else [1]

    offered = f"offered at {args.rate:g} msg/s" if args.rate else "offered as fast as the ACKs come back"
    print(f"PFI mix, {args.messages} messages a run over {CONNECTIONS} connections ({offered}); 2 PS recipients "
          f"a document, no DMP (not in this first cut)")
    print(f"mail relay: the local TLS sink (bench/smtp_sink.py, STARTTLS + client certificate), not Postfix; "
          f"SMTP pool {args.smtp_pool}, relay delay {args.smtp_delay:g} s per mail; XSD on, schematrons {args.schematrons}")
    if args.bus == "embedded":
        print("embedded bus: one `liaison run` (listener and workers in one process: the embedded bus "
              "cannot be shared between processes); --workers ignored")
    speed = min(timeit.repeat("sum(range(10**6))", number=1, repeat=5)) * 1000
    print(f"machine: {os.cpu_count()} CPU(s), sum(range(10**6)) {speed:.0f} ms; shared with other work: "
          f"figures are noisy, compare runs of the same moment\n")
    results: list[Result] = []
    for w, run_index in itertools.product(workers, range(1, args.runs + 1)):
        results.append(await run_config(args, w, run_index, args.pdf_kb))
        report(results[-1])
    summary(results, args.rate)
    if any(r.problems for r in results):
        print("\n*** FAILED: a run lost, duplicated or refused something (see above) ***")
        return 1
    return 0


def report(r: Result) -> None:
    if r.problems:
        print(f"  *** FAILED *** {r.label}:")
        for problem in r.problems[:20]:
            print(f"      {problem}")
        return
    kinds = ", ".join(f"{k} {v:.0f}" for k, v in r.p50_by_kind.items())
    print(f"  {r.label}: {r.rate:.1f} docs/s end to end (ingest {r.ingest_rate:.0f} msg/s), p50 {r.p50:.0f} ms, "
          f"p99 {r.p99:.0f} ms (p50 by kind, ms: {kinds})")
    print("    CPU ms per document: " + ", ".join(f"{name} {ms:.1f}" for name, ms in r.cpu_ms.items()), flush=True)


def summary(results: list[Result], rate: float | None) -> None:
    print(f"\n{'configuration':<34}{'docs/s':>8}{'ingest/s':>10}{'p50 ms':>8}{'p99 ms':>8}  CPU ms/doc")
    for r in results:
        if r.problems:
            print(f"{r.label:<34}{'FAILED':>8}")
            continue
        engine_cpu = sum(ms for name, ms in r.cpu_ms.items() if name.startswith(("listener", "worker", "engine")))
        print(f"{r.label:<34}{r.rate:>8.1f}{r.ingest_rate:>10.0f}{r.p50:>8.0f}{r.p99:>8.0f}  "
              f"engine {engine_cpu:.1f} (" + ", ".join(f"{n} {ms:.1f}" for n, ms in r.cpu_ms.items()) + ")")
    ok = [r for r in results if not r.problems and r.label.startswith("RabbitMQ")]
    by_workers: dict[str, list[float]] = {}
    for r in ok:
        by_workers.setdefault(r.label, []).append(r.rate)
    if len(by_workers) > 1 and rate:
        print(f"(no scaling figure: docs/s is capped by --rate {rate:g})")
    elif len(by_workers) > 1:
        base = statistics.median(next(iter(by_workers.values())))
        print("scaling (median docs/s): " + ", ".join(
            f"{label.split(', ')[1]} {statistics.median(rates):.1f} (×{statistics.median(rates) / base:.2f})"
            for label, rates in by_workers.items()))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
