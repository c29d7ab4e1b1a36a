"""``IndexDirectory``: MSSanté mailboxes from the local index of the Annuaire Santé extractions.

The index is the SQLite file :mod:`channels.directory.importer` builds from the
public extraction files. Lookups run in a worker thread (``asyncio.to_thread``)
so the event loop never waits on SQLite. When an import renames a new index
over the file, the next lookup notices (inode, size and mtime changed) and
reopens it; a missing index is a :class:`~router.errors.PeerUnavailable`
(the caller retries later), never an empty answer that would look like
"nobody has a mailbox".

Lookups:

- :meth:`IndexDirectory.mailboxes` by IdNat_PS (``8``+RPPS, ``0``+ADELI; a raw
  11-digit RPPS is taken as ``8``+RPPS) or by structure id as the extraction
  writes it (``1``+FINESS, ``3``+SIRET...; a raw 9-digit FINESS is tried as
  ``1``+FINESS, a raw 14-digit SIRET as ``3``+SIRET): a professional's PER and
  CAB mailboxes, or a structure's ORG and APP ones.
- :meth:`IndexDirectory.search` for people by name, profession and postcode,
  on the mailbox lines and on the PS_LibreAcces activities of their holders.

Red list: a red-listed mailbox is **returned** with ``red_list=True``, never
dropped, so the caller can say why it did not send (the public extraction has
no such column; see :mod:`channels.directory.extraction`). PER/CAB mailboxes
whose line lacks profession, postcode or structure get them from the holder's
PS_LibreAcces activity (the one at the same structure, else the first).
``source`` is ``annuaire extraction <file date>``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path

from channels.directory import schema
from channels.directory.extraction import MAILBOXES, name_key
from router.errors import PeerUnavailable
from router.ports import Mailbox

_COLUMNS = ("m.line, m.address, m.kind, m.identifier, m.name, m.organisation, m.structure_id, m.service, "
            "m.profession, m.postal_code, m.red_list")
_KIND_ORDER = "CASE m.kind WHEN 'PER' THEN 0 WHEN 'CAB' THEN 1 WHEN 'ORG' THEN 2 ELSE 3 END"
MAX_NAME_WORDS = 6


def identifier_candidates(identifier: str) -> list[str]:
    """The forms an identifier may take in the index (see the module docstring)."""
    ident = identifier.strip()
    found = [ident] if ident else []
    if ident.isdigit():
        prefix = {11: "8", 9: "1", 14: "3"}.get(len(ident))
        if prefix:
            found.append(prefix + ident)
    return found


class IndexDirectory:
    """A :class:`~router.ports.Directory` over the SQLite index of the extractions."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._source = ""
        self._sources: dict[str, dict] = {}

    async def mailboxes(self, identifier: str) -> list[Mailbox]:
        """The mailboxes of an IdNat_PS or a structure id; empty when unknown."""
        return await asyncio.to_thread(self._mailboxes, identifier)

    async def search(self, *, name: str = "", profession: str = "", postal_code: str = "",
                     limit: int = 50) -> list[Mailbox]:
        """PER/CAB mailboxes of the people matching every criterion given.

        ``name``: words of the family name, optionally with given names, in any
        order, accents and case ignored. ``profession``: a label (``Médecin``,
        prefix of a longer label by whole words) or a code (``10``).
        ``postal_code``: five characters exact, fewer as a prefix (``75``).
        """
        if not (name.strip() or profession.strip() or postal_code.strip()):
            raise ValueError("search needs a name, a profession or a postal code")
        return await asyncio.to_thread(self._search, name, profession, postal_code, limit)

    async def sources(self) -> dict[str, dict]:
        """The ``source`` rows (file, SHA-256, date, counts) per extraction kind."""
        def read() -> dict[str, dict]:
            with self._lock:
                self._connection()
                return dict(self._sources)
        return await asyncio.to_thread(read)

    async def close(self) -> None:
        """Close the index file (the next lookup opens it again)."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db, self._stamp = None, None

    # --- in the worker thread ----------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """The open index, reopened when an import swapped the file (call under the lock)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError as exc:
            raise PeerUnavailable(f"directory index {self.path} not found: run 'liaison directory import'") from exc
        stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._db is not None and stamp == self._stamp:
            return self._db
        if self._db is not None:
            self._db.close()
            self._db = None
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != schema.VERSION:
                db.close()
                raise PeerUnavailable(f"directory index {self.path} has version {version}, expected "
                                      f"{schema.VERSION}: import the extraction again")
            db.row_factory = sqlite3.Row
            self._sources = {row["kind"]: dict(row) for row in db.execute("SELECT * FROM source")}
        except sqlite3.Error as exc:
            raise PeerUnavailable(f"directory index {self.path} cannot be read ({exc})") from exc
        date = self._sources.get(MAILBOXES, {}).get("file_date", "")
        self._source = f"annuaire extraction {date}".strip()
        self._db, self._stamp = db, stamp
        return db

    def _mailboxes(self, identifier: str) -> list[Mailbox]:
        keys = identifier_candidates(identifier)
        if not keys:
            return []
        with self._lock:
            db = self._connection()
            rows = db.execute(f"SELECT {_COLUMNS} FROM mailbox m WHERE m.identifier IN "
                              f"({', '.join('?' * len(keys))}) ORDER BY {_KIND_ORDER}, m.line", keys).fetchall()
            return self._enriched(db, rows)

    def _search(self, name: str, profession: str, postal_code: str, limit: int) -> list[Mailbox]:
        where, params = _criteria(name, profession, postal_code)
        sql = (f"SELECT {_COLUMNS} FROM mailbox m WHERE m.kind IN ('PER', 'CAB') AND {where.format(x='m')} "
               f"UNION SELECT {_COLUMNS} FROM person p JOIN mailbox m ON m.identifier = p.idnat "
               f"WHERE m.kind IN ('PER', 'CAB') AND {where.format(x='p')} ORDER BY 1 LIMIT ?")
        with self._lock:
            db = self._connection()
            rows = db.execute(sql, [*params, *params, limit]).fetchall()
            return self._enriched(db, rows)

    def _enriched(self, db: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[Mailbox]:
        holders = sorted({r["identifier"] for r in rows if r["kind"] in ("PER", "CAB")})
        activities: dict[str, list[sqlite3.Row]] = {}
        if holders:
            for row in db.execute("SELECT idnat, name, profession, structure_id, organisation, postal_code "
                                  f"FROM person WHERE idnat IN ({', '.join('?' * len(holders))}) ORDER BY line",
                                  holders):
                activities.setdefault(row["idnat"], []).append(row)
        return [self._mailbox(row, activities.get(row["identifier"], [])) for row in rows]

    def _mailbox(self, row: sqlite3.Row, activities: list[sqlite3.Row]) -> Mailbox:
        values = {key: row[key] for key in ("name", "organisation", "structure_id", "profession", "postal_code")}
        if activities:
            same = [a for a in activities if row["structure_id"] and a["structure_id"] == row["structure_id"]]
            activity = (same or activities)[0]
            for key in values:
                values[key] = values[key] or activity[key]
        return Mailbox(address=row["address"], kind=row["kind"], identifier=row["identifier"],
                       service=row["service"], red_list=bool(row["red_list"]), source=self._source, **values)


def _criteria(name: str, profession: str, postal_code: str) -> tuple[str, list[str]]:
    """A WHERE clause (with ``{x}`` for the table alias) and its parameters."""
    clauses: list[str] = []
    params: list[str] = []
    words = name_key(name).split()[:MAX_NAME_WORDS]
    if words:
        families = sorted({" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)})
        clauses.append(f"{{x}}.family_key IN ({', '.join('?' * len(families))})")
        params.extend(families)
        for word in words:
            clauses.append("(' ' || {x}.family_key || ' ' || {x}.given_key || ' ') LIKE ?")
            params.append(f"% {word} %")
    if profession.strip():
        key = name_key(profession)
        clauses.append("({x}.profession_code = ? OR {x}.profession_key = ? OR {x}.profession_key LIKE ?)")
        params.extend([profession.strip(), key, f"{key} %"])
    code = postal_code.strip()
    if code:
        if len(code) >= 5:
            clauses.append("{x}.postal_code = ?")
            params.append(code)
        else:
            clauses.append("{x}.postal_code LIKE ?")
            params.append(f"{code}%")
    return " AND ".join(clauses), params
