"""API tokens and the new user commands: reset clears the lockout, tokens act with their user's role.

``liaison user token`` prints a token once; only its SHA-256 is kept. A bearer caller needs no CSRF
token, a revoked, wrong or malformed token is refused (401) whatever cookie comes along, and a
disabled user's tokens stop working. Every use of an admin command is audited.
"""

from __future__ import annotations

import getpass
import hashlib
import sqlite3

import pytest

from channels.console.users import MAX_FAILURES
from router.ports import MessageState
from tests.support.console import PASSWORD, login, user


def test_token_is_printed_once_and_kept_only_as_its_hash(config, monkeypatch, capsys, tmp_path):
    assert user(config, monkeypatch, "add", "ops", "--role", "operator", "--password-stdin",
                stdin="a long enough password\n") == 0
    capsys.readouterr()
    assert user(config, monkeypatch, "token", "ops") == 0
    printed = capsys.readouterr()
    token = printed.out.strip()
    assert token.startswith("lsn_") and len(token) > 40 and "shown once" in printed.err
    rows = sqlite3.connect(tmp_path / "users.sqlite").execute("SELECT id, hash FROM tokens").fetchall()
    assert rows == [(token.split("_")[1], hashlib.sha256(token.encode()).hexdigest())]
    assert token not in (tmp_path / "users.sqlite").read_bytes().decode("latin-1")
    assert user(config, monkeypatch, "tokens", "ops") == 0
    listing = capsys.readouterr().out
    assert token.split("_")[1] in listing and token not in listing
    assert user(config, monkeypatch, "revoke", "ops", "--id", "nothere") == 1
    assert user(config, monkeypatch, "revoke", "ops") == 0
    assert "1 token(s) of ops revoked" in capsys.readouterr().out
    assert user(config, monkeypatch, "token", "nobody") == 1
    assert "no user 'nobody'" in capsys.readouterr().err
    audit = sqlite3.connect(tmp_path / "users.sqlite").execute("SELECT user, action, target FROM audit").fetchall()
    by = f"cli:{getpass.getuser()}"                        # who ran the command
    assert (by, "token.add", "ops") in audit and (by, "token.revoke", "ops") in audit


async def test_reset_sets_a_new_password_and_clears_the_lockout(console, monkeypatch):
    async with console.client() as client:
        for _ in range(MAX_FAILURES):
            await login(client, "operator", "wrong password here")
        locked = await login(client, "operator", PASSWORD)
    assert locked.status_code == 401 and "locked" in locked.text
    assert console.users.reset("operator", "a brand new password") is True
    with pytest.raises(ValueError, match="at least 12"):
        console.users.reset("operator", "short")
    async with console.client() as client:
        old = await login(client, "operator", PASSWORD)
        new = await login(client, "operator", "a brand new password")
    assert old.status_code == 401 and new.status_code == 303
    assert ("cli", "user.reset", "operator") in [(u, a, t) for _, u, a, t, _ in console.users.audit_trail()]


def test_reset_and_enable_from_the_command_line(config, monkeypatch, capsys):
    assert user(config, monkeypatch, "add", "eve", "--role", "viewer", "--password-stdin",
                stdin="a long enough password\n") == 0
    assert user(config, monkeypatch, "disable", "eve") == 0
    assert user(config, monkeypatch, "enable", "eve") == 0
    assert user(config, monkeypatch, "reset", "eve", "--password-stdin", stdin="another long password\n") == 0
    assert user(config, monkeypatch, "reset", "eve", "--password-stdin", stdin="short\n") == 2
    assert user(config, monkeypatch, "reset", "nobody", "--password-stdin", stdin="another long password\n") == 1
    out = capsys.readouterr()
    assert "user eve enabled" in out.out and "new password set, lockout cleared" in out.out
    assert "at least 12 characters" in out.err and "no user 'nobody'" in out.err


ROLES = ("viewer", "operator", "admin")
# (method, path, expected status per role with a valid token)
BEARER = [
    ("GET", "/api/messages", (200, 200, 200)),
    ("GET", "/api/messages/{key}/raw", (403, 200, 200)),
    ("POST", "/api/messages/{key}/discard", (403, 200, 200)),
    ("POST", "/api/messages/{key}/retry-recipient", (403, 409, 409)),
]


@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
@pytest.mark.parametrize("method,path,expected", BEARER, ids=[f"{m} {p}" for m, p, _ in BEARER])
async def test_a_valid_token_acts_with_its_users_role_without_csrf(console, role_index, role, method, path,
                                                                   expected):
    key = await console.receive("CTL-TOK")
    await console.journal.set_state(key, MessageState.FAILED, step="test")
    _, token = console.users.new_token(role)
    async with console.client() as client:
        response = await client.request(method, path.format(key=key), headers={"authorization": f"Bearer {token}"},
                                         json={"reason": "by script", "recipient": "a@x.mssante.fr"}
                                         if method == "POST" else None)
    assert response.status_code == expected[role_index], response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("how", ["revoked", "wrong secret", "unknown id", "malformed", "not bearer",
                                 "user disabled"])
async def test_a_bad_token_is_refused_even_with_a_valid_session(console, how):
    key = await console.receive("CTL-BAD")
    await console.journal.set_state(key, MessageState.FAILED, step="test")
    token_id, token = console.users.new_token("admin")
    header = {"revoked": f"Bearer {token}", "wrong secret": f"Bearer {token[:-4]}AAAA",
              "unknown id": f"Bearer lsn_00000000_{token.split('_', 2)[2]}", "malformed": "Bearer lsn_",
              "not bearer": f"Basic {token}", "user disabled": f"Bearer {token}"}[how]
    if how == "revoked":
        assert console.users.revoke("admin", token_id) == 1
    async with console.logged_in("admin") as client:       # a good session cookie rides along: it must not count
        csrf = (await client.get("/api/session")).json()["csrf"]
        if how == "user disabled":
            console.users.disable("admin")
        listing = await client.get("/api/messages", headers={"authorization": header})
        discard = await client.post(f"/api/messages/{key}/discard", json={"reason": "x"},
                                    headers={"authorization": header, "x-csrf-token": csrf})
    assert listing.status_code == 401 and discard.status_code == 401
    assert listing.headers["www-authenticate"] == "Bearer"
    assert (await console.journal.message(key)).state == MessageState.FAILED
    assert ("-", "token", "/api/messages", "refused") in [(u, a, t, o) for _, u, a, t, o in
                                                         console.users.audit_trail()]


async def test_a_token_caller_gets_no_csrf_token_and_a_session_caller_still_needs_one(console):
    _, token = console.users.new_token("operator")
    key = await console.receive("CTL-CSRF")
    await console.journal.set_state(key, MessageState.FAILED, step="test")
    async with console.client() as client:
        session = await client.get("/api/session", headers={"authorization": f"Bearer {token}"})
    async with console.logged_in("operator") as client:
        no_csrf = await client.post(f"/api/messages/{key}/discard", json={"reason": "x"})
    assert session.json() == {"user": "operator", "role": "operator", "csrf": None}
    assert no_csrf.status_code == 403
