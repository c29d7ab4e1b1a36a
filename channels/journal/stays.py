"""The ``stays`` table of the journal: operations (``sql.py``) on the stay (encounter) state.

Run by either adapter, on its writer (writes) or its readers (reads). Times are
bound like every journal timestamp (fixed-width UTC text, see ``sql.ts``) so
that the "letter overdue" query compares them in order. The INS is sealed with
the journal's codec under ``aad("stays", facility, encounter, "ins")``: in
clear without a key, AES-256-GCM with one, and bound to its row. The patient's
DMP consent (``dmp_consent``, v5) is sealed the same way (``consents.py``).
"""

from __future__ import annotations

from datetime import datetime

from channels.cipher import Codec, aad
from channels.journal.consents import open_sealed, seal
from channels.journal.sql import Operation, optional_moment, optional_ts, ts
from router.ports import Stay, StayState

COLUMNS = ("facility, encounter, state, ipp, ins, unit, attending, referring, medecin_traitant, "
           "discharge_disposition, discharge_destination, admitted_at, discharged_at, letter_due_at, "
           "letter_sent_at, alert_raised_at, message_key, updated_at, dmp_consent")


def upsert(codec: Codec, stay: Stay, now: str) -> Operation[None]:
    """Insert the stay or replace every column of the existing row."""
    names = [name.strip() for name in COLUMNS.split(",")]
    updates = ", ".join(f"{name} = excluded.{name}" for name in names[2:])
    yield (f"INSERT INTO stays ({COLUMNS}) VALUES ({', '.join('?' * len(names))}) "
           f"ON CONFLICT (facility, encounter) DO UPDATE SET {updates}",
           (stay.facility, stay.encounter, str(stay.state), stay.ipp,
            codec.seal_text(stay.ins, aad("stays", stay.facility, stay.encounter, "ins")), stay.unit,
            stay.attending, stay.referring, stay.medecin_traitant, stay.discharge_disposition,
            stay.discharge_destination, optional_ts(stay.admitted_at), optional_ts(stay.discharged_at),
            optional_ts(stay.letter_due_at), optional_ts(stay.letter_sent_at), optional_ts(stay.alert_raised_at),
            stay.message_key, now,
            seal(codec, stay.dmp_consent, "stays", stay.facility, stay.encounter, "dmp_consent")))


def mark(codec: Codec, facility: str, encounter: str, now: str, *, letter_sent_at: datetime | None,
         alert_raised_at: datetime | None, clear_alert: bool) -> Operation[Stay | None]:
    """Set the given timestamps in one transaction; return the row as it was before.

    The first statement changes nothing but takes the row: in PostgreSQL it waits for, then locks
    out, another server marking the same stay, so that the row read is the one updated and two
    watchdogs cannot both find the alert unraised (SQLite's single writer does that by itself).
    """
    yield "UPDATE stays SET updated_at = updated_at WHERE facility = ? AND encounter = ?", (facility, encounter)
    rows = (yield f"SELECT {COLUMNS} FROM stays WHERE facility = ? AND encounter = ?", (facility, encounter)).rows
    if not rows:
        return None
    sets: dict[str, str | None] = {"updated_at": now}
    if letter_sent_at is not None:
        sets["letter_sent_at"] = ts(letter_sent_at)
    if alert_raised_at is not None:
        sets["alert_raised_at"] = ts(alert_raised_at)
    if clear_alert:
        sets["alert_raised_at"] = None
    yield (f"UPDATE stays SET {', '.join(f'{name} = ?' for name in sets)} WHERE facility = ? AND encounter = ?",
           (*sets.values(), facility, encounter))
    return from_row(codec, rows[0])


def stay(codec: Codec, facility: str, encounter: str) -> Operation[Stay | None]:
    rows = (yield f"SELECT {COLUMNS} FROM stays WHERE facility = ? AND encounter = ?", (facility, encounter)).rows
    return from_row(codec, rows[0]) if rows else None


def due(codec: Codec, now: datetime, limit: int) -> Operation[list[Stay]]:
    """Discharged, letter not sent, not alerted, due by ``now``; oldest deadline first."""
    found = yield (f"SELECT {COLUMNS} FROM stays WHERE state = '{StayState.DISCHARGED}' AND letter_sent_at IS NULL "
                   "AND alert_raised_at IS NULL AND letter_due_at IS NOT NULL AND letter_due_at <= ? "
                   "ORDER BY letter_due_at, facility, encounter LIMIT ?", (ts(now), limit))
    return [from_row(codec, row) for row in found.rows]


def discharged(codec: Codec, since: datetime, until: datetime, limit: int) -> Operation[list[Stay]]:
    """Stays discharged in [since, until) (index ``stays_by_discharge``, v7), in discharge order."""
    found = yield (f"SELECT {COLUMNS} FROM stays WHERE discharged_at >= ? AND discharged_at < ? "
                   "ORDER BY discharged_at, facility, encounter LIMIT ?", (ts(since), ts(until), limit))
    return [from_row(codec, row) for row in found.rows]


def from_row(codec: Codec, row: tuple) -> Stay:
    (facility, encounter, state, ipp, ins, unit, attending, referring, medecin_traitant, disposition,
     destination, admitted_at, discharged_at, due_at, sent, alerted, message_key, updated_at, consent) = row
    return Stay(facility=facility, encounter=encounter, state=StayState(state), ipp=ipp,
                ins=codec.open_text(ins, aad("stays", facility, encounter, "ins")), unit=unit,
                attending=attending, referring=referring, medecin_traitant=medecin_traitant,
                discharge_disposition=disposition, discharge_destination=destination,
                admitted_at=optional_moment(admitted_at), discharged_at=optional_moment(discharged_at),
                letter_due_at=optional_moment(due_at), letter_sent_at=optional_moment(sent),
                alert_raised_at=optional_moment(alerted), message_key=message_key,
                updated_at=optional_moment(updated_at),
                dmp_consent=open_sealed(codec, consent, "stays", facility, encounter, "dmp_consent"))
