"""``/metrics``: counters, histograms and gauges from the journal and the bus, in Prometheus' text format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from channels.app.installation import SettingsInstallation
from channels.app.settings import settings_from_dict
from channels.console.app import create_app
from channels.testing.pki import make_test_pki
from router import queues
from router.ports import JournalEvent, MessageState, Outcome, OutcomeStatus


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_count_new_events_and_observe_latencies_from_journal_times(console):
    async with console.client() as client:
        first = await client.get("/metrics")               # anonymous, like a Prometheus scraper
        assert first.status_code == 200 and first.headers["content-type"].startswith("text/plain")
        key = await console.receive("MET-1")
        received = (await console.journal.message(key)).received_at
        await console.journal.add_event(JournalEvent(key, received + timedelta(milliseconds=4), "queued", "queued"))
        await console.journal.record_outcome(Outcome("DOC-1", "dr.x@test.mssante.fr", OutcomeStatus.ACCEPTED, "250",
                                                     received + timedelta(seconds=3), key))
        await console.journal.record_outcome(Outcome("DOC-1", "dr.y@test.mssante.fr", OutcomeStatus.RETRYING, "451",
                                                     datetime.now(UTC), key))
        await console.journal.set_state(key, MessageState.PARKED, step="parked")
        await console.park(key)
        await console.bus.publish(queues.DELIVER_MSS, b"job", message_id="JOB-1")
        seen = samples((await client.get("/metrics")).text)
        again = samples((await client.get("/metrics")).text)

    assert seen["liaison_events_total", (("channel", "his"), ("outcome", "received"), ("stage", "received"))] == 1
    assert seen["liaison_events_total", (("channel", "his"), ("outcome", "accepted"), ("stage", "outcome"))] == 1
    assert seen["liaison_mllp_ack_seconds_count", (("channel", "his"),)] == 1
    assert seen["liaison_mllp_ack_seconds_bucket", (("channel", "his"), ("le", "0.005"))] == 1
    assert seen["liaison_mllp_ack_seconds_bucket", (("channel", "his"), ("le", "0.0025"))] == 0
    assert seen["liaison_ack_to_accepted_seconds_sum", (("channel", "his"),)] == 2.996
    assert seen["liaison_parked_messages", ()] == 1 and seen["liaison_retrying_recipients", ()] == 1
    assert seen["liaison_overdue_letters", ()] == 0
    assert seen["liaison_queue_jobs", (("queue", "inbound"), ("status", "parked"))] == 1
    assert seen["liaison_queue_jobs", (("queue", "deliver.mss"), ("status", "waiting"))] == 1
    assert seen["liaison_up", (("part", "journal"),)] == 1 and seen["liaison_up", (("part", "bus"),)] == 1
    assert again["liaison_events_total", (("channel", "his"), ("outcome", "received"), ("stage", "received"))] == 1


async def test_metrics_give_the_days_left_of_each_configured_certificate(console, tmp_path):
    pki = make_test_pki(tmp_path / "pki")
    settings = settings_from_dict({"console": {"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key)}})
    app = create_app(console.journal, console.bus, console.users, installation=SettingsInstallation(settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as client:
        seen = samples((await client.get("/metrics")).text)
    expiry = x509.load_pem_x509_certificate(pki.server_cert.read_bytes()).not_valid_after_utc
    expected = (expiry - datetime.now(UTC)).total_seconds() / 86400
    assert abs(seen["liaison_certificate_days_left", (("certificate", "console (HTTPS)"),)] - expected) < 0.02
