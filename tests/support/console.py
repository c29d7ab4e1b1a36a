"""What the console's API tests and browser tests share: users' password and a fast argon2id hasher."""

from __future__ import annotations

import io
import re

import httpx
from argon2 import PasswordHasher

from channels.app.cli.main import main
from channels.console.users import Role, SqliteUsers

PASSWORD = "correct horse battery"
#: argon2id with light parameters: the same code path, fast enough for a suite that logs in often.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


def users_file(path) -> SqliteUsers:
    """An opened users file with one user per role, named after it, all with ``PASSWORD``."""
    users = SqliteUsers(path, hasher=FAST_HASHER).open()
    for role in Role:
        users.add(str(role), role, PASSWORD)
    return users


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def login(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    """Log in through the login page, as a browser would (its form's CSRF token included)."""
    form = await client.get("/login")
    return await client.post("/login", data={"name": name, "password": password, "csrf": csrf_of(form.text)})


def user(config, monkeypatch, *args: str, stdin: str = "") -> int:
    """Run ``liaison user ARGS -c config`` with ``stdin`` as its standard input; its exit status."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["user", "-c", str(config), *args])
