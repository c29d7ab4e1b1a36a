"""The console in a real browser, over a real engine fed by MLLP (scriptable TLS mail sink, embedded bus).

Log in, find a message sent a moment ago by its MSH-10, open its timeline; a viewer does not see the raw
HL7 (page and API); a POST without the CSRF token is refused; five wrong passwords lock the account; a
parked message shows its reason and an operator releases it (a viewer cannot).
Screenshots of the list and of a timeline go to a temporary directory printed by the test; the
dashboard and INS search test writes the README's screenshots to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from channels.app.installation import SettingsInstallation
from channels.console.serve import console_server, serve_until
from channels.console.settings import ConsoleSettings
from channels.console.users import Role
from channels.testing.messages import (DR_MARTIN, OTHER_PATIENT, Patient, encode_message, make_cda,
                                      make_pfi_oru)
from router.ports import MessageState
from tests.integration.harness import sink_pipeline
from tests.support.console import PASSWORD, users_file
from tests.support.poll import eventually
from channels.testing.local import free_port

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
async def console(tmp_path):
    """An engine on loopback and the console over its journal and bus, on http://127.0.0.1:PORT."""
    pipe = await sink_pipeline(tmp_path / "engine")
    users = users_file(tmp_path / "users.sqlite")
    users.add("locked-out", Role.VIEWER, PASSWORD)
    settings = ConsoleSettings(port=free_port(), users=str(tmp_path / "users.sqlite"))
    server = console_server(settings, pipe.journal, pipe.engine.bus, users, SettingsInstallation(pipe.engine.settings))
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_until(server, stop))
    await eventually(lambda: server.started, "the console listening")
    try:
        yield pipe, f"http://127.0.0.1:{settings.port}"
    finally:
        stop.set()
        await serving
        users.close()
        await pipe.stop()


async def send_oru(pipe, control_id: str) -> str:
    cda = make_cda(document_extension=f"BR-{uuid.uuid4().hex[:10]}")
    raw = encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id=control_id,
                                      recipients=[DR_MARTIN]))
    assert (await pipe.send(raw)).code == "AA"
    record = await pipe.wait_final(control_id)
    assert record.state == MessageState.DELIVERED, record.detail
    return record.key


async def test_operator_finds_a_message_by_msh10_and_reads_its_timeline(console, browser_factory,
                                                                         tmp_path_factory):
    pipe, url = console
    control_id = f"BRW-{uuid.uuid4().hex[:8]}"
    key = await send_oru(pipe, control_id)
    await send_oru(pipe, f"OTHER-{uuid.uuid4().hex[:8]}")
    shots = tmp_path_factory.mktemp("console-screenshots")
    browser = browser_factory(url)

    await browser.login("operator", PASSWORD)
    assert "operator (operator)" in await browser.text("#who")
    await browser.screenshot(shots / "messages.png")
    await browser.fill("#control_id", control_id)
    await browser.click("#search")
    rows = await browser.run(lambda: browser.driver.find_elements("css selector", "#messages tbody tr"))
    assert len(rows) == 1 and control_id in rows[0].text and "delivered" in rows[0].text
    await browser.click("#messages tbody tr a")

    assert await browser.text("#key") == key
    assert await browser.text("#state") == "delivered"
    timeline = await browser.text("#timeline")
    assert "received" in timeline and "queued" in timeline and "outcome" in timeline
    assert DR_MARTIN.address in await browser.text("#outcomes")
    assert (await browser.text("#raw")).splitlines()[0].startswith("MSH|")
    await browser.screenshot(shots / "timeline.png")
    print(f"screenshots in {shots}")
    assert (shots / "messages.png").stat().st_size > 0 and (shots / "timeline.png").stat().st_size > 0


async def test_operator_reads_the_dashboard_and_finds_a_message_by_ins(console, browser_factory):
    pipe, url = console
    for n in range(3):
        await send_oru(pipe, f"DSH-{uuid.uuid4().hex[:8]}")
    cda = make_cda(document_extension=f"BR-{uuid.uuid4().hex[:10]}", patient=OTHER_PATIENT)
    control_id = f"INS-{uuid.uuid4().hex[:8]}"
    assert (await pipe.send(encode_message(make_pfi_oru(cda, patient=OTHER_PATIENT, control_id=control_id,
                                                        recipients=[DR_MARTIN])))).code == "AA"
    key = (await pipe.wait_final(control_id)).key
    browser = browser_factory(url)

    await browser.login("operator", PASSWORD)
    await browser.get("/dashboard")
    activity = await browser.text("#activity")
    assert "his" in activity and "ORU^R01" in activity
    assert "4 / 4" in activity                                  # received in the last hour / day
    assert len(await browser.run(lambda: browser.driver.find_elements("css selector",
                                                                      "#throughput rect.received"))) == 24
    assert "deliver.mss" in await browser.text("#queues")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await browser.screenshot(SCREENSHOTS / "dashboard.png")

    await browser.get("/messages")
    await browser.fill("#ins", OTHER_PATIENT.ins)
    await browser.click("#search")
    rows = await browser.run(lambda: browser.driver.find_elements("css selector", "#messages tbody tr"))
    assert len(rows) == 1 and control_id in rows[0].text
    await browser.click("#messages tbody tr a")
    assert await browser.text("#key") == key
    assert "outcome" in await browser.text("#timeline")
    await browser.screenshot(SCREENSHOTS / "timeline.png")
    for name in ("dashboard.png", "timeline.png"):
        assert (SCREENSHOTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_viewer_sees_the_timeline_but_not_the_raw_message(console, browser_factory):
    pipe, url = console
    control_id = f"VIEW-{uuid.uuid4().hex[:8]}"
    key = await send_oru(pipe, control_id)
    browser = browser_factory(url)

    await browser.login("viewer", PASSWORD)
    await browser.get(f"/messages/{key}")
    assert await browser.text("#state") == "delivered"
    assert "does not see it" in await browser.text("#raw-hidden")
    assert "PID|" not in await browser.source()
    await browser.get(f"/api/messages/{key}/raw")
    refused = await browser.text("body")
    assert json.loads(refused) == {"error": "needs the operator role (you are viewer)"}


async def test_a_post_without_the_csrf_token_is_refused(console, browser_factory):
    _, url = console
    browser = browser_factory(url)
    await browser.login("admin", PASSWORD)
    await browser.find("#who")
    await browser.run(browser.driver.execute_script,
                      "document.querySelector('form.logout input[name=csrf]').remove()")
    await browser.click("form.logout button")
    assert await browser.text("#error") == "missing or wrong CSRF token"
    await browser.get("/messages")
    assert "admin (admin)" in await browser.text("#who")          # still logged in: the logout was refused


async def test_five_wrong_passwords_lock_the_account(console, browser_factory):
    _, url = console
    browser = browser_factory(url)
    for _ in range(5):
        await browser.login("locked-out", "not the password")
    assert "locked" in await browser.text("#login-error")
    await browser.login("locked-out", PASSWORD)
    assert "locked" in await browser.text("#login-error")
    await browser.get("/messages")
    assert "/login" in await browser.run(lambda: browser.driver.current_url)


async def test_an_operator_sees_why_a_message_was_parked_and_releases_it(console, browser_factory):
    """Release re-runs the stage: this message's CDA is still wrong, so it is parked again, and says so."""
    pipe, url = console
    control_id = f"PARK-{uuid.uuid4().hex[:8]}"
    cda = make_cda(document_extension=f"BR-{uuid.uuid4().hex[:10]}")
    broken = cda.replace(b"ClinicalDocument", b"ClinicalDocumentX")
    raw = encode_message(make_pfi_oru(broken, patient=Patient.of_cda(cda), control_id=control_id,
                                      recipients=[DR_MARTIN]))
    assert (await pipe.send(raw)).code == "AA"
    key = (await pipe.wait_final(control_id)).key
    await parked_on_the_bus(pipe, key)
    browser = browser_factory(url)

    await browser.login("operator", PASSWORD)
    await browser.get("/parked")
    row = await browser.text("#parked tbody tr")
    assert key in row and "not a CDA: root element is" in row
    await browser.click("#parked a.release")
    assert "not a CDA" in await browser.text(".reason")
    await browser.click("#confirm-release")

    assert await browser.text("#key") == key
    assert "by operator: released from inbound" in await browser.text("#timeline")

    async def parked_again():
        return [e for e in await pipe.journal.events(key) if e.step == "invalid"][1:]
    await eventually(parked_again, "the released message processed again", timeout=20)
    record = await pipe.wait_final(control_id)
    assert record.state == MessageState.PARKED


async def test_a_viewer_sees_parked_reasons_without_a_release_button(console, browser_factory):
    pipe, url = console
    control_id = f"PARKV-{uuid.uuid4().hex[:8]}"
    cda = make_cda(document_extension=f"BR-{uuid.uuid4().hex[:10]}")
    raw = encode_message(make_pfi_oru(cda.replace(b"ClinicalDocument", b"ClinicalDocumentX"),
                                      patient=Patient.of_cda(cda), control_id=control_id, recipients=[DR_MARTIN]))
    assert (await pipe.send(raw)).code == "AA"
    await parked_on_the_bus(pipe, (await pipe.wait_final(control_id)).key)
    browser = browser_factory(url)

    await browser.login("viewer", PASSWORD)
    await browser.get("/parked")
    assert "not a CDA" in await browser.text("#parked tbody tr")
    assert await browser.run(lambda: browser.driver.find_elements("css selector", "#parked a.release")) == []


async def parked_on_the_bus(pipe, key: str) -> None:
    """The journal says PARKED before the bus has parked the job (the stage records, then settle parks): wait."""
    async def there():
        return any(e.message_id == key for e in await pipe.engine.bus.parked("inbound"))
    await eventually(there, "the message parked on the bus", timeout=20)
