"""The journal's recent traffic for the console's dashboard and ``/metrics``, in statements both dialects run.

Each query reads an index only, so its cost follows the last day's traffic, not the journal's size:

- messages of the last day by channel, type and state: one range scan of ``messages_recent``
  (received_at, channel, message_type, state), the hour's count summed on the way;
- received (and delivered) per hour: 24 range counts on the same index (one conditional sum per
  row each; 48 conditional sums over the whole day cost ten times more on a busy day);
- outcomes by status in the last hour and day, and standing now (SENDING, RETRYING):
  ``outcomes_by_status`` (status, at);
- the oldest message not in a final state: the first entry of ``messages_by_state`` for each
  waiting state;
- for ``/metrics``, the events appended since the last scrape: a range of the events' primary
  key, each joined to its message (primary key) and, for an outcome, to its "queued" event
  (``events_by_message``); parked messages (``messages_by_state``); overdue letters among the
  stays discharged in the last 30 days (``stays_by_discharge``).

States and statuses are written into the SQL as constants, and every time range has both ends:
PostgreSQL plans a statement again with generic parameters once psycopg prepares it (after five
runs), and a generic plan cannot tell that ``state = $1`` is rare, nor how wide ``>= $1`` is, so it
walked a whole index (200 ms on 300,000 messages) where the constant's plan reads one entry.

On PostgreSQL, event ids come from a sequence taken before commit: an event committed just
after a scrape with a lower id than one already counted is missed by ``/metrics`` (a count
off by the few events of concurrent transactions; the journal itself loses nothing).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from channels.journal.sql import Operation, moment, ts
from router.ports import (Activity, ActivityCount, EventSample, MessageState, MetricsSample, OutcomeStatus,
                          StayState)

HOURS = 24
WAITING = (MessageState.RECEIVED, MessageState.QUEUED, MessageState.PROCESSING, MessageState.DISPATCHED)
STANDING = (OutcomeStatus.SENDING, OutcomeStatus.RETRYING)


def activity(now: datetime) -> Operation[Activity]:
    hour_ago, day_ago = ts(now - timedelta(hours=1)), ts(now - timedelta(days=1))
    found = yield ("SELECT channel, message_type, state, count(*), "
                   "sum(CASE WHEN received_at >= ? THEN 1 ELSE 0 END) FROM messages "
                   "WHERE received_at >= ? AND received_at <= ? GROUP BY channel, message_type, state "
                   "ORDER BY channel, message_type, state", (hour_ago, day_ago, ts(now)))
    messages = tuple(ActivityCount(channel, kind, state, int(hour or 0), int(day))
                     for channel, kind, state, day, hour in found.rows)

    top = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hourly = []
    for start in (top - timedelta(hours=HOURS - i) for i in range(HOURS)):
        row = (yield (f"SELECT count(*), count(*) FILTER (WHERE state = '{MessageState.DELIVERED}') "
                      "FROM messages WHERE received_at >= ? AND received_at < ?",
                      (ts(start), ts(start + timedelta(hours=1))))).rows[0]
        hourly.append((start, int(row[0]), int(row[1])))

    statuses = [str(status) for status in OutcomeStatus]
    listed = ", ".join(f"'{status}'" for status in statuses)
    found = yield (f"SELECT status, count(*), sum(CASE WHEN at >= ? THEN 1 ELSE 0 END) FROM outcomes "
                   f"WHERE status IN ({listed}) AND at >= ? AND at <= ? GROUP BY status",
                   (hour_ago, day_ago, ts(now)))
    recent = {status: (int(hour or 0), int(day)) for status, day, hour in found.rows}
    standing = {}
    for status in STANDING:
        standing[str(status)] = (yield f"SELECT count(*) FROM outcomes WHERE status = '{status}'", ()).rows[0][0]
    outcomes = tuple((status, *recent.get(status, (0, 0)), int(standing.get(status, 0))) for status in statuses)

    oldest = None
    for state in WAITING:
        rows = (yield f"SELECT key, received_at FROM messages WHERE state = '{state}' ORDER BY received_at LIMIT 1",
                ()).rows
        if rows and (oldest is None or moment(rows[0][1]) < oldest[1]):
            oldest = (rows[0][0], moment(rows[0][1]), str(state))
    found = yield ("SELECT channel, peer, count(*), max(received_at) FROM messages "
                   "WHERE received_at >= ? AND received_at <= ? AND peer <> '' GROUP BY channel, peer",
                   (hour_ago, ts(now)))
    return Activity(at=now, messages=messages, outcomes=outcomes, hourly=tuple(hourly), oldest_waiting=oldest,
                    peers=peers_by_host(found.rows))


def peers_by_host(rows) -> tuple[tuple[str, str, int, datetime], ...]:
    """Per channel and peer host (a sender's connections differ by their port only), busiest first."""
    hosts: dict[tuple[str, str], list] = {}
    for channel, peer, count, last in rows:
        host, colon, port = peer.rpartition(":")
        host = host if colon and port.isdigit() else peer
        seen = hosts.setdefault((channel, host), [0, moment(last)])
        seen[0] += int(count)
        seen[1] = max(seen[1], moment(last))
    return tuple(sorted(((channel, host, count, last) for (channel, host), (count, last) in hosts.items()),
                        key=lambda peer: (-peer[2], peer[0], peer[1])))


def metrics_sample(after_event: int | None, now: datetime, limit: int) -> Operation[MetricsSample]:
    if after_event is None:
        last = (yield "SELECT coalesce(max(id), 0) FROM events", ()).rows[0][0]
        samples: tuple[EventSample, ...] = ()
    else:
        found = yield ("SELECT e.id, e.step, e.state, coalesce(m.channel, ''), e.at, m.received_at, "
                       "CASE WHEN e.step = 'outcome' THEN (SELECT min(q.at) FROM events q "
                       "WHERE q.message_key = e.message_key AND q.step = 'queued') END "
                       "FROM events e LEFT JOIN messages m ON m.key = e.message_key "
                       "WHERE e.id > ? ORDER BY e.id LIMIT ?", (after_event, limit))
        last = found.rows[-1][0] if found.rows else after_event
        samples = tuple(EventSample(step, state, channel, moment(at), optional(received), optional(queued))
                        for _, step, state, channel, at, received, queued in found.rows)
    parked = (yield f"SELECT count(*) FROM messages WHERE state = '{MessageState.PARKED}'", ()).rows[0][0]
    overdue = (yield (f"SELECT count(*) FROM stays WHERE discharged_at >= ? AND discharged_at <= ? "
                      f"AND state = '{StayState.DISCHARGED}' AND letter_sent_at IS NULL AND letter_due_at <= ?",
                      (ts(now - timedelta(days=30)), ts(now), ts(now)))).rows[0][0]
    return MetricsSample(int(last), samples, int(parked), int(overdue))


def optional(stored) -> datetime | None:
    return None if stored is None else moment(stored)
