"""Long base64 runs set aside before a message is split (router/hl7/runs.py)."""

from __future__ import annotations

import base64
import tracemalloc

from router.hl7.runs import LONG_RUN_MIN, set_runs_aside


def message(run: str) -> str:
    return f"MSH|^~\\&|A|B|C|D|20261206||ORU^R01|M1|P|2.5\rOBX|1|ED|X^Y^LN||^TEXT^XML^Base64^{run}||||||F\r"


def test_a_long_run_is_a_marker_and_a_shorter_one_stays():
    long_run = base64.b64encode(bytes(range(256)) * 400).decode("ascii")          # 136,536 characters
    short_run = "A" * (LONG_RUN_MIN - 1)
    text = message(long_run) + message(short_run)
    short, runs = set_runs_aside(text)
    assert list(runs.values()) == [long_run]
    (marker,) = runs
    assert short == message(marker) + message(short_run)


def test_in_place_the_run_is_read_from_the_text_without_a_copy():
    """The door's way: the run is a span of the text, read in slices (the CDA id is in its first kilobytes)."""
    run = base64.b64encode(bytes(range(256)) * 16384).decode("ascii")           # 5.6 MB
    text = message(run)
    tracemalloc.start()
    try:
        short, runs = set_runs_aside(text, in_place=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.05 * len(text)                      # a copy of the run was ~1x
    (marker, span), = runs.items()
    assert short == message(marker) and len(span) == len(run)
    assert span[:1024] == run[:1024] and span[-5:] == run[-5:] and str(span) == run
