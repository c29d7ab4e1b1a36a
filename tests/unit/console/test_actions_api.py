"""Operator actions in the console: each endpoint for each role, the confirmation step, audit and CSRF."""

from __future__ import annotations

import pytest

from router import queues
from router.ports import MessageState
from tests.support.console import csrf_of

ROLES = (None, "viewer", "operator", "admin")

# (method, path, JSON body, the state the message is put in first, expected status per role)
ENDPOINTS = [
    ("POST", "/api/messages/{key}/discard", {"reason": "sent again by hand"}, MessageState.PARKED,
     (401, 403, 200, 200)),
    ("POST", "/api/messages/{key}/retry-recipient", {"recipient": "a@x.mssante.fr"}, MessageState.FAILED,
     (401, 403, 409, 409)),                                     # no such recipient on it: refused, said why
    ("POST", "/api/messages/{key}/release", {}, MessageState.FAILED, (401, 403, 409, 409)),  # nothing parked
    ("POST", "/api/messages/{key}/replay", {}, MessageState.FAILED, (401, 403, 200, 200)),
    ("POST", "/api/messages/{key}/replay", {}, MessageState.PROCESSING, (401, 403, 409, 409)),  # still running
    ("POST", "/api/messages/NO-SUCH-KEY/discard", {"reason": "x"}, MessageState.PARKED, (401, 403, 404, 404)),
    ("POST", "/api/messages/{key}/explode", {}, MessageState.PARKED, (404, 404, 404, 404)),   # no such action
    ("GET", "/messages/{key}/discard", None, MessageState.PARKED, (303, 403, 200, 200)),
    ("GET", "/messages/{key}/retry-recipient", None, MessageState.FAILED, (303, 403, 200, 200)),
]


@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
@pytest.mark.parametrize("method,path,body,state,expected", ENDPOINTS,
                         ids=[f"{m} {p} {s}" for m, p, _, s, _ in ENDPOINTS])
async def test_each_action_endpoint_answers_each_role(console, role_index, role, method, path, body, state,
                                                      expected):
    key = await console.receive("CTL-ACT")
    await console.journal.set_state(key, state, step="test")
    async with console.logged_in(role) as client:
        headers = {}
        if method == "POST" and role is not None:
            headers["x-csrf-token"] = (await client.get("/api/session")).json()["csrf"]
        response = await client.request(method, path.format(key=key), headers=headers,
                                        **({"json": body} if body is not None else {}))
    assert response.status_code == expected[role_index], response.text


async def test_discard_through_the_api_closes_the_message_and_audits_it(console):
    key = await console.receive("CTL-DISC")
    await console.park(key, "CDA fails the schema")
    await console.journal.set_state(key, MessageState.PARKED, step="parked")
    async with console.logged_in("operator") as client:
        token = (await client.get("/api/session")).json()["csrf"]
        no_reason = await client.post(f"/api/messages/{key}/discard", json={"reason": "  "},
                                      headers={"x-csrf-token": token})
        no_csrf = await client.post(f"/api/messages/{key}/discard", json={"reason": "duplicate"})
        not_json = await client.post(f"/api/messages/{key}/discard", content=b"reason=x",
                                     headers={"x-csrf-token": token})
        done = await client.post(f"/api/messages/{key}/discard", json={"reason": "duplicate of CTL-9"},
                                 headers={"x-csrf-token": token})
        again = await client.post(f"/api/messages/{key}/discard", json={"reason": "again"},
                                  headers={"x-csrf-token": token})
        parked = (await client.get("/api/parked")).json()["parked"]
    assert no_reason.status_code == 409 and "needs a reason" in no_reason.json()["error"]
    assert no_csrf.status_code == 403
    assert not_json.status_code == 400 and "JSON object" in not_json.json()["error"]
    assert done.json() == {"message_key": key, "action": "discard", "outcome": "discarded: duplicate of CTL-9"}
    assert again.status_code == 409 and "discarded" in again.json()["error"]
    record = await console.journal.message(key)
    assert record.state == MessageState.DISCARDED and record.detail == "discarded by operator: duplicate of CTL-9"
    assert parked == []                                              # a discarded message leaves the parked list
    assert len(await console.bus.parked(queues.INBOUND)) == 1        # (its envelope stays, for the record)
    audits = [e.detail for e in await console.journal.events(key) if e.step == "discard" and e.state == "audit"]
    assert "by operator: discarded: duplicate of CTL-9" in audits
    assert any(a.startswith("by operator: refused: a discard needs a reason") for a in audits)
    trail = [(user, target, outcome) for _, user, action, target, outcome in console.users.audit_trail()
             if action == "discard"]
    assert trail[:3] == [("operator", key, "refused"), ("operator", key, "done"),   # newest first
                         ("operator", key, "refused")]
    stored = console.users.path.read_bytes()                 # no free text in the (unencrypted) users file
    assert b"duplicate of CTL-9" not in stored


async def test_the_discard_page_asks_for_a_ticked_confirmation(console):
    key = await console.receive("CTL-PAGE-D")
    await console.journal.set_state(key, MessageState.FAILED, step="delivered")
    async with console.logged_in("operator") as client:
        page = await client.get(f"/messages/{key}/discard")
        csrf = csrf_of(page.text)
        unconfirmed = await client.post(f"/messages/{key}/discard", data={"csrf": csrf, "reason": "x"})
        no_csrf = await client.post(f"/messages/{key}/discard", data={"confirm": "yes", "reason": "x"})
        done = await client.post(f"/messages/{key}/discard",
                                 data={"csrf": csrf, "confirm": "yes", "reason": "patient left, sent by post"})
        timeline = await client.get(f"/messages/{key}")
    assert 'name="confirm"' in page.text and 'name="reason"' in page.text
    assert unconfirmed.status_code == 400 and no_csrf.status_code == 403
    assert done.status_code == 303 and done.headers["location"] == f"/messages/{key}"
    assert (await console.journal.message(key)).state == MessageState.DISCARDED
    assert "discarded by operator: patient left, sent by post" in timeline.text


async def test_replay_puts_the_raw_message_back_on_the_inbound_queue(console):
    key = await console.receive("CTL-REPLAY")
    await console.journal.set_state(key, MessageState.FAILED, step="delivered")
    result = await console.app.state.actions.replay(key, "operator")
    received = []

    async def take(delivery) -> None:
        received.append(delivery.envelope)
        await delivery.ack()

    subscription = await console.bus.consume(queues.INBOUND, take)
    try:
        from tests.support.poll import eventually
        await eventually(lambda: received, "the replayed message on inbound")
    finally:
        await subscription.cancel()
    assert received[0].message_id == key and received[0].body.startswith(b"MSH|^~\\&|DXCARE")
    assert received[0].headers["channel"] == "his" and received[0].headers["codec"] == "utf-8"
    assert (await console.journal.message(key)).state == MessageState.QUEUED
    assert "0 recipient(s) reopened" in result.outcome


async def test_a_replay_the_bus_does_not_take_leaves_the_message_as_it_was(console):
    key = await console.receive("CTL-NOBUS")
    await console.journal.set_state(key, MessageState.PARTIAL, step="delivered")
    await console.bus.close()
    async with console.logged_in("operator") as client:
        token = (await client.get("/api/session")).json()["csrf"]
        response = await client.post(f"/api/messages/{key}/replay", headers={"x-csrf-token": token})
    assert response.status_code == 409 and "the bus did not take" in response.json()["error"]
    assert (await console.journal.message(key)).state == MessageState.PARTIAL


async def test_a_message_whose_content_retention_emptied_is_not_run_again(console):
    from datetime import UTC, datetime, timedelta
    key = await console.receive("CTL-EMPTY")
    await console.journal.set_state(key, MessageState.FAILED, step="delivered")
    assert await console.journal.expire_content(datetime.now(UTC) + timedelta(days=1), limit=10) == 1
    actions = console.app.state.actions
    from router.actions import ActionError
    with pytest.raises(ActionError, match="no content left"):
        await actions.replay(key, "operator")
    await console.journal.set_state(key, MessageState.REJECTED, step="test")
    with pytest.raises(ActionError, match="refused at the door"):
        await actions.replay(key, "operator")
    assert (await console.journal.message(key)).state == MessageState.REJECTED
