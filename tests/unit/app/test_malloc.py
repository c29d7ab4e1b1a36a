"""The engine fixes glibc's mmap threshold, so a large block freed goes back to the OS at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# Allocate and free a 30 MB block (the dynamic threshold rises to it), then hold a 20 MB one while reading
# VmRSS, free it, and say how much of it stayed resident.
_PROBE = """
import sys
from channels.app.malloc import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
first = bytearray(30 << 20); del first
before = rss()
second = bytearray(20 << 20); second[::4096] = b"x" * len(second[::4096])
held = rss()
fragments = [bytes(200) for _ in range(1000)]     # small blocks above it, as a running engine makes
del second
print(held - before, rss() - before)
"""


def residue_kb(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True).stdout.splitlines()[-1].split()
    held, after = int(out[0]), int(out[1])
    assert held > 15_000            # the 20 MB block was resident while held
    return after


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_large_block_freed_is_given_back_with_the_threshold_fixed():
    assert residue_kb("fixed") < 5_000
    assert residue_kb("dynamic") > 15_000          # what the fix is for: glibc's default keeps it
