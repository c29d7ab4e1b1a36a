"""Peak memory of the chain for one MDM carrying a large PDF (default 20 MB), per process.

Starts the chain as ``bench/e2e.py`` does (listener + worker on RabbitMQ, or one engine on the embedded
bus; the TLS sink; the DMP double; the fake HIS), warms it with a few PFI messages, reads each process's
resident memory (``VmRSS``) once idle, sends one PFI MDM^T02 whose LDL-SES carries a PDF of ``--pdf-mb`` MB,
waits until its ZAMs are back (the document went through: mail accepted by the sink, stored by the DMP
double), then reads each process's peak resident memory (``VmHWM``, the high-water mark since it started).
It prints, per process, idle RSS, peak RSS, the peak over idle and that as a multiple of the HL7 message's
size. The goal is a peak over idle under 5x the message size. The PDF is drawn with fpdf2 uncompressed
(figures), as the e2e mix's is.

    PYTHONPATH=. .venv/bin/python bench/memory.py [--pdf-mb 20] [--bus amqp|embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.e2e import run_phase  # noqa: E402
from bench.e2e_chain import add_chain_options, running_chain  # noqa: E402
from bench.e2e_load import pfi_mix  # noqa: E402


def status_kb(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB (VmRSS, VmHWM), 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_chain_options(parser)
    parser.add_argument("--pdf-mb", type=float, default=20.0, help="size of the MDM's PDF in MB")
    args = parser.parse_args()
    args.stall = max(args.stall, 300)
    args.max_frame_bytes = 128 * 2**20           # the listener's default limit is 16 MiB
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    started = time.monotonic()
    tag = uuid.uuid4().hex[:6]
    big = next(d for d in pfi_mix(20, f"B{tag}", pdf_kb=int(args.pdf_mb * 1024)) if d.kind == "MDM")
    size = len(big.raw)
    print(f"one PFI MDM^T02: PDF {args.pdf_mb:g} MB, HL7 message {size / 2**20:.1f} MiB "
          f"(built in {time.monotonic() - started:.0f} s); schematrons {args.schematrons}, bus {args.bus}")
    async with running_chain(args, 1) as chain:
        warm = pfi_mix(20, f"W{tag}")
        phase = await run_phase(warm, chain, args.stall)
        if phase.problems:
            print("FAILED (warm-up): " + "; ".join(phase.problems[:5]))
            return 1
        await asyncio.sleep(2)
        pids = {name: proc.pid for name, proc in chain.engine.items()}
        idle = {name: status_kb(pid, "VmRSS") for name, pid in pids.items()}
        before = {name: status_kb(pid, "VmHWM") for name, pid in pids.items()}
        sent = time.monotonic()
        phase = await run_phase([big], chain, args.stall)
        took = time.monotonic() - sent
        if phase.problems:
            print("FAILED: " + "; ".join(phase.problems[:5]))
            return 1
        peak = {name: status_kb(pid, "VmHWM") for name, pid in pids.items()}
    print(f"went through in {took:.1f} s (MLLP in → its ZAMs back, DMP entry stored)\n")
    print(f"{'process':<12}{'idle MiB':>10}{'peak MiB':>10}{'peak-idle':>11}{'× message':>11}")
    for name in pids:
        grown = (peak[name] - idle[name]) * 1024
        note = "" if peak[name] > before[name] else "  (peak set before: warm-up or start-up)"
        print(f"{name:<12}{idle[name] / 1024:>10.0f}{peak[name] / 1024:>10.0f}{grown / 2**20:>11.0f}"
              f"{grown / size:>11.1f}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
