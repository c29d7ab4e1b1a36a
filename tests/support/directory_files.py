"""Small fictitious Annuaire Santé extraction files written by the tests themselves.

The column labels are the ones french-interop.md §3.1 lists; every person,
address (``*.test-liaison.mssante.fr``) and number here is made up.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

MSSANTE_HEADER = [
    "Type de BAL", "Adresse BAL", "Type Identifiant PP", "Identifiant PP", "Identification nationale PP",
    "Type identifiant structure", "Identification Structure", "Service de rattachement", "Civilité d'exercice",
    "Nom d'exercice", "Prénom d'exercice", "Catégorie profession", "Libellé de catégorie profession",
    "Code Profession", "Libellé Profession", "Code savoir-faire", "Libellé savoir-faire", "Dématérialisation",
    "Raison Sociale structure BAL", "Enseigne commerciale structure BAL", "L2COMPLEMENTLOCALISATION structure BAL",
    "L3COMPLEMENTDISTRIBUTION structure BAL", "L4NUMEROVOIE structure BAL", "L4COMPLEMENTNUMEROVOIE structure BAL",
    "NL4TYPEVOIE structure BAL", "L4LIBELLEVOIE structure BAL", "L5LIEUDITMENTION structure BAL",
    "L6LIGNEACHEMINEMENT structure BAL", "Code postal structure BAL", "Département structure BAL",
    "Pays structure BAL",
]

PERSON_HEADER = [
    "Type d'identifiant PP", "Identifiant PP", "Identification nationale PP", "Code civilité d'exercice",
    "Libellé civilité exercice", "Code civilité", "Libellé civilité", "Nom d'exercice", "Prénom d'exercice",
    "Code profession", "Libellé profession", "Code catégorie professionnelle", "Libellé catégorie professionnelle",
    "Code mode exercice", "Libellé mode exercice", "Numéro SIRET site", "Numéro SIREN site", "Numéro FINESS site",
    "Numéro FINESS établissement juridique", "Identifiant technique de la structure", "Raison sociale site",
    "Enseigne commerciale site", "Code postal (coord. structure)", "Code commune (coord. structure)",
    "Libellé commune (coord. structure)",
]

DOMAIN = "test-liaison.mssante.fr"


def with_luhn(body: str) -> str:
    """``body`` followed by its Luhn check digit."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return body + str((10 - total % 10) % 10)


def rpps(number: int) -> str:
    """A fictitious 11-digit RPPS with a valid key (``1999`` + 6 digits + key)."""
    return with_luhn(f"1999{number:06d}")


def per(number: int, *, family: str = "MARTIN", given: str = "Sophie", address: str = "",
        profession: str = "Médecin", postcode: str = "", structure: str = "", **extra: str) -> dict[str, str]:
    """One PER mailbox line as {label: value}."""
    ident = extra.pop("rpps", None) or rpps(number)
    return {"Type de BAL": "PER", "Adresse BAL": address or f"pp{number}@{DOMAIN}", "Type Identifiant PP": "8",
            "Identifiant PP": ident, "Identification nationale PP": "8" + ident,
            "Identification Structure": structure, "Civilité d'exercice": "DR", "Nom d'exercice": family,
            "Prénom d'exercice": given, "Code Profession": "10", "Libellé Profession": profession,
            "Dématérialisation": "True", "Code postal structure BAL": postcode, **extra}


def org(structure: str, address: str, *, kind: str = "ORG", service: str = "", name: str = "HOPITAL FICTIF",
        postcode: str = "75013") -> dict[str, str]:
    return {"Type de BAL": kind, "Adresse BAL": address, "Type identifiant structure": "1",
            "Identification Structure": structure, "Service de rattachement": service,
            "Raison Sociale structure BAL": name, "Dématérialisation": "False", "Code postal structure BAL": postcode}


def line(header: list[str], values: Mapping[str, str], *, trailing: bool = False) -> str:
    text = "|".join(values.get(label, "") for label in header)
    return text + "|" if trailing else text


def write(path: Path, header: list[str], rows: Iterable[Mapping[str, str] | str | bytes], *,
          trailing: bool = False) -> Path:
    """A ``|`` file: the header then each row (a mapping, or a raw str/bytes line as is)."""
    chunks = [("|".join(header) + ("|" if trailing else "") + "\n").encode()]
    for row in rows:
        if isinstance(row, bytes):
            chunks.append(row + b"\n")
        elif isinstance(row, str):
            chunks.append((row + "\n").encode())
        else:
            chunks.append((line(header, row, trailing=trailing) + "\n").encode())
    path.write_bytes(b"".join(chunks))
    return path


def write_mssante(directory: Path, rows, *, stamp: str = "202608011200", header: list[str] | None = None) -> Path:
    return write(directory / f"Extraction_Correspondance_MSSante_{stamp}.txt", header or MSSANTE_HEADER, rows)


def write_people(directory: Path, rows, *, stamp: str = "202608010800") -> Path:
    return write(directory / f"PS_LibreAcces_Personne_activite_{stamp}.txt", PERSON_HEADER, rows, trailing=True)


def person(number: int, *, family: str = "MARTIN", given: str = "Sophie", profession: str = "Médecin",
           postcode: str = "69003", finess: str = "", organisation: str = "CABINET FICTIF") -> dict[str, str]:
    ident = rpps(number)
    return {"Type d'identifiant PP": "8", "Identifiant PP": ident, "Identification nationale PP": "8" + ident,
            "Libellé civilité exercice": "Docteur", "Nom d'exercice": family, "Prénom d'exercice": given,
            "Code profession": "10", "Libellé profession": profession, "Numéro FINESS site": finess,
            "Raison sociale site": organisation, "Code postal (coord. structure)": postcode}


def zipped(text_file: Path) -> Path:
    """The file inside a .zip named like the published one (the .txt is left in place)."""
    archive = text_file.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.write(text_file, text_file.name)
    return archive
