"""``liaison user add|list|disable``: no default account, argon2id hashes, one line per problem."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support.console import user


def test_add_list_disable(config, monkeypatch, capsys, tmp_path):
    assert user(config, monkeypatch, "list") == 0
    assert capsys.readouterr().out.splitlines()[1:] == []                  # no default account
    assert user(config, monkeypatch, "add", "alice", "--role", "admin", "--password-stdin",
                stdin="a long enough password\n") == 0
    assert user(config, monkeypatch, "add", "bob", "--role", "viewer", "--password-stdin",
                stdin="another long password\n") == 0
    assert user(config, monkeypatch, "disable", "bob") == 0
    capsys.readouterr()
    assert user(config, monkeypatch, "list") == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["alice", "admin", "active"], ["bob", "viewer", "disabled"]]
    [stored] = sqlite3.connect(tmp_path / "users.sqlite").execute("SELECT hash FROM users WHERE name = 'alice'").fetchone()
    assert stored.startswith("$argon2id$") and "long enough" not in stored
    assert (tmp_path / "users.sqlite").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("args,stdin,problem", [
    (("add", "carol", "--role", "operator", "--password-stdin"), "short\n", "at least 12 characters"),
    (("add", "bad name", "--role", "operator", "--password-stdin"), "a long enough password\n", "a user name is"),
    (("disable", "nobody"), "", "no user 'nobody'"),
])
def test_problems_are_one_line(config, monkeypatch, capsys, args, stdin, problem):
    assert user(config, monkeypatch, *args, stdin=stdin) in (1, 2)
    err = capsys.readouterr().err
    assert problem in err and len(err.strip().splitlines()) == 1


def test_a_name_in_use_is_refused(config, monkeypatch, capsys):
    for _ in range(2):
        status = user(config, monkeypatch, "add", "alice", "--role", "viewer", "--password-stdin",
                      stdin="a long enough password\n")
    assert status == 2 and "exists already" in capsys.readouterr().err
