"""The SQLite index of the Annuaire Santé extractions: tables, indexes, version.

One file holds both extractions: ``mailbox`` (MSSanté BALs, one row per kept
line) and ``person`` (PS_LibreAcces activities), plus ``source``, one row per
extraction kind with the file it came from (name, SHA-256, size, date) and its
import counts. ``line`` is the line number in the source file, so a report or a
lookup can point back to it. ``*_key`` columns hold names as searched
(:func:`channels.directory.extraction.name_key`).
"""

from __future__ import annotations

import sqlite3

VERSION = 1

TABLES = """
CREATE TABLE mailbox (
    line INTEGER PRIMARY KEY, address TEXT NOT NULL, address_key TEXT NOT NULL, kind TEXT NOT NULL,
    identifier TEXT NOT NULL, idnat TEXT NOT NULL, rpps_key_ok INTEGER, structure_id TEXT NOT NULL,
    service TEXT NOT NULL, name TEXT NOT NULL, family_key TEXT NOT NULL, given_key TEXT NOT NULL,
    profession_code TEXT NOT NULL, profession TEXT NOT NULL, profession_key TEXT NOT NULL,
    organisation TEXT NOT NULL, postal_code TEXT NOT NULL, red_list INTEGER NOT NULL
);
CREATE TABLE person (
    line INTEGER PRIMARY KEY, idnat TEXT NOT NULL, rpps_key_ok INTEGER, name TEXT NOT NULL,
    family_key TEXT NOT NULL, given_key TEXT NOT NULL, profession_code TEXT NOT NULL, profession TEXT NOT NULL,
    profession_key TEXT NOT NULL, structure_id TEXT NOT NULL, organisation TEXT NOT NULL, postal_code TEXT NOT NULL
);
CREATE TABLE source (
    kind TEXT PRIMARY KEY, file_name TEXT NOT NULL, member TEXT NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, file_date TEXT NOT NULL, imported_at TEXT NOT NULL,
    rows_read INTEGER NOT NULL, rows_kept INTEGER NOT NULL, rows_rejected INTEGER NOT NULL
);
"""

#: Built after the rows are in (faster than maintaining them during the load).
INDEXES = {
    "mailbox": """
CREATE INDEX mailbox_address ON mailbox(address_key, identifier, structure_id);
CREATE INDEX mailbox_identifier ON mailbox(identifier);
CREATE INDEX mailbox_structure ON mailbox(structure_id);
CREATE INDEX mailbox_family ON mailbox(family_key, postal_code);
""",
    "person": """
CREATE INDEX person_idnat ON person(idnat);
CREATE INDEX person_family ON person(family_key, postal_code);
CREATE INDEX person_postal ON person(postal_code, profession_key);
""",
}

MAILBOX_COLUMNS = 18
PERSON_COLUMNS = 12


def create(db: sqlite3.Connection) -> None:
    db.executescript(TABLES)
    db.execute(f"PRAGMA user_version = {VERSION}")
