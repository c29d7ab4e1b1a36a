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


class Span:
    """A run read in place in the text it was found in: slices of it are copies, the run itself is not.

    The door reads an embedded CDA's first kilobytes for its id; copying the 35 MiB run first held the
    frame, its text and the run at once (3x the message).
    """

    __slots__ = ("text", "start", "stop")

    def __init__(self, text: str, start: int, stop: int):
        self.text, self.start, self.stop = text, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, part: slice) -> str:
        start, stop, step = part.indices(len(self))
        if step != 1:
            raise ValueError("a run is read in plain slices")
        return self.text[self.start + start:self.start + stop]

    def __str__(self) -> str:
        return self.text[self.start:self.stop]


Runs = dict[str, "str | Span"]


def set_runs_aside(text: str, *, in_place: bool = False) -> tuple[str, Runs]:
    """``text`` with each long base64 run replaced by a marker, and the runs by marker (empty when none).

    ``in_place``: each run is a :class:`Span` of ``text`` (which the runs then keep alive) instead of a copy.
    """
    runs: Runs = {}
    if len(text) > LONG_RUN_MIN:
        text = _LONG_RUN.sub(lambda found: _aside(found, runs, in_place), text)
    return text, runs


def _aside(found: re.Match[str], runs: Runs, in_place: bool) -> str:
    marker = f"LIAISON{_TAG}RUN{len(runs)}"
    runs[marker] = Span(found.string, *found.span()) if in_place else found.group()
    return marker
