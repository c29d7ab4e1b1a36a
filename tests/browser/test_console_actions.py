"""Operator actions in a real browser, over a real engine fed by MLLP: discard a parked message, with confirmation.

The discard page asks for a reason and a ticked confirmation (the browser will not send the form
without them); once confirmed, the message is discarded, its timeline says by whom and why, and it
leaves the parked list. A viewer is refused the page.
"""

from __future__ import annotations

import uuid

import pytest

from channels.testing.messages import DR_MARTIN, Patient, encode_message, make_cda, make_pfi_oru
from router.ports import MessageState
from tests.browser.test_console import console, parked_on_the_bus  # noqa: F401 - the engine + console fixture
from tests.support.console import PASSWORD

pytestmark = pytest.mark.browser


async def test_an_operator_discards_a_parked_message_after_confirming(console, browser_factory):  # noqa: F811
    pipe, url = console
    control_id = f"DISC-{uuid.uuid4().hex[:8]}"
    cda = make_cda(document_extension=f"BR-{uuid.uuid4().hex[:10]}")
    raw = encode_message(make_pfi_oru(cda.replace(b"ClinicalDocument", b"ClinicalDocumentX"),
                                      patient=Patient.of_cda(cda), control_id=control_id, recipients=[DR_MARTIN]))
    assert (await pipe.send(raw)).code == "AA"
    key = (await pipe.wait_final(control_id)).key
    await parked_on_the_bus(pipe, key)
    browser = browser_factory(url)

    await browser.login("operator", PASSWORD)
    await browser.get("/parked")
    assert key in await browser.text("#parked tbody tr")
    await browser.click("#parked a.discard")
    assert await browser.text("#state") == "parked"
    await browser.fill("#reason", "sent again by the ward with a valid CDA")
    await browser.click("#do-action")                          # not ticked: the browser keeps the form here
    assert await browser.run(lambda: browser.driver.current_url) == f"{url}/messages/{key}/discard"
    assert (await pipe.journal.message(key)).state == MessageState.PARKED
    await browser.click("#confirm")
    form = await browser.find("#action-form")
    await browser.click("#do-action")
    await browser.landed(form)

    assert await browser.text("#key") == key
    assert await browser.text("#state") == "discarded"
    timeline = await browser.text("#timeline")
    assert "discarded by operator: sent again by the ward with a valid CDA" in timeline
    assert "by operator: discarded: sent again by the ward" in timeline            # the audit event
    await browser.get("/parked")
    assert key not in await browser.text("#parked")
    assert (await pipe.journal.message(key)).state == MessageState.DISCARDED


async def test_a_viewer_gets_no_discard_page(console, browser_factory):  # noqa: F811
    _, url = console
    browser = browser_factory(url)
    await browser.login("viewer", PASSWORD)
    await browser.get("/messages/ANY-KEY/discard")          # refused before the message is even looked up
    assert "needs the operator role" in await browser.text("#error")
