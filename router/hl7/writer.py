"""Small helpers to write the HL7 v2 messages we originate (ACK, ZAM): timestamps, ids, segments.

Shared by :mod:`router.hl7.ack` and :mod:`router.hl7.zam` so both answer with
the same clock format (local time *with* its offset, which French receivers
expect — python-hl7's ``create_ack`` writes naive UTC) and the same kind of id.
"""

from __future__ import annotations

import secrets
from datetime import datetime


def hl7_timestamp(now: datetime | None = None) -> str:
    """``YYYYMMDDHHMMSS+ZZZZ``: local time by default; an aware ``now`` keeps its offset, a naive one is local."""
    if now is None or now.tzinfo is None:
        now = (now or datetime.now()).astimezone()
    return now.strftime("%Y%m%d%H%M%S%z")


def new_control_id() -> str:
    """A fresh MSH-10: 20 hex chars (80 random bits), within the 20-char limit of HL7 2.5 ST."""
    return secrets.token_hex(10)


def segment(*fields: str, sep: str = "|") -> str:
    """Join fields, dropping trailing empty ones (``segment("MSA", "AA", "1", "")`` → ``MSA|AA|1``)."""
    values = list(fields)
    while len(values) > 1 and values[-1] == "":
        values.pop()
    return sep.join(values)


def message(*segments: str) -> str:
    """Segments terminated by ``\\r`` each, as on the wire."""
    return "".join(s + "\r" for s in segments)
