"""Soak: the PFI mix at a steady rate for N minutes; RSS and open file descriptors of each process every minute.

Starts the chain as ``bench/e2e.py`` does (listener + workers on RabbitMQ, or one engine on the embedded bus;
the TLS sink; the DMP double; the fake HIS) and, minute after minute, offers ``--rate`` messages/s of the PFI
mix (ADT, ORU with CR-BIO, MDM with LDL-SES and its PDF; each document to two mailboxes and the DMP) over the
8 connections, waits until that minute's documents are all done (every ZAM back, DMP entry stored, no loss,
no duplicate: e2e's checks), then samples each process's resident memory (``VmRSS``) and open file
descriptors (``/proc/<pid>/fd``). At the end it prints each series and its slope (least squares, per minute)
over the second half of the run, after start-up and warm caches. A leak shows as a slope that stays positive
however long the run; flat is the goal. The DMP double (``dmp``) keeps every document it stored, as a
registry does: its RSS grows with the run by design (about 10 % of the mix are 280 KB letters), not a leak.

    PYTHONPATH=. .venv/bin/python bench/soak.py --minutes 10 [--rate 20] [--workers 2] [--bus amqp|embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
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
from bench.memory import status_kb  # noqa: E402


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` against their index (per sample, i.e. per minute)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    return num / sum((i - mean_x) ** 2 for i in range(n))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_chain_options(parser)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rate", type=float, default=20.0, help="messages/s offered (below saturation)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (RabbitMQ only)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    per_minute = int(args.rate * 60)
    print(f"soak: PFI mix, {per_minute} messages a minute ({args.rate:g}/s offered) for {args.minutes} min, "
          f"bus {args.bus}, schematrons {args.schematrons}, SMTP pool {args.smtp_pool}")
    samples: dict[str, list[tuple[float, int]]] = {}
    tag = uuid.uuid4().hex[:6]
    async with running_chain(args, args.workers) as chain:
        pids = {name: proc.pid for name, proc in chain.engine.items()}
        print(f"{'min':>4} {'docs':>6} {'took s':>7}  " + "  ".join(f"{n + ' MiB/fds':>20}" for n in pids), flush=True)
        for minute in range(1, args.minutes + 1):
            started = time.monotonic()
            documents = pfi_mix(per_minute, f"S{tag}{minute:03d}", seed=minute)
            phase = await run_phase(documents, chain, args.stall, args.rate)
            took = time.monotonic() - started
            if phase.problems:
                print(f"*** FAILED in minute {minute}: " + "; ".join(phase.problems[:5]))
                return 1
            row = []
            for name, pid in pids.items():
                rss, fds = status_kb(pid, "VmRSS") / 1024, open_fds(pid)
                samples.setdefault(name, []).append((rss, fds))
                row.append(f"{rss:>12.1f}/{fds:<7d}")
            print(f"{minute:>4} {len(documents):>6} {took:>7.1f}  " + "  ".join(row), flush=True)
            await asyncio.sleep(max(0.0, 60 - took))
    half = max(2, args.minutes // 2)
    print(f"\nslope over the last {half} minutes (least squares, per minute):")
    for name, series in samples.items():
        tail = series[-half:]
        print(f"  {name:<10} RSS {slope([r for r, _ in tail]):+7.2f} MiB/min  fds {slope([f for _, f in tail]):+6.2f}/min"
              f"  (RSS {series[0][0]:.0f} → {series[-1][0]:.0f} MiB, fds {series[0][1]} → {series[-1][1]})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
