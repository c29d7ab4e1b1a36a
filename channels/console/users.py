"""The console's local users and their login audit, in a small SQLite file of their own.

Why not the journal's database: users are no message data, the console is
the only reader, and the journal is growing a PostgreSQL adapter; a file of
its own (``[console] users``, mode 0600) keeps the Journal port and schema
out of it. Actions on messages (a raw message viewed, a release) are audited
in the journal itself, on the message's timeline.

- Passwords: argon2id hashes (argon2-cffi's defaults), rehashed on login when
  the parameters change. No default account: ``liaison user add`` makes them.
- Lockout: ``MAX_FAILURES`` wrong passwords in a row lock the account for
  ``LOCK_FOR``; a right password resets the count. A disabled user cannot log in.
- ``audit``: one row per login, failed login, lockout, user change, token
  refused, payload viewed and action on a message (user, time, target,
  outcome); read by admins at ``/audit``, pruned after ``[retention]
  audit_days``. Encrypted like the journal: with the journal key, the outcome
  (the row's free text) is sealed with AES-256-GCM under a key derived from it
  (HKDF, its own label), bound to the row's time, user, action and target;
  those stay clear, as the journal's keys and states do, so the page filters
  on them. A file written with one key refuses another (a sealed check value).
- ``settings``: the random secret that signs session cookies, made on creation.
- ``tokens``: API tokens for the REST API (``Authorization: Bearer``), each a
  user's with that user's role; only their SHA-256 is kept, shown once at
  creation, revocable one by one or all of a user's at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from channels.cipher import Codec, DecryptError, aad, make_codec
from router.errors import ConfigError, TransientError

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
MIN_PASSWORD = 12
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0, locked_until TEXT, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL DEFAULT '')""",
    "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
    # The audit page filters by user, action or target, newest first; retention removes by age.
    "CREATE INDEX IF NOT EXISTS audit_by_user ON audit (user, id)",
    "CREATE INDEX IF NOT EXISTS audit_by_action ON audit (action, id)",
    "CREATE INDEX IF NOT EXISTS audit_by_target ON audit (target, id)",
    "CREATE INDEX IF NOT EXISTS audit_by_at ON audit (at)",
    """CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY, user TEXT NOT NULL, hash TEXT NOT NULL, created_at TEXT NOT NULL,
        revoked_at TEXT, last_used_at TEXT)""",
)
#: An API token: ``lsn_<id>_<secret>``; ``id`` (public, 8 hex) finds the row, the SHA-256 of the whole token is
#: what is kept and compared (in constant time). 32 random bytes: no need for a slow hash.
TOKEN_PREFIX = "lsn_"


class Role(StrEnum):
    VIEWER = "viewer"        # counts and metadata, never patient payloads
    OPERATOR = "operator"    # payloads and actions (release)
    ADMIN = "admin"          # what an operator does, and users

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    disabled: bool = False
    failures: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    user: str
    action: str          # login, user.add, token, payload.view, release, retry_recipient, discard, replay, ...
    target: str          # a message key, a user name, a path
    outcome: str


@dataclass(frozen=True)
class LoginResult:
    user: User | None          # set only when the login succeeded
    reason: str = ""           # "wrong" (name or password), "locked", "disabled"


class SqliteUsers:
    """Users, their argon2id hashes, lockout counters and the login audit, in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], *, hasher: PasswordHasher | None = None, actor: str = "cli",
                 journal_key: bytes | None = None):
        """``actor``: who the audit names for user and token changes made through this store (the CLI's user);
        ``journal_key``: the journal's key (``engine.journal_key``), from which the audit's own key is derived."""
        self.actor = actor
        self.path = Path(path)
        self._codec: Codec = make_codec(audit_key(journal_key) if journal_key is not None else None)
        self._hasher = hasher or PasswordHasher()
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> SqliteUsers:
        """Create the file (0600) and its tables if needed."""
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not self.path.exists():
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute("INSERT OR IGNORE INTO settings VALUES ('session_secret', ?)", (secrets.token_bytes(32),))
                self._check_key(conn)
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError("console.users", f"{self.path}: {exc}") from exc
            self._conn = conn
        return self

    def _check_key(self, conn: sqlite3.Connection) -> None:
        """The first open with a key seals a check value; later opens must open it with the same key."""
        where = aad("settings", "audit_key_check")
        if self._codec.encrypted:
            conn.execute("INSERT OR IGNORE INTO settings VALUES ('audit_key_check', ?)",
                         (self._codec.seal_bytes(b"liaison audit", where),))
        row = conn.execute("SELECT value FROM settings WHERE name = 'audit_key_check'").fetchone()
        if row is None:
            return
        if not self._codec.encrypted:
            conn.close()
            raise ConfigError("engine.journal_key", f"{self.path}: the console audit is encrypted; give the journal "
                                                    "key it was written with (LIAISON_JOURNAL_KEY or its file)")
        try:
            self._codec.open_bytes(row[0], where)
        except DecryptError as exc:
            conn.close()
            raise ConfigError("engine.journal_key", f"{self.path}: the console audit was written with another "
                                                    "journal key") from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self._conn is None:
            raise TransientError("console users store is not open")
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise TransientError(f"console users store unavailable: {exc}") from exc

    # ------------------------------------------------------------ management

    def session_secret(self) -> bytes:
        return self._run("SELECT value FROM settings WHERE name = 'session_secret'")[0][0]

    def add(self, name: str, role: Role, password: str) -> User:
        """Create a user; ValueError for a bad name, a short password or a name in use."""
        if not _NAME.fullmatch(name):
            raise ValueError("a user name is 1 to 64 letters, digits, '.', '_' or '-'")
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
        now = _now()
        try:
            self._run("INSERT INTO users (name, role, hash, created_at) VALUES (?, ?, ?, ?)",
                      (name, str(Role(role)), self._hasher.hash(password), now.isoformat()))
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"user {name!r} exists already") from exc
        self.audit(self.actor, "user.add", name, str(role))
        return User(name, Role(role), created_at=now)

    def users(self) -> list[User]:
        return [_user(row) for row in self._run(f"SELECT {_COLUMNS} FROM users ORDER BY name")]

    def user(self, name: str) -> User | None:
        rows = self._run(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    def disable(self, name: str) -> bool:
        done = bool(self._run("UPDATE users SET disabled = 1 WHERE name = ? RETURNING name", (name,)))
        if done:
            self.audit(self.actor, "user.disable", name, "disabled")
        return done

    def enable(self, name: str) -> bool:
        done = bool(self._run("UPDATE users SET disabled = 0 WHERE name = ? RETURNING name", (name,)))
        if done:
            self.audit(self.actor, "user.enable", name, "enabled")
        return done

    def reset(self, name: str, password: str) -> bool:
        """A new password, and the lockout cleared; False when there is no such user."""
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
        done = bool(self._run("UPDATE users SET hash = ?, failures = 0, locked_until = NULL WHERE name = ? "
                              "RETURNING name", (self._hasher.hash(password), name)))
        if done:
            self.audit(self.actor, "user.reset", name, "password set, lockout cleared")
        return done

    # ---------------------------------------------------------------- tokens

    def new_token(self, name: str) -> tuple[str, str]:
        """A new API token for ``name``: (token id, the token itself, to show once). KeyError: no such user."""
        if self.user(name) is None:
            raise KeyError(name)
        token_id = secrets.token_hex(4)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        self._run("INSERT INTO tokens (id, user, hash, created_at) VALUES (?, ?, ?, ?)",
                  (token_id, name, _digest(token), _now().isoformat()))
        self.audit(self.actor, "token.add", name, f"token {token_id}")
        return token_id, token

    def tokens(self, name: str) -> list[tuple[str, str, str | None, str | None]]:
        """``name``'s tokens: (id, created_at, revoked_at, last_used_at), oldest first."""
        return self._run("SELECT id, created_at, revoked_at, last_used_at FROM tokens WHERE user = ? "
                         "ORDER BY created_at", (name,))

    def revoke(self, name: str, token_id: str | None = None) -> int:
        """Revoke one of ``name``'s tokens (or all of them); how many were live."""
        sql = "UPDATE tokens SET revoked_at = ? WHERE user = ? AND revoked_at IS NULL"
        params: list = [_now().isoformat(), name]
        if token_id is not None:
            sql, params = sql + " AND id = ?", params + [token_id]
        count = len(self._run(sql + " RETURNING id", tuple(params)))
        self.audit(self.actor, "token.revoke", name, f"{count} token(s) {token_id or 'all'}")
        return count

    def token_user(self, token: str) -> User | None:
        """The enabled user a live token belongs to, or None (unknown, revoked, malformed, user disabled)."""
        parts = token.split("_")
        if len(parts) < 3 or not token.startswith(TOKEN_PREFIX):
            return None
        rows = self._run("SELECT user, hash FROM tokens WHERE id = ? AND revoked_at IS NULL", (parts[1],))
        if not rows or not hmac.compare_digest(rows[0][1], _digest(token)):
            return None
        user = self.user(rows[0][0])
        if user is None or user.disabled:
            return None
        self._run("UPDATE tokens SET last_used_at = ? WHERE id = ?", (_now().isoformat(), parts[1]))
        return user

    def audit(self, user: str, action: str, target: str = "", outcome: str = "") -> None:
        at = _now().isoformat()
        self._run("INSERT INTO audit (at, user, action, target, outcome) VALUES (?, ?, ?, ?, ?)",
                  (at, user, action, target, self._codec.seal_text(outcome, aad("audit", at, user, action, target))))

    def _outcome(self, at: str, user: str, action: str, target: str, stored: str | bytes) -> str:
        """A row's outcome in clear; a row written before the key was set is clear already."""
        if isinstance(stored, str):
            return stored
        try:
            return self._codec.open_text(stored, aad("audit", at, user, action, target))
        except DecryptError as exc:
            return f"(cannot be read: {exc})"

    async def audit_async(self, user: str, action: str, target: str = "", outcome: str = "") -> None:
        """:meth:`audit` for async callers (the actions service's audit writer)."""
        await asyncio.to_thread(self.audit, user, action, target, outcome)

    def audit_page(self, *, before: int | None = None, limit: int = 50, user: str | None = None,
                   action: str | None = None, target: str | None = None) -> list[AuditRow]:
        """Audit rows newest first, keyset-paged by id (``before``: the last id of the previous page)."""
        clauses, params = [], []
        for column, value in (("id < ?", before), ("user = ?", user), ("action = ?", action),
                              ("target = ?", target)):
            if value is not None and value != "":
                clauses.append(column)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._run(f"SELECT id, at, user, action, target, outcome FROM audit {where} ORDER BY id DESC LIMIT ?",
                         (*params, limit))
        return [AuditRow(row[0], datetime.fromisoformat(row[1]), row[2], row[3], row[4], self._outcome(*row[1:]))
                for row in rows]

    def prune_audit(self, before: datetime, limit: int = 1000) -> int:
        """Remove up to ``limit`` audit rows older than ``before`` (the audit's own retention); how many."""
        return len(self._run("DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? ORDER BY id LIMIT ?) "
                             "RETURNING id", (before.isoformat(), limit)))

    def audit_trail(self, limit: int = 100) -> list[tuple[str, str, str, str, str]]:
        """The latest audit rows, newest first: (at, user, action, target, outcome)."""
        rows = self._run("SELECT at, user, action, target, outcome FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [(*row[:4], self._outcome(*row)) for row in rows]

    # ----------------------------------------------------------------- login

    async def login(self, name: str, password: str) -> LoginResult:
        """Check a password (argon2 in a thread); count failures, lock, and audit every attempt."""
        return await asyncio.to_thread(self._login, name, password)

    def _login(self, name: str, password: str) -> LoginResult:
        now = _now()
        rows = self._run("SELECT hash FROM users WHERE name = ?", (name,))
        user = self.user(name)
        if user is None or not rows:
            _verify(self._hasher, _DUMMY_HASH, password)       # the same work for an unknown name
            self.audit(name[:64], "login", "", "unknown user")
            return LoginResult(None, "wrong")
        if user.disabled:
            self.audit(name, "login", "", "disabled")
            return LoginResult(None, "disabled")
        if user.locked(now):
            self.audit(name, "login", "", "locked")
            return LoginResult(None, "locked")
        if not _verify(self._hasher, rows[0][0], password):
            failures = user.failures + 1
            locked = (now + LOCK_FOR).isoformat() if failures >= MAX_FAILURES else None
            self._run("UPDATE users SET failures = ?, locked_until = ? WHERE name = ?",
                      (0 if locked else failures, locked, name))
            self.audit(name, "login", "", "locked after failures" if locked else "wrong password")
            return LoginResult(None, "locked" if locked else "wrong")
        self._run("UPDATE users SET failures = 0, locked_until = NULL WHERE name = ?", (name,))
        if self._hasher.check_needs_rehash(rows[0][0]):
            self._run("UPDATE users SET hash = ? WHERE name = ?", (self._hasher.hash(password), name))
        self.audit(name, "login", "", "ok")
        return LoginResult(self.user(name))


_COLUMNS = "name, role, disabled, failures, locked_until, created_at"
_DUMMY_HASH = PasswordHasher().hash(secrets.token_hex(16))


def _verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _user(row: tuple) -> User:
    name, role, disabled, failures, locked_until, created_at = row
    return User(name=name, role=Role(role), disabled=bool(disabled), failures=failures,
                locked_until=datetime.fromisoformat(locked_until) if locked_until else None,
                created_at=datetime.fromisoformat(created_at))


def _now() -> datetime:
    return datetime.now(UTC)


def audit_key(journal_key: bytes) -> bytes:
    """The audit's own 32-byte key, derived from the journal key (never the journal key itself)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"liaison console audit v1").derive(journal_key)
