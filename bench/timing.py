"""What every CDA benchmark shares: its command line, the ANS reference files, and one way to time work."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from router.cda_schema import locate_schema_dir
from router.schematron import locate_schematron_dir


def rate(work: Callable, inputs: Sequence, seconds: float) -> tuple[float, int]:
    """Items/s over at least ``seconds`` (after one warm-up pass over ``inputs``), and how many were done."""
    for item in inputs:
        work(item)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or count < len(inputs):
        work(inputs[count % len(inputs)])
        count += 1
    return count / (time.perf_counter() - started), count


def cda_bench_setup(description: str) -> tuple[argparse.Namespace, Path, Path]:
    """Parse ``--seconds``, quiet the logs, and find the CI-SIS schematrons and the CDA schema (or exit 2)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent per measurement")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sch_dir, xsd_dir = locate_schematron_dir(), locate_schema_dir()
    if sch_dir is None or xsd_dir is None:
        print("ANS fixtures not found: set LIAISON_FIXTURES or put them in ../shared/fixtures", file=sys.stderr)
        sys.exit(2)
    return args, sch_dir, xsd_dir
