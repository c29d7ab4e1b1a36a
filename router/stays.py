"""Stay times: HL7 timestamps read in hospital local time, and the lettre de liaison deadline.

HL7 v2 TS values without an offset (``20240315141500``) are the sender's
local time; French hospitals mean Europe/Paris, so naive values are read in
the configured zone (``engine.timezone``) and kept timezone-aware. The
deadline policy (``engine.letter_deadline``) is either ``"end_of_day"`` — the
letter is due by 23:59:59 local time on the discharge day, the HAS rule that
the lettre de liaison is handed over on the day of discharge — or a number of
hours after the discharge time.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

END_OF_DAY = "end_of_day"

_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")


def hl7_time(value: str, zone: ZoneInfo) -> datetime | None:
    """An HL7 TS (to whatever precision, optional ``+HHMM``) as an aware datetime; None if empty or malformed."""
    match = _TS.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        moment = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                          int(second or 0))
        if offset:
            return datetime.strptime(moment.strftime("%Y%m%d%H%M%S") + offset, "%Y%m%d%H%M%S%z")
    except ValueError:
        return None
    return moment.replace(tzinfo=zone)


def letter_due(discharged_at: datetime, policy: str | float, zone: ZoneInfo) -> datetime:
    """When the lettre de liaison of a stay discharged at ``discharged_at`` is due."""
    if policy == END_OF_DAY:
        local = discharged_at.astimezone(zone)
        return local.replace(hour=23, minute=59, second=59, microsecond=0)
    return discharged_at + timedelta(hours=float(policy))
