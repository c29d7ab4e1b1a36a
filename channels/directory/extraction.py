"""Read the Annuaire Santé public extraction files line by line, columns by header name.

Two files feed the directory index (french-interop.md §3.1), both UTF-8,
``|``-separated, one header line, published as a ``.zip`` holding the ``.txt``:

- ``Extraction_Correspondance_MSSante_AAAAMMJJhhmm.txt``: one MSSanté mailbox
  (BAL) a line, 31 columns;
- ``PS_LibreAcces_Personne_activite_AAAAMMJJhhmm.txt``: one activity of a
  professional a line, 56 columns, every line ending with a trailing ``|``.
  It has no mailbox: it enriches the holders of the mailboxes (profession,
  structure, postal code) for searches by name, profession and postcode.

Columns are found by their header label, never by position: labels are
compared without accents, case, spaces or punctuation (so ``Type de BAL``,
``TYPE_DE_BAL`` and ``type de bal`` are one column) and unknown columns are
ignored. A header that lacks a required column is refused with an
:class:`ExtractionError` naming every missing label.

Each data line becomes a record tuple or a :class:`Rejected` with a reason
(:data:`REASONS`). Decisions written down here once:

- **Encoding**: each line is decoded as strict UTF-8; a line that is not
  (Latin-1 bytes, say) is rejected as ``not_utf8`` and the import goes on.
  A header that is not UTF-8 refuses the whole file. The importer refuses a
  file whose rejected share passes its threshold, so a file re-encoded in
  Latin-1 as a whole never replaces a good index.
- **RPPS check key**: a ``8``+RPPS whose Luhn key is wrong is *kept* and
  flagged (``rpps_key_ok = 0`` in the index, a ``rpps_key_invalid`` warning in
  the report): the directory is the authority on its own identifiers and a
  lookup matches the IdNat_PS exactly, so dropping the row would only hide a
  real mailbox.
- **Red list**: the public extraction has no red-list column (red-listed
  mailboxes are meant to be left out of it). A ``Liste rouge`` column, if a
  future header has one (labels in :data:`MAILBOX_COLUMNS`), feeds
  ``Mailbox.red_list``; without it every mailbox is ``red_list=False``.
"""

from __future__ import annotations

import io
import re
import unicodedata
from operator import itemgetter
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from channels.directory.static import KINDS
from router.errors import PermanentError
from router.identity import idnat_ps, rpps_ok
from router.recipients_pfi import ADDRESS

MAILBOXES = "mssante"          # Extraction_Correspondance_MSSante
PEOPLE = "personne"            # PS_LibreAcces_Personne_activite

#: field → the header labels it may carry (first one is the one quoted in errors).
MAILBOX_COLUMNS: dict[str, tuple[str, ...]] = {
    "kind": ("Type de BAL",),
    "address": ("Adresse BAL",),
    "pp_type": ("Type Identifiant PP", "Type d'identifiant PP"),
    "pp_id": ("Identifiant PP",),
    "idnat": ("Identification nationale PP",),
    "structure_id": ("Identification Structure",),
    "service": ("Service de rattachement",),
    "civility": ("Civilité d'exercice",),
    "family": ("Nom d'exercice",),
    "given": ("Prénom d'exercice",),
    "profession_code": ("Code Profession",),
    "profession": ("Libellé Profession",),
    "organisation": ("Raison Sociale structure BAL",),
    "trade_name": ("Enseigne commerciale structure BAL",),
    "postal_code": ("Code postal structure BAL",),
    "red_list": ("Liste rouge", "Liste rouge BAL", "listeRouge"),
}
#: groups of fields of which one at least must be in the header.
MAILBOX_REQUIRED: tuple[tuple[str, ...], ...] = (("kind",), ("address",), ("idnat", "pp_id"), ("structure_id",))

PEOPLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "pp_type": ("Type d'identifiant PP", "Type Identifiant PP"),
    "pp_id": ("Identifiant PP",),
    "idnat": ("Identification nationale PP",),
    "civility": ("Libellé civilité exercice", "Code civilité d'exercice"),
    "family": ("Nom d'exercice",),
    "given": ("Prénom d'exercice",),
    "profession_code": ("Code profession",),
    "profession": ("Libellé profession",),
    "siret": ("Numéro SIRET site",),
    "finess": ("Numéro FINESS site",),
    "structure_tech": ("Identifiant technique de la structure",),
    "organisation": ("Raison sociale site",),
    "trade_name": ("Enseigne commerciale site",),
    "postal_code": ("Code postal (coord. structure)",),
}
PEOPLE_REQUIRED: tuple[tuple[str, ...], ...] = (("idnat", "pp_id"), ("family",), ("profession", "profession_code"),
                                                ("postal_code",))

#: Why a line was not kept.
REASONS = {
    "not_utf8": "not valid UTF-8",
    "too_few_fields": "fewer fields than the header (truncated line)",
    "too_many_fields": "more fields than the header",
    "no_address": "empty Adresse BAL",
    "bad_address": "Adresse BAL is not a mail address",
    "unknown_kind": "Type de BAL is not PER, ORG, APP or CAB",
    "no_identifier": "neither an IdNat_PS nor a structure id",
    "duplicate": "same address, holder and structure as an earlier line",
}
#: Kept lines worth a count in the report.
WARNINGS = {
    "rpps_key_invalid": "RPPS whose Luhn key is wrong (kept, flagged)",
    "shared_address": "address held by several holders or structures (each kept)",
}
TRUE_WORDS = frozenset({"1", "true", "vrai", "oui", "o", "y", "yes"})
_DATE = re.compile(r"_(\d{8})(\d{4})?(?=\D*$)")


class ExtractionError(PermanentError):
    """An extraction file that cannot be imported (header, encoding, format, empty)."""


@dataclass(frozen=True)
class Rejected:
    reason: str                    # a key of REASONS


@dataclass(frozen=True)
class Layout:
    """Where each known field sits in a file's lines, found from its header."""

    kind: str                      # MAILBOXES or PEOPLE
    positions: dict[str, int]
    width: int                     # fields a data line must have (the trailing empty one dropped)
    trailing: bool                 # the header ends with '|' (PS_LibreAcces): so do the lines
    pick: Any = None               # values -> every known field in column-table order ("" when absent)


def label_key(label: str) -> str:
    """A header label reduced to lowercase ASCII letters and digits."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_text.lower() if c.isalnum())


@lru_cache(maxsize=131072)
def name_key(text: str) -> str:
    """A name or label as searched: no accents, uppercase, words split on anything else."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    return " ".join("".join(c if c.isalnum() else " " for c in ascii_text).split())


def file_date(name: str) -> str:
    """``AAAA-MM-JJ hh:mm`` from a name ending in ``_AAAAMMJJhhmm``, or ""."""
    found = _DATE.search(Path(name).stem)
    if not found:
        return ""
    day, time = found.group(1), found.group(2) or ""
    text = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    return f"{text} {time[:2]}:{time[2:]}" if time else text


def hinted_kind(name: str) -> str | None:
    """The file kind its name announces, if any."""
    lowered = name.lower()
    if "mssante" in lowered:
        return MAILBOXES
    if "personne_activite" in lowered or "ps_libreacces" in lowered:
        return PEOPLE
    return None


@contextmanager
def open_extraction(path: Path) -> Iterator[tuple[str, BinaryIO]]:
    """The extraction's text as a binary stream (from the ``.txt`` or inside the ``.zip``), with its name."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                member = _member(archive, path)
                # BufferedReader splits lines in C; ZipExtFile.readline is pure Python (~30 % slower overall).
                with io.BufferedReader(archive.open(member), buffer_size=1 << 20) as stream:
                    yield member, stream
        except zipfile.BadZipFile as exc:
            raise ExtractionError(f"{path.name}: damaged zip ({exc})") from exc
        return
    with open(path, "rb") as stream:
        yield path.name, stream


def _member(archive: zipfile.ZipFile, path: Path) -> str:
    texts = [n for n in archive.namelist() if n.lower().endswith(".txt")]
    for prefix in ("Extraction_Correspondance_MSSante", "PS_LibreAcces_Personne_activite"):
        chosen = [n for n in texts if Path(n).name.startswith(prefix)]
        if chosen:
            return chosen[0]
    if len(texts) == 1:
        return texts[0]
    raise ExtractionError(f"{path.name}: no extraction .txt in the zip (members: {', '.join(archive.namelist())})")


def read_header(raw: bytes, name: str) -> Layout:
    """The :class:`Layout` of a file from its header line; refuse a header without the required columns."""
    if not raw.strip():
        raise ExtractionError(f"{name}: empty file (no header line)")
    try:
        line = raw.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise ExtractionError(f"{name}: the header line is not UTF-8 (byte {exc.start}); "
                              "the extraction files are UTF-8") from exc
    labels = line.split("|")
    trailing = len(labels) > 1 and labels[-1] == ""
    if trailing:
        labels.pop()
    keys: dict[str, int] = {}
    for position, label in enumerate(labels):
        keys.setdefault(label_key(label), position)
    kind = _kind(keys, name)
    columns, required = (MAILBOX_COLUMNS, MAILBOX_REQUIRED) if kind == MAILBOXES else (PEOPLE_COLUMNS, PEOPLE_REQUIRED)
    positions = {}
    for field, candidates in columns.items():
        for label in candidates:
            if label_key(label) in keys:
                positions[field] = keys[label_key(label)]
                break
    missing = [" or ".join(f"'{columns[f][0]}'" for f in group) for group in required
               if not any(f in positions for f in group)]
    if missing:
        what = "MSSanté extraction" if kind == MAILBOXES else "PS_LibreAcces Personne_activite"
        raise ExtractionError(f"{name}: the header lacks the {what} column(s) {', '.join(missing)}")
    # fields() appends one "" to every line: an absent column reads it through index -1.
    pick = itemgetter(*(positions.get(f, -1) for f in columns))
    return Layout(kind=kind, positions=positions, width=len(labels), trailing=trailing, pick=pick)


def _kind(keys: dict[str, int], name: str) -> str:
    if label_key("Adresse BAL") in keys or label_key("Type de BAL") in keys:
        return MAILBOXES
    hint = hinted_kind(name)
    if hint:
        return hint
    people = sum(label_key(labels[0]) in keys for labels in PEOPLE_COLUMNS.values())
    return PEOPLE if people >= 3 else MAILBOXES


def fields(raw: bytes, layout: Layout) -> list[str] | Rejected:
    """The fields of one data line (end of line removed), or why it cannot be read."""
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return Rejected("not_utf8")
    values = line.split("|")
    if layout.trailing and len(values) > layout.width and values[-1] == "":
        values.pop()
    if len(values) < layout.width:
        return Rejected("too_few_fields")
    if len(values) > layout.width:
        if any(values[layout.width:]):
            return Rejected("too_many_fields")
        del values[layout.width:]
    values.append("")              # what an absent column reads (Layout.pick)
    return values


def holder_idnat(idnat: str, pp_type: str, pp_id: str) -> str:
    """The IdNat_PS of a line: its ``Identification nationale PP``, else type + identifier."""
    idnat = idnat.strip()
    if idnat:
        return idnat_ps(idnat)        # a raw 11-digit RPPS becomes 8+RPPS; anything else unchanged
    pp_id, pp_type = pp_id.strip(), pp_type.strip()
    if not pp_id:
        return ""
    if pp_type in ("0", "8"):
        return pp_type + pp_id
    return idnat_ps(pp_id)


def rpps_flag(idnat: str) -> int | None:
    """1/0 for an ``8``+RPPS whose Luhn key is right/wrong; None for other identifiers."""
    if len(idnat) == 12 and idnat.startswith("8") and idnat.isdigit():
        return 1 if rpps_ok(idnat[1:]) else 0
    return None


def display_name(civility: str, given: str, family: str) -> str:
    return " ".join(part for part in (civility.strip(), given.strip(), family.strip()) if part)


def mailbox_record(line: int, values: list[str], layout: Layout) -> tuple | Rejected:
    """One MSSanté line as the row of the ``mailbox`` table (see :mod:`channels.directory.schema`)."""
    (kind, address, pp_type, pp_id, idnat, structure, service, civility, family, given, profession_code,
     profession, organisation, trade_name, postal_code, red_list) = (v.strip() for v in layout.pick(values))
    if not address:
        return Rejected("no_address")
    if not ADDRESS.match(address):
        return Rejected("bad_address")
    kind = kind.upper()
    if kind not in KINDS:
        return Rejected("unknown_kind")
    idnat = holder_idnat(idnat, pp_type, pp_id)
    identifier = (idnat or structure) if kind in ("PER", "CAB") else (structure or idnat)
    if not identifier:
        return Rejected("no_identifier")
    return (line, address, address.lower(), kind, identifier, idnat, rpps_flag(idnat), structure, service,
            display_name(civility, given, family), name_key(family), name_key(given),
            profession_code, profession, name_key(profession), organisation or trade_name, postal_code,
            1 if red_list.lower() in TRUE_WORDS else 0)


def person_record(line: int, values: list[str], layout: Layout) -> tuple | Rejected:
    """One PS_LibreAcces activity line as the row of the ``person`` table."""
    (pp_type, pp_id, idnat, civility, family, given, profession_code, profession, siret, finess, structure_tech,
     organisation, trade_name, postal_code) = (v.strip() for v in layout.pick(values))
    idnat = holder_idnat(idnat, pp_type, pp_id)
    if not idnat:
        return Rejected("no_identifier")
    structure = "1" + finess if finess else "3" + siret if siret else structure_tech
    return (line, idnat, rpps_flag(idnat), display_name(civility, given, family), name_key(family),
            name_key(given), profession_code, profession, name_key(profession), structure,
            organisation or trade_name, postal_code)
