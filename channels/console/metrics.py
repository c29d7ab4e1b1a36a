"""``/metrics`` for Prometheus, computed from the journal and the bus at each scrape.

Why from the journal rather than counters bumped in the engine: the console may run in a process
of its own, or on another server than the listeners and workers, and the journal is what every
process shares. So at each scrape:

- counters (``liaison_events_total`` by channel, stage (the timeline step) and outcome (its
  state)) grow by the events appended since the previous scrape (``Journal.metrics_sample``,
  a range of the events' primary key); they start at 0 when the console starts, as a process's
  counters do, and Prometheus' ``rate()`` reads them the same way;
- histograms are observed from those events' journal times: MLLP→ACK is a message's "queued"
  event (written when the AA is sent) minus its ``received_at`` (stored when the frame was read);
  ACK→recipient-accepted is an "accepted" outcome's time minus that message's "queued" event.
  They are journal times, not measured on the wire: the AA leaves a few hundred microseconds
  before its "queued" event is written;
- gauges are read now: queue depths (``Bus.depth``), parked messages, outcomes standing in
  RETRYING, overdue letters, and days until each configured certificate expires.

No label holds an identifier: channel names, stage names, states and queue names only.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.console.dashboard import queue_depths
from router.errors import EngineError
from router.ports import OutcomeStatus, QueueDepth

log = structlog.get_logger(__name__)
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)


class JournalMetrics:
    """The console's registry, brought up to date by :meth:`scrape` (one scrape at a time)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("liaison_events", "Timeline events journaled since the console started",
                              ["channel", "stage", "outcome"], registry=r)
        self.ack_latency = Histogram("liaison_mllp_ack_seconds", "Frame read to AA sent (journal times)",
                                     ["channel"], buckets=ACK_BUCKETS, registry=r)
        self.accepted_latency = Histogram("liaison_ack_to_accepted_seconds",
                                          "AA sent to a recipient's relay accepting the mail (journal times)",
                                          ["channel"], buckets=DELIVERY_BUCKETS, registry=r)
        self.queue = Gauge("liaison_queue_jobs", "Jobs in a stage queue now", ["queue", "status"], registry=r)
        self.parked = Gauge("liaison_parked_messages", "Messages in state parked", registry=r)
        self.retrying = Gauge("liaison_retrying_recipients", "Recipients whose outcome is RETRYING", registry=r)
        self.overdue = Gauge("liaison_overdue_letters", "Discharges (30 days) whose letter is overdue", registry=r)
        self.cert_days = Gauge("liaison_certificate_days_left", "Days until a configured certificate expires",
                               ["certificate"], registry=r)
        self.up = Gauge("liaison_up", "Whether a part answered this scrape", ["part"], registry=r)
        self._cursor: int | None = None
        self._lock = asyncio.Lock()

    async def scrape(self, journal, bus, installation) -> bytes:
        async with self._lock:
            now = datetime.now(UTC)
            try:
                await self._from_journal(journal, now)
                self.up.labels("journal").set(1)
            except (EngineError, OSError) as exc:
                self.up.labels("journal").set(0)
                log.warning("console.metrics_journal_failed", error=type(exc).__name__)
            depths = await queue_depths(bus)
            self.up.labels("bus").set(0 if any(isinstance(d, str) for d in depths) else 1)
            for depth in depths:
                if isinstance(depth, QueueDepth):
                    self.queue.labels(depth.queue, "waiting").set(depth.waiting)
                    self.queue.labels(depth.queue, "parked").set(depth.parked)
                    if depth.retrying is not None:
                        self.queue.labels(depth.queue, "retrying").set(depth.retrying)
            if installation is not None:
                for cert in await asyncio.to_thread(installation.certificates):
                    days = cert.days_left(now)
                    if days is not None:
                        self.cert_days.labels(cert.name).set(round(days, 2))
            return generate_latest(self.registry)

    async def _from_journal(self, journal, now: datetime) -> None:
        sample = await journal.metrics_sample(self._cursor, now)
        for event in sample.events:
            self.events.labels(event.channel, event.step, event.state).inc()
            if event.step == "queued" and event.received_at is not None:
                self.ack_latency.labels(event.channel).observe(max(0.0, (event.at - event.received_at)
                                                                   .total_seconds()))
            elif (event.step == "outcome" and event.state == str(OutcomeStatus.ACCEPTED)
                  and event.queued_at is not None):
                self.accepted_latency.labels(event.channel).observe(max(0.0, (event.at - event.queued_at)
                                                                        .total_seconds()))
        self._cursor = sample.last_event
        self.parked.set(sample.parked)
        self.overdue.set(sample.overdue_letters)
        activity = await journal.activity(now)
        self.retrying.set(sum(standing for status, _, _, standing in activity.outcomes
                              if status == str(OutcomeStatus.RETRYING)))


async def metrics(request: Request) -> Response:
    state = request.app.state
    if getattr(state, "metrics", None) is None:
        state.metrics = JournalMetrics()
    body = await state.metrics.scrape(state.journal, state.bus, getattr(state, "installation", None))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/metrics", metrics)]
