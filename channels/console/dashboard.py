"""What the dashboard, the compliance page and ``/metrics`` read: journal activity, queue depths, reference files.

Everything is a count the journal or the bus answers from an index (``Journal.activity``,
``Bus.depth``, ``Journal.discharges``), so a page costs the same on a journal of a million
messages as on an empty one; nothing here reads a message's content.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from channels.console.installation import Installation
from router import queues
from router.errors import EngineError
from router.ports import Activity, Bus, Journal, MessageState, QueueDepth, Stay

#: The dashboard's columns: message states, in the order a message goes through them.
COLUMNS = ("received", "in progress", "delivered", "partial", "failed", "parked", "rejected")
IN_PROGRESS = {MessageState.RECEIVED, MessageState.QUEUED, MessageState.PROCESSING, MessageState.DISPATCHED}


def column(state: str) -> str:
    """The dashboard column of a message state (every message also counts as received)."""
    return "in progress" if state in IN_PROGRESS else state


@dataclass(frozen=True)
class Dashboard:
    at: datetime
    activity: Activity
    rows: list[dict[str, Any]]             # per channel and type: {"channel", "type", "hour": {col: n}, "day": {...}}
    depths: list[QueueDepth | str]         # one per stage queue, or why the bus did not answer
    refreshes: list | None                 # None: no installation known to this console


async def dashboard(journal: Journal, bus: Bus, installation: Installation | None,
                    now: datetime | None = None) -> Dashboard:
    now = now or datetime.now(UTC)
    activity, depths = await asyncio.gather(journal.activity(now), queue_depths(bus))
    table: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(
        lambda: {"hour": dict.fromkeys(COLUMNS, 0), "day": dict.fromkeys(COLUMNS, 0)})
    for count in activity.messages:
        cells = table[count.channel, count.message_type]
        for window, n in (("hour", count.last_hour), ("day", count.last_day)):
            cells[window]["received"] += n
            cells[window][column(count.state)] += n
    rows = [{"channel": channel, "type": kind, **cells} for (channel, kind), cells in sorted(table.items())]
    refreshes = await asyncio.to_thread(installation.refreshes) if installation is not None else None
    return Dashboard(now, activity, rows, depths, refreshes)


async def queue_depths(bus: Bus) -> list[QueueDepth | str]:
    found: list[QueueDepth | str] = []
    for queue in queues.ALL:
        try:
            found.append(await bus.depth(queue))
        except (EngineError, OSError) as exc:
            found.append(f"{queue}: bus unavailable ({type(exc).__name__})")
    return found


def dashboard_json(board: Dashboard) -> dict[str, Any]:
    activity = board.activity
    oldest = activity.oldest_waiting
    return {
        "at": board.at.isoformat(),
        "messages": board.rows,
        "recipients": [{"status": status, "last_hour": hour, "last_day": day, "now": standing}
                       for status, hour, day, standing in activity.outcomes],
        "hourly": [{"hour": start.isoformat(), "received": received, "delivered": delivered}
                   for start, received, delivered in activity.hourly],
        "oldest_waiting": None if oldest is None else {
            "key": oldest[0], "received_at": oldest[1].isoformat(), "state": oldest[2],
            "waiting_seconds": round((board.at - oldest[1]).total_seconds(), 1)},
        "peers": [{"channel": channel, "host": host, "messages": count, "last_at": last.isoformat()}
                  for channel, host, count, last in activity.peers],
        "queues": [depth_json(d) for d in board.depths],
        "reference_files": None if board.refreshes is None else [
            {"name": r.name, "at": r.at.isoformat() if r.at else None, "sha256": r.sha256, "source": r.source,
             "detail": r.detail} for r in board.refreshes],
    }


def depth_json(depth: QueueDepth | str) -> dict[str, Any]:
    if isinstance(depth, str):
        return {"error": depth}
    return {"queue": depth.queue, "waiting": depth.waiting, "parked": depth.parked, "retrying": depth.retrying,
            "oldest_at": depth.oldest_at.isoformat() if depth.oldest_at else None}


def bars(hourly, height: int = 80) -> list[dict[str, Any]]:
    """The hourly counts as bar geometry for the page's inline SVG (no script, nothing the CSP refuses)."""
    top = max((received for _, received, _ in hourly), default=0) or 1
    return [{"x": i * 22, "received": received, "delivered": delivered, "label": start.strftime("%H"),
             "h": round(received * height / top), "hd": round(delivered * height / top), "title": start.isoformat()}
            for i, (start, received, delivered) in enumerate(hourly)]


# ---------------------------------------------------------------- compliance

@dataclass(frozen=True)
class UnitCompliance:
    unit: str
    discharged: int
    sent: int
    overdue: int
    pending: int                 # not sent, deadline not passed yet


async def compliance(journal: Journal, day: date, zone: ZoneInfo,
                     now: datetime | None = None) -> tuple[list[UnitCompliance], list[Stay]]:
    """The watchdog's view of one local day: per unit, discharges, letters sent, overdue, pending."""
    now = now or datetime.now(UTC)
    since = datetime.combine(day, time(0), zone)
    stays = await journal.discharges(since, since + timedelta(days=1))
    units: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for stay in stays:
        counts = units[stay.unit or "(no unit)"]
        counts[0] += 1
        status = letter_status(stay, now)
        counts[{"sent": 1, "overdue": 2, "pending": 3}[status]] += 1
    return [UnitCompliance(unit, *counts) for unit, counts in sorted(units.items())], stays


def letter_status(stay: Stay, now: datetime) -> str:
    if stay.letter_sent_at is not None:
        return "sent"
    if stay.letter_due_at is not None and stay.letter_due_at <= now:
        return "overdue"
    return "pending"
