"""The dashboard, compliance and configuration pages and their JSON, over a real journal, bus and settings."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from channels.app.installation import SettingsInstallation
from channels.app.settings import settings_from_dict
from channels.console.app import create_app
from router import queues
from router.ports import MessageState, Outcome, OutcomeStatus, Stay, StayState

PARIS = ZoneInfo("Europe/Paris")    # engine.timezone by default: what "the day" means
KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def installation(tmp_path):
    store = tmp_path / "whitelist"
    store.mkdir()
    (store / "current.json").write_text('{"xml": "l.xml", "checksum": "c", "sha256": "' + "ab" * 32 + '", '
                                        '"source": "https://user:hunter2@mirror.example/liste.xml", '
                                        '"fetched_at": "2026-12-06T04:00:00+00:00", "domain_count": 42, '
                                        '"entry_count": 57}')
    settings = settings_from_dict({
        "engine": {"journal": "postgresql://liaison:s3cret@db.example/journal",
                   "bus": "amqp://guest:busword@127.0.0.1:5672/"},
        "whitelist": {"source": "https://user:hunter2@mirror.example/liste.xml", "store_dir": str(store)},
        "console": {}}, {"LIAISON_JOURNAL_KEY": KEY})
    return SettingsInstallation(settings)


@pytest.fixture
def client_of(console, installation):
    console.app = create_app(console.journal, console.bus, console.users, installation=installation)
    return console


async def test_dashboard_counts_by_channel_type_and_state_with_queues_and_reference_files(client_of):
    console = client_of
    keys = [await console.receive(f"DASH-{i}", peer=f"10.0.0.7:{40000 + i}") for i in range(3)]
    await console.journal.set_state(keys[0], MessageState.DELIVERED, step="delivered")
    await console.journal.set_state(keys[1], MessageState.PARKED, step="parked")
    await console.journal.record_outcome(Outcome("DOC-1", "dr.x@test.mssante.fr", OutcomeStatus.RETRYING, "451",
                                                 datetime.now(UTC), keys[2]))
    await console.park(keys[1])
    await console.bus.publish(queues.DELIVER_MSS, b"job", message_id="JOB-1")
    async with console.logged_in("viewer") as client:
        board = (await client.get("/api/dashboard")).json()
        page = await client.get("/dashboard")
    [row] = board["messages"]
    assert (row["channel"], row["type"]) == ("his", "ORU^R01")
    assert row["hour"] == {"received": 3, "in progress": 1, "delivered": 1, "partial": 0, "failed": 0,
                           "parked": 1, "rejected": 0} == row["day"]
    assert board["hourly"][-1]["received"] == 3 and len(board["hourly"]) == 24
    assert {r["status"]: r["now"] for r in board["recipients"]}["retrying"] == 1
    depths = {q["queue"]: q for q in board["queues"]}
    assert depths["inbound"]["parked"] == 1 and depths["deliver.mss"]["waiting"] == 1
    assert depths["deliver.mss"]["oldest_at"] is not None
    assert board["oldest_waiting"]["key"] == keys[2]
    [whitelist] = board["reference_files"]
    assert whitelist["sha256"] == "ab" * 32 and "hunter2" not in whitelist["source"]
    assert [(p["channel"], p["host"], p["messages"]) for p in board["peers"]] == [("his", "10.0.0.7", 3)]
    assert page.status_code == 200 and 'id="throughput"' in page.text and "abababab" in page.text
    assert "<td>10.0.0.7</td>" in page.text
    assert "hunter2" not in page.text


async def test_dashboard_without_an_installation_says_what_it_does_not_know(console):
    async with console.logged_in("viewer") as client:
        assert (await client.get("/api/dashboard")).json()["reference_files"] is None
        assert "started without the engine" in (await client.get("/dashboard")).text
        assert (await client.get("/api/configuration")).json()["configuration"] is None


async def test_configuration_masks_every_secret_and_shows_channel_status(client_of):
    async with client_of.logged_in("viewer") as client:
        view = (await client.get("/api/configuration")).json()
        page = (await client.get("/configuration")).text
    engine = view["configuration"]["engine"]
    assert engine["journal_key"] == "(set)"
    assert engine["journal"] == "postgresql://liaison:***@db.example/journal"
    assert engine["bus"] == "amqp://guest:***@127.0.0.1:5672/"
    for secret in ("s3cret", "busword", "hunter2", KEY):
        assert secret not in str(view) and secret not in page
    assert [(c["name"], c["kind"], c["status"]) for c in view["channels"]] == [
        ("his", "MLLP listener", "not answering")]


async def test_compliance_shows_each_units_discharges_letters_and_overdue(client_of):
    now = datetime.now(UTC)
    journal = client_of.journal

    def stay(encounter: str, unit: str, **changes) -> Stay:
        fields = dict(facility="CHU-TEST", encounter=encounter, state=StayState.DISCHARGED, ipp=f"IPP-{encounter}",
                      unit=unit, discharged_at=now - timedelta(minutes=30), message_key=f"K-{encounter}",
                      letter_due_at=now + timedelta(hours=2))
        fields.update(changes)
        return Stay(**fields)

    await journal.record_stay(stay("V1", "CARDIO", letter_sent_at=now - timedelta(minutes=5)))
    await journal.record_stay(stay("V2", "CARDIO", letter_due_at=now - timedelta(minutes=1)))
    await journal.record_stay(stay("V3", "NEURO"))
    await journal.record_stay(stay("V4", "NEURO", discharged_at=now - timedelta(days=3)))
    day = now.astimezone(PARIS).date().isoformat()
    if (now - timedelta(minutes=30)).astimezone(PARIS).date().isoformat() != day:
        pytest.skip("run across local midnight")
    async with client_of.logged_in("viewer") as client:
        viewed = (await client.get("/api/compliance", params={"day": day})).json()
        bad = await client.get("/api/compliance", params={"day": "yesterday"})
    async with client_of.logged_in("operator") as client:
        operated = (await client.get("/api/compliance", params={"day": day})).json()
        page = (await client.get("/compliance", params={"day": day})).text
    assert viewed["units"] == [{"unit": "CARDIO", "discharged": 2, "sent": 1, "overdue": 1, "pending": 0},
                               {"unit": "NEURO", "discharged": 1, "sent": 0, "overdue": 0, "pending": 1}]
    assert {s["encounter"]: s["status"] for s in viewed["stays"]} == {"V1": "sent", "V2": "overdue", "V3": "pending"}
    assert all(s["ipp"] is None for s in viewed["stays"])              # no patient identifier for a viewer
    assert {s["ipp"] for s in operated["stays"]} == {"IPP-V1", "IPP-V2", "IPP-V3"}
    assert bad.status_code == 400
    assert "IPP-V2" in page and "letter-overdue" in page


async def test_readyz_says_when_the_journal_does_not_answer(console):
    async with console.client() as client:
        assert (await client.get("/readyz")).json() == {"status": "ready", "journal": "ok", "bus": "ok"}
        await console.journal.close()
        response = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert response.status_code == 503 and response.json()["journal"].startswith("unavailable")
    assert response.json()["bus"] == "ok" and alive.status_code == 200
