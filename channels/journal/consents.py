"""The ``dmp_consents`` table of the SQLite journal: each patient's DMP consent in force (PAM-FR ZFA).

Keyed by (facility, IPP); the latest ADT wins, "latest" being the greater
journal message key (keys sort by arrival), so a redelivered older message
never undoes a newer one. The consent is patient data: its fields are JSON
sealed with the journal's codec under ``aad("dmp_consents", facility, ipp,
"consent")``, and the copy every stay of the patient shows under
``aad("stays", facility, encounter, "dmp_consent")`` (``stays.py``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from datetime import datetime

from channels.cipher import Codec, aad
from router.model import DmpConsent, consent_from_dict
from router.ports import PatientConsent

COLUMNS = "facility, ipp, consent, message_key, updated_at"


def seal(codec: Codec, consent: DmpConsent | None, *where: str) -> str | bytes | None:
    """The consent as sealed JSON for the row and column ``where`` names; None stays NULL."""
    if consent is None:
        return None
    return codec.seal_text(json.dumps(asdict(consent), ensure_ascii=False, separators=(",", ":")), aad(*where))


def open_sealed(codec: Codec, stored: str | bytes | None, *where: str) -> DmpConsent | None:
    """The consent a column holds (None for NULL)."""
    if stored is None:
        return None
    return consent_from_dict(json.loads(codec.open_text(stored, aad(*where))))


def upsert(conn: sqlite3.Connection, codec: Codec, consent: PatientConsent, now: str) -> bool:
    """Keep the consent unless the stored one has a greater message key; then stamp the patient's stays."""
    kept = conn.execute(
        f"INSERT INTO dmp_consents ({COLUMNS}) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (facility, ipp) DO UPDATE SET consent = excluded.consent, "
        "message_key = excluded.message_key, updated_at = excluded.updated_at "
        "WHERE excluded.message_key >= dmp_consents.message_key",
        (consent.facility, consent.ipp,
         seal(codec, consent.consent, "dmp_consents", consent.facility, consent.ipp, "consent"),
         consent.message_key, now)).rowcount == 1
    if kept:
        encounters = [row[0] for row in conn.execute(
            "SELECT encounter FROM stays WHERE facility = ? AND ipp = ?", (consent.facility, consent.ipp))]
        for encounter in encounters:
            conn.execute("UPDATE stays SET dmp_consent = ?, updated_at = ? WHERE facility = ? AND encounter = ?",
                         (seal(codec, consent.consent, "stays", consent.facility, encounter, "dmp_consent"), now,
                          consent.facility, encounter))
    return kept


def select_one() -> str:
    return f"SELECT {COLUMNS} FROM dmp_consents WHERE facility = ? AND ipp = ?"


def from_row(codec: Codec, row: tuple) -> PatientConsent:
    facility, ipp, consent, message_key, updated_at = row
    return PatientConsent(facility=facility, ipp=ipp,
                          consent=open_sealed(codec, consent, "dmp_consents", facility, ipp, "consent"),
                          message_key=message_key, updated_at=datetime.fromisoformat(updated_at))
