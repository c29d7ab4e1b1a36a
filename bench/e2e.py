"""End-to-end benchmark: MLLP in → journal → bus → CDA checks (or rendering) → XDM mail and DMP deposit →
ZAMs back to the HIS.

Starts the real chain in subprocesses (``bench/e2e_chain.py``): ``liaison run --ingest-only`` and N
``liaison worker`` on RabbitMQ, or one ``liaison run`` with ``--bus embedded`` (the embedded bus is one
SQLite file locked by one process: no separate workers); a SQLite journal; the local TLS mail sink
(``bench/smtp_sink.py``: STARTTLS, client certificate required — the sink, not Postfix) and the DMP double
(``bench/dmp_double.py``: XDS.b over mutual TLS, VIHF signatures verified) each in its own process; a fake
HIS receiving the ZAMs (an MLLP listener in this process). It feeds a mix (``bench/e2e_load.py``) over 8
persistent MLLP connections, each waiting for its ACK: 45 % ADT (A01/A03/A08, each its own stay), 45 %
ORU^R01, 10 % MDM^T02 with a larger PDF; each document to 2 PS recipients and the patient's DMP.
``--mix pfi`` (default): the HIS sends the CDA (CR-BIO, LDL-SES) in the message; ``--mix render``:
Liaison writes it (CR-BIO with the lab's PDF or one it draws, LDL-SES around the letter's PDF).

A document is done when its DMP answer is in (the double stored its uniqueId and the ZAM^Z01 reached the
HIS) and every recipient's outcome is final: PFI, both its ZAM^Z02 reached the HIS (each follows the
recipient's final outcome); render (no ZAM^Z02), the journal says DELIVERED. An ADT is done when the
journal says DELIVERED and its stay is recorded. It prints documents/s, p50/p99 latency MLLP-in → done,
CPU seconds per document of each process, and the stage ceilings measured first in the same run (bare MLLP
echo, RabbitMQ batched confirms, the TLS sink: ``bench/ceilings.py``) with the ratios. It checks as it goes that nothing was lost or duplicated
(mails per recipient and Message-ID at the sink, ZAMs per document and recipient, entries and requests
at the DMP, final journal states): a run with a loss or a duplicate prints FAILED and the bench exits 1.
Figures only: nothing here asserts a timing.

    PYTHONPATH=. .venv/bin/python bench/e2e.py [--mix pfi|render] [--workers 1,2] [--messages 400] [--runs 2]
                                               [--bus amqp|embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import statistics
import sys
import time
import timeit
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ceilings import amqp_batched_confirms, smtp_sink  # noqa: E402
from bench.e2e_chain import Chain, add_chain_options, running_chain  # noqa: E402
from bench.e2e_load import ADT_TRIGGERS, MIXES, Document, mix  # noqa: E402
from bench.e2e_watch import DMP, cpu_seconds, find_rabbitmq_pid  # noqa: E402
from bench.ingest import measure_echo  # noqa: E402
from channels.journal.sqlite import SqliteJournal  # noqa: E402
from router.ports import MessageState  # noqa: E402

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
CONNECTIONS = 8
FACILITY = "CHU-TEST"           # MSH-4 of the ADT builder: the stays' facility
BAD_STATES = {MessageState.PARKED, MessageState.FAILED, MessageState.PARTIAL, MessageState.REJECTED}
NOT_FINAL = {MessageState.RECEIVED, MessageState.QUEUED, MessageState.PROCESSING, MessageState.DISPATCHED}


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


async def settle(phase: Phase, chain: Chain, since: datetime, stall: float) -> None:
    """Wait until every document is done, checking for losses and duplicates as it goes."""
    his, journal = chain.his, chain.journal
    by_id = {d.control_id: d for d in phase.documents}
    adts = {d.control_id for d in phase.documents if d.kind == "ADT"}
    progress_at, done_before = time.monotonic(), 0
    while True:
        chain.dmp.scan()
        for control_id, doc in by_id.items():
            if doc.kind != "ADT" and control_id not in phase.done_at:
                when = await document_done(doc, chain, since)
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
        phase.problems.extend(chain.mails.check())
        phase.problems.extend(chain.dmp.check())
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


async def document_done(doc: Document, chain: Chain, since: datetime) -> float | None:
    """When the document was done (wall clock), or None while it is not."""
    times = []
    if doc.dmp:
        dmp_answer = chain.his.done_at(doc.control_id, [DMP])
        if dmp_answer is None or (doc.unique_id and not chain.dmp.has(doc.unique_id)):
            return None
        times.append(dmp_answer)
    if doc.zams:
        mailed = chain.his.done_at(doc.control_id, doc.recipients)
        if mailed is None:
            return None
        times.append(mailed)
    else:
        # No ZAM^Z02 (render mode): every recipient's outcome is final when the journal settles the message.
        records = await chain.journal.search(control_id=doc.control_id, since=since, limit=1)
        if not records or records[0].state != MessageState.DELIVERED:
            return None
        times.append(records[0].updated_at.timestamp())
    return max(times)


async def run_phase(documents: list[Document], chain: Chain, stall: float, rate: float | None = None) -> Phase:
    phase = Phase(documents)
    chain.mails.expect([d for d in documents if d.recipients])
    chain.dmp.expect(documents)
    since = datetime.now(timezone.utc).replace(microsecond=0)
    sender = asyncio.create_task(feed(chain.mllp_port, phase, rate))
    try:
        await settle(phase, chain, since, stall)
    finally:
        await sender
    if phase.non_aa:
        phase.problems.append(f"{len(phase.non_aa)} non-AA acknowledgement(s), first: {phase.non_aa[0]}")
    if not phase.problems:
        # Every mail in, and nothing more; every deposit stored once; every ZAM says Y.
        phase.problems.extend(chain.mails.check(final=True))
        phase.problems.extend(chain.dmp.check(final=True))
        phase.problems.extend(chain.his.refusals([d for d in documents if d.kind != "ADT"]))
        problem = await journal_final(chain.journal, {d.control_id for d in documents}, since)
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


async def run_config(args, workers: int, run_index: int, pdf_kb: int) -> Result:
    async with running_chain(args, workers) as chain:
        label = f"{args.mix}, {chain.label}"
        tag = f"{uuid.uuid4().hex[:6]}"
        warm = mix(args.mix, args.warmup, f"W{tag}", pdf_kb=pdf_kb)
        print(f"  [{label}, run {run_index}] warm-up: {len(warm)} messages (start-up, schematron compile)",
              flush=True)
        phase = await run_phase(warm, chain, args.stall)
        if phase.problems:
            return failed_result(label, phase)
        # Let the workers go quiet (ZAMs of the warm-up are in) before counting CPU.
        await asyncio.sleep(0.5)
        documents = mix(args.mix, args.messages, f"M{tag}", pdf_kb=pdf_kb)
        pids = {name: proc.pid for name, proc in chain.engine.items()}
        rabbit = find_rabbitmq_pid() if args.bus == "amqp" else None
        if rabbit:
            pids["rabbitmq (shared)"] = rabbit
        pids["bench (load + fake HIS)"] = os.getpid()
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        print(f"  [{label}, run {run_index}] measuring: {len(documents)} messages", flush=True)
        phase = await run_phase(documents, chain, args.stall, args.rate)
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


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=400, help="messages measured per run (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (RabbitMQ only)")
    parser.add_argument("--runs", type=int, default=2, help="runs per configuration (the machine is shared)")
    parser.add_argument("--mix", choices=MIXES, default="pfi",
                        help="pfi: the HIS sends the CDA; render: Liaison writes it from plain HL7 v2")
    add_chain_options(parser)
    parser.add_argument("--rate", type=float, help="offered messages/s (default: as fast as the ACKs come back, "
                        "which saturates the workers: latencies then measure the queue)")
    parser.add_argument("--pdf-kb", type=int, default=200, help="size of the PDF the MDM carries")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    workers = [int(w) for w in args.workers.split(",")] if args.bus == "amqp" else [1]

    offered = f"offered at {args.rate:g} msg/s" if args.rate else "offered as fast as the ACKs come back"
    print(f"{args.mix} mix, {args.messages} messages a run over {CONNECTIONS} connections ({offered}); 2 PS "
          f"recipients and the DMP a document")
    print(f"mail relay: the local TLS sink (bench/smtp_sink.py, STARTTLS + client certificate), not Postfix; "
          f"SMTP pool {args.smtp_pool}, relay delay {args.smtp_delay:g} s per mail; XSD on, schematrons {args.schematrons}")
    print("DMP: the XDS.b double over mutual TLS, VIHF signatures verified (bench/dmp_double.py), in its own "
          "process (\"dmp\" below) so that it does not share the bench process's core time")
    if args.bus == "embedded":
        print("embedded bus: one `liaison run` (listener and workers in one process: the embedded bus "
              "cannot be shared between processes); --workers ignored")
    speed = min(timeit.repeat("sum(range(10**6))", number=1, repeat=5)) * 1000
    print(f"machine: {os.cpu_count()} CPU(s), sum(range(10**6)) {speed:.0f} ms; shared with other work: "
          f"figures are noisy, compare runs of the same moment\n")
    ceilings = await measure_ceilings(args)
    results: list[Result] = []
    for w, run_index in itertools.product(workers, range(1, args.runs + 1)):
        results.append(await run_config(args, w, run_index, args.pdf_kb))
        report(results[-1])
    summary(results, args.rate, ceilings)
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


async def measure_ceilings(args) -> dict[str, float]:
    """The bare stages on this machine now (bench/ceilings.py): a document needs at least one of each."""
    print("stage ceilings, same run (no Liaison work in them):", flush=True)
    found = {"MLLP echo, 8 connections waiting for each ACK, 3 KB (msg/s)":
             (await measure_echo(argparse.Namespace(messages=4000, connections=CONNECTIONS)))["rate"]}
    if args.bus == "amqp":
        found["RabbitMQ confirms in batches of 100, quorum queue, 21 KB (msg/s)"] = await amqp_batched_confirms(
            args.amqp_url, os.urandom(10_500).hex().encode(), 4000)
    found["TLS mail sink, 16 connections, 40 KB mails (mails/s)"] = await smtp_sink(1600, 40_000)
    for name, value in found.items():
        print(f"  {name}: {value:,.0f}")
    print(flush=True)
    return found


def summary(results: list[Result], rate: float | None, ceilings: dict[str, float]) -> None:
    print(f"\n{'configuration':<42}{'docs/s':>8}{'ingest/s':>10}{'p50 ms':>8}{'p99 ms':>8}  CPU ms/doc")
    for r in results:
        if r.problems:
            print(f"{r.label:<42}{'FAILED':>8}")
            continue
        engine_cpu = sum(ms for name, ms in r.cpu_ms.items() if name.startswith(("listener", "worker", "engine")))
        print(f"{r.label:<42}{r.rate:>8.1f}{r.ingest_rate:>10.0f}{r.p50:>8.0f}{r.p99:>8.0f}  "
              f"engine {engine_cpu:.1f} (" + ", ".join(f"{n} {ms:.1f}" for n, ms in r.cpu_ms.items()) + ")")
    ok = [r for r in results if not r.problems and "RabbitMQ" in r.label]
    by_workers: dict[str, list[float]] = {}
    for r in ok:
        by_workers.setdefault(r.label, []).append(r.rate)
    if len(by_workers) > 1 and rate:
        print(f"(no scaling figure: docs/s is capped by --rate {rate:g})")
    elif len(by_workers) > 1:
        base = statistics.median(next(iter(by_workers.values())))
        print("scaling (median docs/s): " + ", ".join(
            f"{label.split(', ')[-1]} {statistics.median(rates):.1f} (×{statistics.median(rates) / base:.2f})"
            for label, rates in by_workers.items()))
    best = max((r.rate for r in results if not r.problems), default=0)
    if best:
        print(f"best docs/s {best:.1f} against each ceiling: " + ", ".join(
            f"{name.split(',')[0]} {best / value:.3f}" for name, value in ceilings.items()))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
