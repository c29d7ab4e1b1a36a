"""The JSON API and the pages: every endpoint for every role, and what each role sees."""

from __future__ import annotations

import httpx
import pytest

from channels.console.users import Role
from router import queues
from tests.support.console import csrf_of

ROLES = (None, "viewer", "operator", "admin")

# (method, path, expected status per role: anonymous, viewer, operator, admin)
API = [
    ("GET", "/healthz", (200, 200, 200, 200)),
    ("GET", "/readyz", (200, 200, 200, 200)),
    ("GET", "/api/session", (401, 200, 200, 200)),
    ("GET", "/api/messages", (401, 200, 200, 200)),
    ("GET", "/api/messages/{key}", (401, 200, 200, 200)),
    ("GET", "/api/messages/{key}/raw", (401, 403, 200, 200)),
    ("GET", "/api/parked", (401, 200, 200, 200)),
    ("POST", "/api/parked/inbound/NOT-PARKED/release", (401, 403, 404, 404)),
]
PAGES = [
    ("GET", "/messages", (303, 200, 200, 200)),
    ("GET", "/messages/{key}", (303, 200, 200, 200)),
    ("GET", "/parked", (303, 200, 200, 200)),
    ("GET", "/parked/inbound/NOT-PARKED/release", (303, 403, 404, 404)),
]


@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
@pytest.mark.parametrize("method,path,expected", API + PAGES, ids=[f"{m} {p}" for m, p, _ in API + PAGES])
async def test_each_endpoint_answers_each_role(console, role_index, role, method, path, expected):
    key = await console.receive("CTL-ROLE")
    async with console.logged_in(role) as client:
        headers = {}
        if method == "POST" and role is not None:
            headers["x-csrf-token"] = (await client.get("/api/session")).json()["csrf"]
        response = await client.request(method, path.format(key=key), headers=headers)
    assert response.status_code == expected[role_index], response.text


async def test_search_filters_and_pages_by_keyset(console):
    keys = [await console.receive(f"CTL-{i}") for i in range(5)]
    other = await console.receive("ADT-1", message_type="ADT^A03")
    async with console.logged_in("viewer") as client:
        first = (await client.get("/api/messages", params={"type": "ORU^R01", "limit": 3})).json()
        second = (await client.get("/api/messages", params={"type": "ORU^R01", "limit": 3,
                                                            "before": first["next"]})).json()
        by_id = (await client.get("/api/messages", params={"control_id": "CTL-2"})).json()
        bad = await client.get("/api/messages", params={"before": "not a cursor"})
    assert [m["key"] for m in first["messages"] + second["messages"]] == keys[::-1]
    assert second["next"] is None
    assert other not in [m["key"] for m in first["messages"]]
    assert [m["key"] for m in by_id["messages"]] == [keys[2]]
    assert bad.status_code == 400


async def test_viewer_gets_metadata_never_the_raw_message(console):
    key = await console.receive("CTL-PRIV")
    async with console.logged_in("viewer") as client:
        listing = await client.get("/api/messages")
        timeline = await client.get(f"/api/messages/{key}")
        page = await client.get(f"/messages/{key}")
    for response in (listing, timeline, page):
        assert "DURAND" not in response.text and "PID|" not in response.text
    assert timeline.json()["message"]["control_id"] == "CTL-PRIV"
    assert "role does not see it" in page.text


async def test_operator_sees_the_raw_message_and_the_view_is_audited(console):
    key = await console.receive("CTL-RAW")
    async with console.logged_in("operator") as client:
        raw = await client.get(f"/api/messages/{key}/raw")
        page = await client.get(f"/messages/{key}")
    assert raw.text.splitlines()[1].startswith("PID|||700123")
    assert "DURAND^Helene" in page.text
    audits = [e for e in await console.journal.events(key) if e.state == "audit"]
    assert [e.detail for e in audits] == ["raw message viewed by operator (API)", "raw message viewed by operator"]


async def test_operator_releases_a_parked_message_once_and_it_is_audited(console):
    key = await console.receive("CTL-PARK")
    await console.park(key, "CDA fails the schema")
    async with console.logged_in("operator") as client:
        listed = (await client.get("/api/parked")).json()["parked"]
        token = (await client.get("/api/session")).json()["csrf"]
        released = await client.post(f"/api/parked/inbound/{key}/release", headers={"x-csrf-token": token})
        again = await client.post(f"/api/parked/inbound/{key}/release", headers={"x-csrf-token": token})
    assert listed == [{"queue": "inbound", "message_id": key, "message_key": key, "reason": "CDA fails the schema",
                       "attempt": 0}]
    assert released.json() == {"released": True, "message_key": key, "outcome": "released from inbound"}
    assert again.status_code == 404
    assert await console.bus.parked(queues.INBOUND) == []
    assert [e.detail for e in await console.journal.events(key) if e.step == "release"] == [
        "by operator: released from inbound"]


async def test_release_page_asks_for_confirmation_then_releases(console):
    key = await console.receive("CTL-PAGE")
    await console.park(key)
    async with console.logged_in("operator") as client:
        confirm = await client.get(f"/parked/inbound/{key}/release")
        unconfirmed = await client.post(f"/parked/inbound/{key}/release", data={"csrf": csrf_of(confirm.text)})
        done = await client.post(f"/parked/inbound/{key}/release",
                                 data={"csrf": csrf_of(confirm.text), "confirm": "yes"})
    assert "Release it" in confirm.text
    assert unconfirmed.status_code == 400
    assert done.status_code == 303 and done.headers["location"] == f"/messages/{key}"
    assert await console.bus.parked(queues.INBOUND) == []


@pytest.mark.parametrize("token", [None, "forged"])
async def test_a_post_without_the_csrf_token_is_refused(console, token):
    key = await console.receive("CTL-CSRF")
    await console.park(key)
    async with console.logged_in("operator") as client:
        api = await client.post(f"/api/parked/inbound/{key}/release",
                                headers={"x-csrf-token": token} if token else {})
        page = await client.post(f"/parked/inbound/{key}/release",
                                 data={"confirm": "yes", **({"csrf": token} if token else {})})
    assert (api.status_code, page.status_code) == (403, 403)
    assert [e.message_id for e in await console.bus.parked(queues.INBOUND)] == [key]


async def test_login_without_csrf_token_is_refused(console):
    async with console.client() as client:
        response = await client.post("/login", data={"name": "admin", "password": "correct horse battery"})
    assert response.status_code == 403


async def test_five_wrong_passwords_lock_the_account(console):
    async with console.client() as client:
        form = await client.get("/login")
        for _ in range(5):
            wrong = await client.post("/login", data={"name": "viewer", "password": "wrong password!",
                                                      "csrf": csrf_of(form.text)})
        right = await client.post("/login", data={"name": "viewer", "password": "correct horse battery",
                                                  "csrf": csrf_of(form.text)})
    assert wrong.status_code == 401 and "locked" in wrong.text
    assert right.status_code == 401 and "locked" in right.text
    assert console.users.user("viewer").locked_until is not None
    assert [row[4] for row in console.users.audit_trail(6)][::-1] == ["wrong password"] * 4 + [
        "locked after failures", "locked"]


async def test_a_disabled_user_loses_the_open_session(console):
    async with console.logged_in("viewer") as client:
        assert (await client.get("/api/messages")).status_code == 200
        console.users.disable("viewer")
        assert (await client.get("/api/messages")).status_code == 401


async def test_session_cookie_and_security_headers(console):
    async with console.client() as client:
        form = await client.get("/login")
    cookie = form.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "default-src 'none'" in form.headers["content-security-policy"]
    assert form.headers["x-frame-options"] == "DENY"
    assert form.headers["x-content-type-options"] == "nosniff"


async def test_readyz_says_which_part_does_not_answer(console):
    await console.bus.close()
    async with console.client() as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["journal"] == "ok" and response.json()["bus"].startswith("unavailable")


def test_roles_are_ordered():
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR)


async def test_over_https_the_session_cookie_is_secure(console):
    from channels.console.app import create_app
    app = create_app(console.journal, console.bus, console.users, https=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://console.test") as client:
        form = await client.get("/login")
    assert "secure" in form.headers["set-cookie"].lower()
    assert form.headers["strict-transport-security"].startswith("max-age=")


async def test_the_raw_message_is_html_escaped(console):
    key = await console.receive("CTL-ESC", raw=b"MSH|^~\\&|DXCARE|CHU|||||ORU^R01|CTL-1|P|2.5\rNTE|1||<script>x</script>\r")
    async with console.logged_in("operator") as client:
        page = await client.get(f"/messages/{key}")
    assert "NTE|1||&lt;script&gt;x&lt;/script&gt;" in page.text and "<script>" not in page.text


async def test_a_viewer_never_sees_a_patient_mailbox(console):
    from datetime import UTC, datetime

    from router.ports import JournalEvent, Outcome, OutcomeStatus
    key = await console.receive("CTL-PAT")
    patient = "285057512345623@patient.mssante.fr"
    await console.journal.record_outcome(Outcome("DOC-1", patient, OutcomeStatus.ACCEPTED, f"250 ok for <{patient}>",
                                                 datetime.now(UTC), key))
    await console.journal.add_event(JournalEvent(key, datetime.now(UTC), "dispatched", "dispatched",
                                                 f"document DOC-1 to dr.martin@hopital-test.mssante.fr, {patient}",
                                                 document_id="DOC-1"))
    async with console.logged_in("viewer") as viewer:
        seen = [await viewer.get(f"/api/messages/{key}"), await viewer.get(f"/messages/{key}")]
    async with console.logged_in("operator") as operator:
        full = await operator.get(f"/api/messages/{key}")
    for response in seen:
        assert "285057512345623" not in response.text
        assert "(patient)@patient.mssante.fr" in response.text and "dr.martin@hopital-test.mssante.fr" in response.text
    assert patient in full.text


async def test_a_message_shows_each_mail_with_its_recipients_steps_and_masks_the_patients_for_a_viewer(console):
    from datetime import UTC, datetime

    from router.model import MessageSource
    from router.ports import MailRecipient, MailStep, SentMail
    key = await console.receive("CTL-MAIL")
    patient = "285057512345623@patient.mssante.fr"
    await console.journal.record_mail(SentMail(
        "ENV-1", "<m1@liaison.test>", key, "DOC-1", "DOC-1",
        MessageSource("DXCARE", "CHU-TEST", "LIAISON", "CHU-TEST", "CTL-MAIL", "ORU^R01"),
        recipients=(MailRecipient("dr.martin@hopital-test.mssante.fr", "810000123454"),
                    MailRecipient(patient, "285057512345623"))))
    delivered = datetime(2026, 12, 6, 9, 31, 2, tzinfo=UTC)
    await console.journal.mark_mail("ENV-1", "dr.martin@hopital-test.mssante.fr", MailStep.RELAYED, at=delivered)
    await console.journal.mark_mail("ENV-1", "dr.martin@hopital-test.mssante.fr", MailStep.DELIVERED, at=delivered,
                                    detail="delivered 2.0.0")
    await console.journal.mark_mail("ENV-1", patient, MailStep.FAILED, at=delivered, detail=f"failed 5.1.1 <{patient}>")

    async with console.logged_in("viewer") as viewer:
        page = await viewer.get(f"/messages/{key}")
        api = (await viewer.get(f"/api/messages/{key}")).json()
    assert 'id="mails"' in page.text and "2026-12-06 09:31:02" in page.text and "&lt;m1@liaison.test&gt;" in page.text
    [mail] = api["mails"]
    martin = next(r for r in mail["recipients"] if r["address"].startswith("dr.martin"))
    assert martin["delivered_at"] == delivered.isoformat() and martin["read_at"] is None
    for text in (page.text, str(api)):
        assert "285057512345623" not in text
