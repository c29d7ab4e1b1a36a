"""The journal's schema for both SQL dialects, its versions, and the encryption check.

Tables:

- ``messages``: one row per received message. ``raw`` holds exactly the bytes
  received (or their AES-GCM envelope) up to v10, in ``message_contents`` from
  v11; identifiers, states and timestamps are clear columns for search. ``UNIQUE (sending_application, control_id)`` is the
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
- ``message_identifiers`` (v7): keyed digests (``digests.py``) of each message's IPP, INS,
  document ids and recipient addresses, so that search finds a message by them while the
  database holds none of them in clear; written at ingest (IPP, INS) and when a document is
  bound, rendered or has an outcome (document id, recipient). Rows older than v7 have none
  (a migration cannot compute a keyed digest in SQL): they are found by MSH-10, type, state and
  date. v7 also adds the indexes the console's dashboard counts on (index-only scans by
  time, channel, type and state; outcomes by status and time) and its compliance page reads
  (stays by discharge time).
- v9: indexes of ``outcomes``, ``document_contents``, ``message_identifiers`` and ``notices`` by message key, for
  retention (``retention.py``), which removes a message's rows in batches.
- ``sent_mails``, ``mail_recipients``, ``notices`` (v8): every MSSanté mail sent, by
  its ENVID (RFC 3461) with its Message-ID, the message and document it carries and
  the HL7 header its ZAMs answer (sealed), so that delivery notices (DSN), read
  notices (MDN) and error mails read back over IMAP find it; per recipient, when the
  relay took it and when it was delivered, failed, read or refused (``mails.py``);
  and every notice read, with what was made of it (matched, duplicate, unmatched,
  malformed).
- ``job_contents`` (v10): the CDA of a DocumentJob too large to travel on the bus (over 1 MiB), keyed by
  job id with its message key, sealed like ``raw`` (``job_contents.py``); the bus carries the job without
  it. Retention removes the rows with the message's content.
- ``message_contents`` (v11): the received bytes of each message (or their AES-GCM envelope, sealed
  under the same associated data as before, ``messages``/key/``raw``), moved out of the ``messages`` row,
  which keeps the identifiers, state and timestamps. SQLite rewrites a whole row on every UPDATE: with
  the bytes in the row, each state change of a 35 MiB message took ~70 MiB of SQLite's memory (and
  rewrote its pages). A message whose content retention expired has no row here; v11 moves the
  existing bytes and drops ``messages.raw``.
- ``schema_version``: one row per applied migration.

Migrations: ``VERSIONS`` is one list for both dialects, so that a version
number means the same change on SQLite and PostgreSQL and no change can land
in one and be forgotten in the other. A statement both dialects take as it is
(an index, most of all) is written once; where the types differ it is a
:class:`PerDialect` pair - SQLite keeps timestamps as fixed-width UTC text
(``2024-05-01T10:00:00.000000+00:00``, which sorts as text) and sealed values
as BLOB or TEXT, PostgreSQL uses ``timestamptz`` and ``bytea``, an identity
column where SQLite has its rowid, and ``COLLATE "C"`` on the text it sorts or
compares by order (destinations, facility and encounter, message keys), so
that it orders bytes as SQLite does whatever the database's locale. Later
versions append to ``VERSIONS`` and never edit an applied one. ``MIGRATIONS``
(SQLite) and ``PG_MIGRATIONS`` are the two readings of the list; the adapters
run :func:`migration` at open when allowed (``liaison journal migrate``
otherwise), in one transaction: SQLite under ``BEGIN IMMEDIATE``,
PostgreSQL under an advisory lock, so that several processes opening one
journal apply each version once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from channels.journal.sql import Operation, run_immediate, ts
from router.errors import ConfigError

__all__ = ["LATEST", "MIGRATIONS", "PG_MIGRATIONS", "VERSION_TABLE", "VERSIONS", "migrate", "migration",
           "statements", "ts"]

SQLITE, POSTGRESQL = "sqlite", "postgresql"


@dataclass(frozen=True)
class PerDialect:
    """One statement as each dialect writes it; None where a dialect has nothing to do."""

    sqlite: str | None
    postgresql: str | None

    def of(self, dialect: str) -> str | None:
        return getattr(self, dialect)


VERSIONS: dict[int, tuple[str | PerDialect, ...]] = {
    1: (
        PerDialect(
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
            """CREATE TABLE messages (
            rowid               bigint GENERATED ALWAYS AS IDENTITY,
            key                 text COLLATE "C" PRIMARY KEY,
            raw                 bytea NOT NULL,
            channel             text NOT NULL,
            peer                text NOT NULL DEFAULT '',
            sending_application text NOT NULL,
            sending_facility    text NOT NULL,
            control_id          text NOT NULL,
            message_type        text NOT NULL,
            state               text NOT NULL,
            ack_code            text NOT NULL DEFAULT '',
            detail              bytea NOT NULL,
            received_at         timestamptz NOT NULL,
            updated_at          timestamptz NOT NULL,
            UNIQUE (sending_application, control_id)
        )"""),
        "CREATE INDEX messages_by_received ON messages (received_at)",
        "CREATE INDEX messages_by_state ON messages (state, received_at)",
        "CREATE INDEX messages_by_control_id ON messages (control_id)",
        PerDialect(
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
            """CREATE TABLE events (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            message_key text COLLATE "C" NOT NULL,
            at          timestamptz NOT NULL,
            step        text NOT NULL,
            state       text NOT NULL,
            detail      bytea NOT NULL,
            document_id text NOT NULL DEFAULT '',
            destination text NOT NULL DEFAULT ''
        )"""),
        "CREATE INDEX events_by_message ON events (message_key, at)",
        "CREATE INDEX events_by_document ON events (document_id) WHERE document_id <> ''",
        PerDialect(
            None,
            "CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "'BEGIN RAISE EXCEPTION ''journal events are append-only''; END'"),
        PerDialect(
            """CREATE TRIGGER events_append_only BEFORE UPDATE ON events
           BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END""",
            "CREATE TRIGGER events_append_only BEFORE UPDATE ON events "
            "FOR EACH ROW EXECUTE FUNCTION events_append_only()"),
        PerDialect(
            """CREATE TABLE outcomes (
            document_id TEXT NOT NULL,
            destination TEXT NOT NULL,
            status      TEXT NOT NULL,
            detail      BLOB NOT NULL,
            at          TEXT NOT NULL,
            message_key TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (document_id, destination)
        )""",
            """CREATE TABLE outcomes (
            document_id text NOT NULL,
            destination text COLLATE "C" NOT NULL,
            status      text NOT NULL,
            detail      bytea NOT NULL,
            at          timestamptz NOT NULL,
            message_key text NOT NULL DEFAULT '',
            PRIMARY KEY (document_id, destination)
        )"""),
        PerDialect("CREATE TABLE settings (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
                   "CREATE TABLE settings (name text PRIMARY KEY, value bytea NOT NULL)"),
    ),
    2: (
        PerDialect(
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
            """CREATE TABLE stays (
            facility              text COLLATE "C" NOT NULL,
            encounter             text COLLATE "C" NOT NULL,
            state                 text NOT NULL,
            ipp                   text NOT NULL DEFAULT '',
            ins                   bytea NOT NULL,
            unit                  text NOT NULL DEFAULT '',
            attending             text NOT NULL DEFAULT '',
            referring             text NOT NULL DEFAULT '',
            medecin_traitant      text NOT NULL DEFAULT '',
            discharge_disposition text NOT NULL DEFAULT '',
            discharge_destination text NOT NULL DEFAULT '',
            admitted_at           timestamptz,
            discharged_at         timestamptz,
            letter_due_at         timestamptz,
            letter_sent_at        timestamptz,
            alert_raised_at       timestamptz,
            message_key           text NOT NULL DEFAULT '',
            updated_at            timestamptz NOT NULL,
            PRIMARY KEY (facility, encounter)
        )"""),
        "CREATE INDEX stays_due ON stays (letter_due_at) WHERE state = 'discharged' AND letter_sent_at IS NULL "
        "AND alert_raised_at IS NULL",
    ),
    3: (
        PerDialect(
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
            """CREATE TABLE documents (
            facility     text NOT NULL,
            source_id    text NOT NULL,
            document_id  text NOT NULL,
            set_id       text NOT NULL,
            version      integer NOT NULL,
            type_code    text NOT NULL,
            action       text NOT NULL,
            message_key  text NOT NULL,
            cda          bytea NOT NULL,
            created_at   timestamptz NOT NULL,
            PRIMARY KEY (facility, source_id)
        )"""),
        "CREATE INDEX documents_by_set ON documents (set_id, version)",
    ),
    4: (
        PerDialect(
            """CREATE TABLE dmp_entries (
            document_id  TEXT PRIMARY KEY,
            entry_uuid   TEXT NOT NULL,
            version      INTEGER NOT NULL,
            message_key  TEXT NOT NULL,
            updated_at   TEXT NOT NULL
        )""",
            """CREATE TABLE dmp_entries (
            document_id  text PRIMARY KEY,
            entry_uuid   text NOT NULL,
            version      integer NOT NULL,
            message_key  text NOT NULL,
            updated_at   timestamptz NOT NULL
        )"""),
    ),
    5: (
        PerDialect(
            """CREATE TABLE dmp_consents (
            facility     TEXT NOT NULL,
            ipp          TEXT NOT NULL,
            consent      BLOB NOT NULL,
            message_key  TEXT NOT NULL,
            updated_at   TEXT NOT NULL,
            PRIMARY KEY (facility, ipp)
        )""",
            """CREATE TABLE dmp_consents (
            facility     text NOT NULL,
            ipp          text NOT NULL,
            consent      bytea NOT NULL,
            message_key  text COLLATE "C" NOT NULL,
            updated_at   timestamptz NOT NULL,
            PRIMARY KEY (facility, ipp)
        )"""),
        PerDialect("ALTER TABLE stays ADD COLUMN dmp_consent BLOB", "ALTER TABLE stays ADD COLUMN dmp_consent bytea"),
        "CREATE INDEX stays_by_patient ON stays (facility, ipp)",
    ),
    6: (
        PerDialect(
            """CREATE TABLE document_contents (
            document_id  TEXT PRIMARY KEY,
            digest       TEXT NOT NULL,
            message_key  TEXT NOT NULL,
            at           TEXT NOT NULL
        )""",
            """CREATE TABLE document_contents (
            document_id  text PRIMARY KEY,
            digest       text NOT NULL,
            message_key  text NOT NULL,
            at           timestamptz NOT NULL
        )"""),
        "CREATE INDEX outcomes_sending ON outcomes (at) WHERE status = 'sending'",
    ),
    7: (
        PerDialect(
            """CREATE TABLE message_identifiers (
            digest       BLOB NOT NULL,
            message_key  TEXT NOT NULL,
            PRIMARY KEY (digest, message_key)
        ) WITHOUT ROWID""",
            """CREATE TABLE message_identifiers (
            digest       bytea NOT NULL,
            message_key  text COLLATE "C" NOT NULL,
            PRIMARY KEY (digest, message_key)
        )"""),
        "CREATE INDEX messages_recent ON messages (received_at, channel, message_type, state)",
        "CREATE INDEX outcomes_by_status ON outcomes (status, at)",
        "CREATE INDEX stays_by_discharge ON stays (discharged_at)",
    ),
    8: (
        PerDialect(
            """CREATE TABLE sent_mails (
            envelope_id  TEXT PRIMARY KEY,
            message_id   TEXT NOT NULL,
            message_key  TEXT NOT NULL,
            document_id  TEXT NOT NULL,
            delivery_key TEXT NOT NULL,
            context      BLOB NOT NULL,
            sent_at      TEXT NOT NULL
        )""",
            """CREATE TABLE sent_mails (
            envelope_id  text PRIMARY KEY,
            message_id   text NOT NULL,
            message_key  text COLLATE "C" NOT NULL,
            document_id  text NOT NULL,
            delivery_key text NOT NULL,
            context      bytea NOT NULL,
            sent_at      timestamptz NOT NULL
        )"""),
        "CREATE INDEX sent_mails_by_message_id ON sent_mails (message_id)",
        "CREATE INDEX sent_mails_by_message ON sent_mails (message_key, sent_at)",
        PerDialect(
            """CREATE TABLE mail_recipients (
            envelope_id  TEXT NOT NULL,
            address      TEXT NOT NULL,
            identifier   BLOB NOT NULL,
            relayed_at   TEXT,
            delivered_at TEXT,
            failed_at    TEXT,
            read_at      TEXT,
            error_at     TEXT,
            detail       BLOB NOT NULL,
            PRIMARY KEY (envelope_id, address)
        )""",
            """CREATE TABLE mail_recipients (
            envelope_id  text NOT NULL,
            address      text COLLATE "C" NOT NULL,
            identifier   bytea NOT NULL,
            relayed_at   timestamptz,
            delivered_at timestamptz,
            failed_at    timestamptz,
            read_at      timestamptz,
            error_at     timestamptz,
            detail       bytea NOT NULL,
            PRIMARY KEY (envelope_id, address)
        )"""),
        PerDialect(
            """CREATE TABLE notices (
            notice_id    TEXT PRIMARY KEY,
            kind         TEXT NOT NULL,
            verdict      TEXT NOT NULL,
            at           TEXT NOT NULL,
            envelope_id  TEXT NOT NULL DEFAULT '',
            message_key  TEXT NOT NULL DEFAULT '',
            detail       BLOB NOT NULL
        )""",
            """CREATE TABLE notices (
            notice_id    text PRIMARY KEY,
            kind         text NOT NULL,
            verdict      text NOT NULL,
            at           timestamptz NOT NULL,
            envelope_id  text NOT NULL DEFAULT '',
            message_key  text NOT NULL DEFAULT '',
            detail       bytea NOT NULL
        )"""),
        "CREATE INDEX notices_by_at ON notices (at)",
    ),
    9: (
        # Retention (retention.py) finds and removes a message's outcomes and content bindings by message key.
        "CREATE INDEX outcomes_by_message ON outcomes (message_key)",
        "CREATE INDEX document_contents_by_message ON document_contents (message_key)",
        "CREATE INDEX message_identifiers_by_message ON message_identifiers (message_key)",
        "CREATE INDEX notices_by_message ON notices (message_key)",
    ),
    10: (
        # A DocumentJob's CDA over 1 MiB travels on the bus as a reference to this row (``job_contents.py``).
        PerDialect(
            """CREATE TABLE job_contents (
            job_id       TEXT PRIMARY KEY,
            message_key  TEXT NOT NULL,
            cda          BLOB NOT NULL,
            created_at   TEXT NOT NULL
        )""",
            """CREATE TABLE job_contents (
            job_id       text PRIMARY KEY,
            message_key  text NOT NULL,
            cda          bytea NOT NULL,
            created_at   timestamptz NOT NULL
        )"""),
        "CREATE INDEX job_contents_by_message ON job_contents (message_key)",
    ),
    11: (
        # The received bytes leave the ``messages`` row: SQLite rewrites a whole row on every UPDATE, so each
        # state change of a 35 MiB message copied it twice in SQLite's memory (see the module docstring).
        PerDialect(
            """CREATE TABLE message_contents (
            key          TEXT PRIMARY KEY,
            raw          BLOB NOT NULL
        )""",
            """CREATE TABLE message_contents (
            key          text COLLATE "C" PRIMARY KEY,
            raw          bytea NOT NULL
        )"""),
        "INSERT INTO message_contents (key, raw) SELECT key, raw FROM messages WHERE length(raw) > 0",
        "ALTER TABLE messages DROP COLUMN raw",
    ),
}
LATEST = max(VERSIONS)

VERSION_TABLE = PerDialect(
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)")
_HAS_VERSION_TABLE = PerDialect("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
                                "SELECT 1 WHERE to_regclass('schema_version') IS NOT NULL")


def statements(dialect: str) -> dict[int, tuple[str, ...]]:
    """Every version's statements as ``dialect`` runs them."""
    return {version: tuple(text for text in (s if isinstance(s, str) else s.of(dialect) for s in listed) if text)
            for version, listed in VERSIONS.items()}


MIGRATIONS = statements(SQLITE)
PG_MIGRATIONS = statements(POSTGRESQL)


def migration(dialect: str, *, allowed: bool = True) -> Operation[tuple[int, int]]:
    """Bring the schema to ``LATEST``; return (version found, version now). Idempotent; one transaction.

    Without ``allowed``, change nothing and refuse a schema that is behind (``liaison journal migrate``).
    """
    if allowed:
        yield VERSION_TABLE.of(dialect), ()
        exists = True
    else:
        exists = bool((yield _HAS_VERSION_TABLE.of(dialect), ()).rows)
    current = (yield "SELECT coalesce(max(version), 0) FROM schema_version", ()).rows[0][0] if exists else 0
    if current > LATEST:
        raise ConfigError("engine.journal", f"journal schema v{current} is newer than this Liaison "
                          f"(knows up to v{LATEST}): upgrade Liaison")
    if current < LATEST and not allowed:
        raise ConfigError("engine.journal", f"journal schema v{current} is behind this Liaison's (v{LATEST}) and "
                          "engine.journal_migrate is off: run `liaison journal migrate -c FILE` first")
    for version in range(current + 1, LATEST + 1):
        for statement in statements(dialect)[version]:
            yield statement, ()
        yield "INSERT INTO schema_version VALUES (?, ?)", (version, ts(datetime.now(UTC)))
    return current, max(current, LATEST)


def migrate(conn: sqlite3.Connection, *, allowed: bool = True) -> tuple[int, int]:
    """:func:`migration` on a SQLite journal: (version found, version now)."""
    return run_immediate(conn, migration(SQLITE, allowed=allowed))
