"""The ``dmp_consents`` table of the journal: each patient's DMP consent in force (PAM-FR ZFA).

Keyed by (facility, IPP); the latest ADT wins, "latest" being the greater
journal message key (keys sort by arrival), so a redelivered older message
never undoes a newer one. The consent is patient data: its fields are JSON
sealed with the journal's codec under ``aad("dmp_consents", facility, ipp,
"consent")``, and the copy every stay of the patient shows under
``aad("stays", facility, encounter, "dmp_consent")`` (``stays.py``). The
functions below are operations (``sql.py``) either adapter runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from channels.cipher import Codec, aad
from channels.journal.sql import Operation, moment
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


def upsert(codec: Codec, consent: PatientConsent, now: str) -> Operation[bool]:
    """Keep the consent unless the stored one has a greater message key; then stamp the patient's stays."""
    kept = (yield (
        f"INSERT INTO dmp_consents ({COLUMNS}) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (facility, ipp) DO UPDATE SET consent = excluded.consent, "
        "message_key = excluded.message_key, updated_at = excluded.updated_at "
        "WHERE excluded.message_key >= dmp_consents.message_key",
        (consent.facility, consent.ipp,
         seal(codec, consent.consent, "dmp_consents", consent.facility, consent.ipp, "consent"),
         consent.message_key, now))).rowcount == 1
    if kept:
        found = yield ("SELECT encounter FROM stays WHERE facility = ? AND ipp = ?", (consent.facility, consent.ipp))
        for (encounter,) in found.rows:
            yield ("UPDATE stays SET dmp_consent = ?, updated_at = ? WHERE facility = ? AND encounter = ?",
                   (seal(codec, consent.consent, "stays", consent.facility, encounter, "dmp_consent"), now,
                    consent.facility, encounter))
    return kept


def consent_of(codec: Codec, facility: str, ipp: str) -> Operation[PatientConsent | None]:
    rows = (yield f"SELECT {COLUMNS} FROM dmp_consents WHERE facility = ? AND ipp = ?", (facility, ipp)).rows
    return from_row(codec, rows[0]) if rows else None


def from_row(codec: Codec, row: tuple) -> PatientConsent:
    facility, ipp, consent, message_key, updated_at = row
    return PatientConsent(facility=facility, ipp=ipp,
                          consent=open_sealed(codec, consent, "dmp_consents", facility, ipp, "consent"),
                          message_key=message_key, updated_at=moment(updated_at))
