"""One way to time a piece of work for every benchmark: items/s over a minimum duration, after a warm-up."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


def rate(work: Callable, inputs: Sequence, seconds: float) -> tuple[float, int]:
    """Items/s over at least ``seconds`` (after one warm-up pass over ``inputs``), and how many were done."""
    for item in inputs:
        work(item)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or count < len(inputs):
        work(inputs[count % len(inputs)])
        count += 1
    return count / (time.perf_counter() - started), count
