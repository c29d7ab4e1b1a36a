"""What the console's dashboard and ``/metrics`` read from the bus and the journal: counts, never content.

Kept apart from ``ports.py`` (which names them in the Bus and Journal protocols and re-exports
them) because they describe readings of the ports, not the ports themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class QueueDepth:
    """What waits in one stage queue, for the console's dashboard and ``/metrics``.

    ``None`` where the bus cannot tell cheaply: RabbitMQ keeps delayed retries in queues of
    their own per delay and gives no message's age without taking it.
    """

    queue: str
    waiting: int                   # ready to be taken, or being handled now (embedded) / ready (RabbitMQ)
    parked: int
    retrying: int | None = None    # waiting for a retry delay to pass
    oldest_at: datetime | None = None   # when the oldest waiting job was put there


@dataclass(frozen=True)
class ActivityCount:
    """Messages received on one channel, of one type, now in one state: in the last hour and day."""

    channel: str
    message_type: str
    state: str
    last_hour: int
    last_day: int


@dataclass(frozen=True)
class Activity:
    """What the journal says about the recent traffic, for the console's dashboard and ``/metrics``.

    Every figure comes from an index (``messages_recent``, ``messages_by_state``,
    ``outcomes_by_status``), so it costs the same on a journal of any size for a given day's traffic.
    """

    at: datetime                                   # "now" for the windows below
    messages: tuple[ActivityCount, ...]            # received in the last day, by channel, type and current state
    outcomes: tuple[tuple[str, int, int, int], ...]   # (status, last hour, last day, standing now) per recipient
    hourly: tuple[tuple[datetime, int, int], ...]  # (hour start, received, of which delivered), oldest first
    oldest_waiting: tuple[str, datetime, str] | None   # (key, received_at, state) of the oldest non-final message
    #: (channel, peer host, messages, last received) of every peer that sent in the last hour, busiest first:
    #: what the journal can tell of the MLLP peers from any server (a listener's sockets are its own)
    peers: tuple[tuple[str, str, int, datetime], ...] = ()


@dataclass(frozen=True)
class EventSample:
    """One timeline event as ``/metrics`` counts it (no detail, no identifier)."""

    step: str
    state: str
    channel: str                   # of the message it belongs to ("" when unknown)
    at: datetime
    received_at: datetime | None   # the message's
    queued_at: datetime | None     # its "queued" event (AA sent), for an outcome event; else None


@dataclass(frozen=True)
class MetricsSample:
    """What ``/metrics`` reads from the journal at each scrape: the events appended since the last one."""

    last_event: int                # the cursor for the next scrape
    events: tuple[EventSample, ...]
    parked: int                    # messages in state parked now
    overdue_letters: int           # discharged in the last 30 days, letter not sent, deadline passed
