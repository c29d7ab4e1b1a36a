"""The audit trail for admins: who did what, when, on which message, with what outcome; keyset pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from router.ports import MessageState
from tests.support.console import login

ROLES = (None, "viewer", "operator", "admin")
ENDPOINTS = [("/audit", (303, 403, 403, 200)), ("/api/audit", (401, 403, 403, 200))]


@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
@pytest.mark.parametrize("path,expected", ENDPOINTS, ids=[p for p, _ in ENDPOINTS])
async def test_only_admins_read_the_audit(console, role_index, role, path, expected):
    async with console.logged_in(role) as client:
        response = await client.get(path)
    assert response.status_code == expected[role_index], response.text


@pytest.mark.parametrize("role,expected", [("viewer", 403), ("operator", 403), ("admin", 200)])
async def test_the_audit_api_with_a_token(console, role, expected):
    _, token = console.users.new_token(role)
    async with console.client() as client:
        response = await client.get("/api/audit", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == expected


async def test_logins_payload_views_and_actions_are_in_the_audit_with_user_time_message_outcome(console):
    key = await console.receive("CTL-AUD")
    await console.journal.set_state(key, MessageState.FAILED, step="test")
    before = datetime.now(UTC) - timedelta(seconds=1)
    async with console.client() as client:
        await login(client, "operator", "not the password")
    async with console.logged_in("operator") as client:
        await client.get(f"/messages/{key}")
        await client.get(f"/api/messages/{key}/raw")
        token = (await client.get("/api/session")).json()["csrf"]
        await client.post(f"/api/messages/{key}/discard", json={"reason": "duplicate"},
                          headers={"x-csrf-token": token})
    async with console.logged_in("admin") as client:
        rows = (await client.get("/api/audit", params={"user": "operator"})).json()["audit"]
        page = await client.get("/audit", params={"target": key})
    seen = [(r["action"], r["target"], r["outcome"]) for r in rows]
    assert seen[:5] == [("discard", key, "done"), ("payload.view", key, "api"),
                        ("payload.view", key, "page"), ("login", "", "ok"), ("login", "", "wrong password")]
    assert all(datetime.fromisoformat(r["at"]) >= before for r in rows)
    assert page.status_code == 200 and "discard" in page.text and f'href="/messages/{key}"' in page.text


async def test_the_audit_pages_by_keyset(console):
    for n in range(7):
        console.users.audit("script", "probe", f"T{n}", "ok")
    async with console.logged_in("admin") as client:
        first = (await client.get("/api/audit", params={"action": "probe", "limit": 3})).json()
        second = (await client.get("/api/audit", params={"action": "probe", "limit": 3,
                                                         "before": first["next"]})).json()
        third = (await client.get("/api/audit", params={"action": "probe", "limit": 3,
                                                        "before": second["next"]})).json()
        bad = await client.get("/api/audit", params={"before": "x"})
        page = await client.get("/audit", params={"action": "probe", "limit": 3})
    targets = [r["target"] for r in first["audit"] + second["audit"] + third["audit"]]
    assert targets == [f"T{n}" for n in range(6, -1, -1)] and third["next"] is None
    assert bad.status_code == 400 and "before: expected" in bad.json()["error"]
    assert 'id="next"' in page.text


def test_the_audit_keeps_its_own_retention(console):
    console.users.audit("script", "probe", "old", "ok")
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    assert console.users.prune_audit(cutoff, limit=1) == 1                  # small batches
    assert console.users.prune_audit(cutoff) >= 1
    assert console.users.audit_page(action="probe") == []
    console.users.audit("script", "probe", "new", "ok")
    assert console.users.prune_audit(datetime.now(UTC) - timedelta(days=1)) == 0
    assert [r.target for r in console.users.audit_page(action="probe")] == ["new"]


async def test_the_audit_and_action_answers_have_the_fields_the_openapi_description_gives(console):
    from channels.console.openapi import SPEC
    key = await console.receive("CTL-OAS")
    await console.journal.set_state(key, MessageState.FAILED, step="test")
    _, token = console.users.new_token("admin")
    bearer = {"authorization": f"Bearer {token}"}
    async with console.client() as client:
        audit = (await client.get("/api/audit", headers=bearer)).json()
        discard = (await client.post(f"/api/messages/{key}/discard", json={"reason": "x"}, headers=bearer)).json()
    for body, path, method in ((audit, "/api/audit", "get"), (discard, "/api/messages/{key}/discard", "post")):
        schema = SPEC["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert set(body) == set(schema["properties"]) == set(schema["required"]), path


async def test_a_search_by_patient_identifier_is_audited_without_the_identifier(console, tmp_path):
    async with console.logged_in("operator") as client:
        await client.get("/api/messages", params={"ins": "180017512345678"})
        await client.get("/messages", params={"ipp": "700123", "ins": "180017512345678"})
        await client.get("/api/messages", params={"type": "ORU^R01"})                # not a patient search
    rows = [(r.user, r.action, r.target, r.outcome) for r in console.users.audit_page(action="patient.search")]
    assert rows == [("operator", "patient.search", "ipp+ins", "0 message(s) on this page"),
                    ("operator", "patient.search", "ins", "0 message(s) on this page")]
    stored = console.users.path.read_bytes()
    assert b"180017512345678" not in stored and b"700123" not in stored
