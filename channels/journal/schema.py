"""The SQLite journal's schema, its version table, and the encryption check.

Tables:

- ``messages``: one row per received message. ``raw`` holds exactly the bytes
  received (or their AES-GCM envelope); identifiers, states and timestamps are
  clear columns for search. ``UNIQUE (sending_application, control_id)`` is the
  idempotency key (MSH-3 + MSH-10, see ``sqlite.py`` for why not MSH-4).
- ``events``: the append-only timeline (an UPDATE trigger refuses rewrites).
- ``outcomes``: the current outcome per (document id, destination); every
  outcome is also appended to ``events``, so history is never lost.
- ``settings``: whether the journal is encrypted, and a key-check value.
- ``stays`` (v2): the current state of each stay (encounter) the ADT feed
  described, keyed by (facility, encounter), with its lettre de liaison
  deadline; the INS column is encrypted like ``detail`` (``stays.py``).
- ``documents`` (v3): every document render mode produced, keyed by
  (facility, source id: TXA-12 or the lab's filler order number), with its
  CDA id, setId and version, so that a replacement continues the set and a
  cancellation finds what it cancels; the CDA itself is encrypted like
  ``raw`` (``documents.py``).
- ``dmp_entries`` (v4): for each document deposited in the DMP, the registry
  entry (entryUUID, version) holding it now, so that a masking change, a
  replacement or a deletion names the current version (identifiers only).
- ``dmp_consents`` (v5): the patient's DMP consent in force (the latest PAM-FR
  ZFA the ADT feed gave), keyed by (facility, IPP), sealed like ``detail``
  (``consents.py``); ``stays`` gains ``dmp_consent``, the same consent sealed
  for each stay of that patient (NULL when none is known), and an index by
  (facility, ipp) to find a patient's stays.
- ``document_contents`` (v6): the content (SHA-256 of the CDA) each dispatched
  document id stands for and the message that first dispatched it, so that a
  re-send is answered without mailing again and a reused id with other content
  is refused (identifiers only); and an index of the SENDING claims for the
  sweep that finds those whose worker died.
- ``schema_version``: one row per applied migration; later versions append to
  ``MIGRATIONS`` and never edit an applied one.

Timestamps are UTC ISO-8601 text with microseconds
(``2024-05-01T10:00:00.000000+00:00``): fixed width, so they sort as text.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from channels.cipher import Codec, DecryptError, EncryptionKeyError, aad
from router.errors import ConfigError

KEY_CHECK_PLAINTEXT = b"liaison journal key check v1"

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE messages (
            key                 TEXT PRIMARY KEY,
            raw                 BLOB NOT NULL,
            channel             TEXT NOT NULL,
            peer                TEXT NOT NULL DEFAULT '',
            sending_application TEXT NOT NULL,
            sending_facility    TEXT NOT NULL,
            control_id          TEXT NOT NULL,
            message_type        TEXT NOT NULL,
            state               TEXT NOT NULL,
            ack_code            TEXT NOT NULL DEFAULT '',
            detail              BLOB NOT NULL,
            received_at         TEXT NOT NULL,
            updated_at          TEXT NOT NULL,
            UNIQUE (sending_application, control_id)
        )""",
        "CREATE INDEX messages_by_received ON messages (received_at)",
        "CREATE INDEX messages_by_state ON messages (state, received_at)",
        "CREATE INDEX messages_by_control_id ON messages (control_id)",
        """CREATE TABLE events (
            id          INTEGER PRIMARY KEY,
            message_key TEXT NOT NULL,
            at          TEXT NOT NULL,
            step        TEXT NOT NULL,
            state       TEXT NOT NULL,
            detail      BLOB NOT NULL,
            document_id TEXT NOT NULL DEFAULT '',
            destination TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX events_by_message ON events (message_key, at)",
        "CREATE INDEX events_by_document ON events (document_id) WHERE document_id <> ''",
        """CREATE TRIGGER events_append_only BEFORE UPDATE ON events
           BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END""",
        """CREATE TABLE outcomes (
            document_id TEXT NOT NULL,
            destination TEXT NOT NULL,
            status      TEXT NOT NULL,
            detail      BLOB NOT NULL,
            at          TEXT NOT NULL,
            message_key TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (document_id, destination)
        )""",
        "CREATE TABLE settings (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
    ),
    2: (
        """CREATE TABLE stays (
            facility              TEXT NOT NULL,
            encounter             TEXT NOT NULL,
            state                 TEXT NOT NULL,
            ipp                   TEXT NOT NULL DEFAULT '',
            ins                   BLOB NOT NULL,
            unit                  TEXT NOT NULL DEFAULT '',
            attending             TEXT NOT NULL DEFAULT '',
            referring             TEXT NOT NULL DEFAULT '',
            medecin_traitant      TEXT NOT NULL DEFAULT '',
            discharge_disposition TEXT NOT NULL DEFAULT '',
            discharge_destination TEXT NOT NULL DEFAULT '',
            admitted_at           TEXT,
            discharged_at         TEXT,
            letter_due_at         TEXT,
            letter_sent_at        TEXT,
            alert_raised_at       TEXT,
            message_key           TEXT NOT NULL DEFAULT '',
            updated_at            TEXT NOT NULL,
            PRIMARY KEY (facility, encounter)
        )""",
        "CREATE INDEX stays_due ON stays (letter_due_at) WHERE state = 'discharged' AND letter_sent_at IS NULL "
        "AND alert_raised_at IS NULL",
    ),
    3: (
        """CREATE TABLE documents (
            facility     TEXT NOT NULL,
            source_id    TEXT NOT NULL,
            document_id  TEXT NOT NULL,
            set_id       TEXT NOT NULL,
            version      INTEGER NOT NULL,
            type_code    TEXT NOT NULL,
            action       TEXT NOT NULL,
            message_key  TEXT NOT NULL,
            cda          BLOB NOT NULL,
            created_at   TEXT NOT NULL,
            PRIMARY KEY (facility, source_id)
        )""",
        "CREATE INDEX documents_by_set ON documents (set_id, version)",
    ),
    4: (
        """CREATE TABLE dmp_entries (
            document_id  TEXT PRIMARY KEY,
            entry_uuid   TEXT NOT NULL,
            version      INTEGER NOT NULL,
            message_key  TEXT NOT NULL,
            updated_at   TEXT NOT NULL
        )""",
    ),
    5: (
        """CREATE TABLE dmp_consents (
            facility     TEXT NOT NULL,
            ipp          TEXT NOT NULL,
            consent      BLOB NOT NULL,
            message_key  TEXT NOT NULL,
            updated_at   TEXT NOT NULL,
            PRIMARY KEY (facility, ipp)
        )""",
        "ALTER TABLE stays ADD COLUMN dmp_consent BLOB",
        "CREATE INDEX stays_by_patient ON stays (facility, ipp)",
    ),
    6: (
        """CREATE TABLE document_contents (
            document_id  TEXT PRIMARY KEY,
            digest       TEXT NOT NULL,
            message_key  TEXT NOT NULL,
            at           TEXT NOT NULL
        )""",
        "CREATE INDEX outcomes_sending ON outcomes (at) WHERE status = 'sending'",
    ),
}
LATEST = max(MIGRATIONS)


def ts(moment: datetime) -> str:
    """Store a datetime as fixed-width UTC text; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to ``LATEST``; idempotent. Returns the version in use."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                     "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        if current > LATEST:
            raise ConfigError("engine.journal", f"journal schema v{current} is newer than this Liaison "
                              f"(knows up to v{LATEST}): upgrade Liaison")
        for version in range(current + 1, LATEST + 1):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, ts(datetime.now(UTC))))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return max(current, LATEST)


def check_codec(conn: sqlite3.Connection, codec: Codec) -> None:
    """Record the encryption mode of a new journal; refuse a key that does not fit an old one."""
    where = aad("settings", "key_check")
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = dict(conn.execute("SELECT name, value FROM settings"))
        if "cipher" not in rows:
            conn.execute("INSERT INTO settings VALUES ('cipher', ?)", (codec.name,))
            if codec.encrypted:
                conn.execute("INSERT INTO settings VALUES ('key_check', ?)",
                             (codec.seal_bytes(KEY_CHECK_PLAINTEXT, where),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    verify_codec(rows, codec)


def verify_codec(rows: dict, codec: Codec) -> None:
    """Refuse a key that does not fit the journal whose ``settings`` rows these are (none: a new journal)."""
    if "cipher" not in rows:
        return
    where = aad("settings", "key_check")
    stored = rows["cipher"]
    if stored != codec.name:
        if codec.encrypted:
            raise EncryptionKeyError("this journal was created without encryption; open it without a key")
        raise EncryptionKeyError(f"this journal is encrypted ({stored}): a key is required to open it")
    if codec.encrypted:
        try:
            ok = codec.open_bytes(rows["key_check"], where) == KEY_CHECK_PLAINTEXT
        except DecryptError:
            ok = False
        if not ok:
            raise EncryptionKeyError("wrong key: it does not decrypt this journal")
