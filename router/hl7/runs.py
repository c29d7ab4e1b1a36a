"""Long base64 runs set aside before a message is split: an embedded document stays one str.

A run of base64 this long (an embedded CDA or PDF in OBX-5) is kept out of the splitting: python-hl7's
parse and the door's lazy segments cut the text into segments, fields, repetitions and components, each
a copy, and held ~5x a 35 MiB message while they ran. Base64 holds no HL7 separator, so the run is one
leaf wherever it lies: the text is split with a short marker in its place, and a reader that needs the
run (the tree's leaf, the door's look at the CDA id) takes it from ``runs`` by that marker. Markers are
random per process, so no message can forge one.
"""

from __future__ import annotations

import re
import secrets

LONG_RUN_MIN = 65536
#: The look-behind tries a run only from its first character: without it a run just short of the length
#: was scanned again from each of its characters (quadratic: 2.8 s for a 60,000-character run in a 220 KB
#: message).
_LONG_RUN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/=]{%d,}" % LONG_RUN_MIN)
_TAG = secrets.token_hex(8)
MARKER = re.compile(f"LIAISON{_TAG}RUN[0-9]+")


def set_runs_aside(text: str) -> tuple[str, dict[str, str]]:
    """``text`` with each long base64 run replaced by a marker, and the runs by marker (empty when none)."""
    runs: dict[str, str] = {}
    if len(text) > LONG_RUN_MIN:
        text = _LONG_RUN.sub(lambda found: _aside(found, runs), text)
    return text, runs


def _aside(found: re.Match[str], runs: dict[str, str]) -> str:
    marker = f"LIAISON{_TAG}RUN{len(runs)}"
    runs[marker] = found.group()
    return marker
