"""Segment terminators: make every message ``\\r``-separated before any parser sees it.

python-hl7 splits only on ``\\r`` and hl7apy misreads ``\\n``/``\\r\\n`` (spec/hl7-libraries.md
P4, P7, A8), while files and some senders use LF or CRLF. A ``\\n`` is a segment
terminator when a segment id follows it, possibly after blank lines
(``[A-Z][A-Z0-9]{2}`` then the field separator), or when it ends the message; any other ``\\n`` is data inside a field
(free text in OBX-5, NTE-3) and is kept. The raw bytes are stored unchanged
elsewhere: this only feeds the parsers.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WS = " \t\r\n\x00\ufeff"


@lru_cache(maxsize=8)
def _terminator_re(field_sep: str) -> re.Pattern[str]:
    sep = re.escape(field_sep)
    return re.compile(rf"\r\n|\n(?=[\r\n]*[A-Z][A-Z0-9]{{2}}{sep})|\n(?=[\s\x00]*\Z)")


def normalise_segments(text: str) -> str:
    """Return ``text`` with ``\\r`` segment terminators, no blank segments, ending in one ``\\r``.

    Leading whitespace before the first segment and blank segments (``\\r\\r``,
    which hl7apy rejects) are dropped.
    """
    text = text.lstrip(_WS)
    field_sep = text[3] if text.startswith(("MSH", "BHS", "FHS")) and len(text) > 3 else "|"
    if "\n" in text:
        text = _terminator_re(field_sep).sub("\r", text)
    if "\r\r" in text or not text.endswith("\r") or text[-2:-1] in _WS:
        segments = [s for s in text.split("\r") if s.strip(_WS)]
        return "\r".join(segments) + "\r" if segments else ""
    return text
