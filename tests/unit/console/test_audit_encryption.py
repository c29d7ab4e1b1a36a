"""The console audit is encrypted like the journal: its free text sealed under a key derived from the journal's."""

from __future__ import annotations

import sqlite3

import pytest

from channels.console.users import SqliteUsers
from router.errors import ConfigError

KEY, OTHER = bytes(range(32)), bytes(range(1, 33))
SECRET = "discarded: the patient DUPONT Jeanne asked for it"


def test_the_outcome_is_sealed_and_read_back_with_the_key(tmp_path):
    path = tmp_path / "users.sqlite"
    users = SqliteUsers(path, journal_key=KEY).open()
    users.audit("alice", "discard", "K-1", SECRET)
    [row] = users.audit_page(target="K-1")
    assert (row.user, row.action, row.target, row.outcome) == ("alice", "discard", "K-1", SECRET)
    assert users.audit_trail(1)[0][4] == SECRET
    users.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("users.sqlite*"))
    assert b"DUPONT" not in stored and b"alice" in stored                  # the filters' columns stay clear


def test_a_sealed_row_moved_to_another_row_does_not_open(tmp_path):
    path = tmp_path / "users.sqlite"
    users = SqliteUsers(path, journal_key=KEY).open()
    users.audit("alice", "discard", "K-1", SECRET)
    users.audit("bob", "discard", "K-2", "nothing")
    users.close()
    with sqlite3.connect(path) as conn:                                    # K-1's sealed text pasted onto K-2
        conn.execute("UPDATE audit SET outcome = (SELECT outcome FROM audit WHERE target = 'K-1') "
                     "WHERE target = 'K-2'")
    users = SqliteUsers(path, journal_key=KEY).open()
    [moved] = users.audit_page(target="K-2")
    assert moved.outcome.startswith("(cannot be read") and "DUPONT" not in moved.outcome
    users.close()


@pytest.mark.parametrize("key", [OTHER, None])
def test_a_file_written_with_a_key_refuses_another_key_or_none(tmp_path, key):
    path = tmp_path / "users.sqlite"
    SqliteUsers(path, journal_key=KEY).open().close()
    with pytest.raises(ConfigError, match="journal_key"):
        SqliteUsers(path, journal_key=key).open()


def test_rows_written_before_the_key_was_set_stay_readable(tmp_path):
    path = tmp_path / "users.sqlite"
    clear = SqliteUsers(path).open()
    clear.audit("alice", "login", "", "ok")
    clear.close()
    users = SqliteUsers(path, journal_key=KEY).open()
    users.audit("alice", "logout", "", "bye")
    assert [(r.action, r.outcome) for r in users.audit_page()] == [("logout", "bye"), ("login", "ok")]
    users.close()
