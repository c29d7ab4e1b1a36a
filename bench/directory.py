"""Benchmark the directory index: import of a full-size MSSanté extraction, then lookups.

Generates a synthetic ``Extraction_Correspondance_MSSante_*.txt`` of ``--rows``
lines (default 600,000, the size of the real file; fictitious people, valid-Luhn
RPPS ``1999…``, domain ``bench-liaison.mssante.fr``, 1 ORG line in 20) in a temp
dir, optionally zipped like the published file, and prints:

- import rows/s and seconds (streaming, batches, index build, atomic swap);
- peak memory: the process maximum RSS (``getrusage``) and, in a second forced
  import under ``tracemalloc``, the Python heap peak;
- lookups/s through ``IndexDirectory.mailboxes`` (random RPPS, awaited one by
  one, so each pays the thread hop) and ``search(name=, postal_code=)``.

Usage::

    .venv/bin/python bench/directory.py [--rows 600000] [--zip] [--lookups 20000] [--searches 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import resource
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels.directory.extraction import name_key  # noqa: E402
from channels.directory.importer import import_extraction  # noqa: E402
from channels.directory.index import IndexDirectory  # noqa: E402

HEADER = ("Type de BAL|Adresse BAL|Type Identifiant PP|Identifiant PP|Identification nationale PP|"
          "Type identifiant structure|Identification Structure|Service de rattachement|Civilité d'exercice|"
          "Nom d'exercice|Prénom d'exercice|Catégorie profession|Libellé de catégorie profession|Code Profession|"
          "Libellé Profession|Code savoir-faire|Libellé savoir-faire|Dématérialisation|Raison Sociale structure BAL|"
          "Enseigne commerciale structure BAL|L2COMPLEMENTLOCALISATION structure BAL|"
          "L3COMPLEMENTDISTRIBUTION structure BAL|L4NUMEROVOIE structure BAL|L4COMPLEMENTNUMEROVOIE structure BAL|"
          "NL4TYPEVOIE structure BAL|L4LIBELLEVOIE structure BAL|L5LIEUDITMENTION structure BAL|"
          "L6LIGNEACHEMINEMENT structure BAL|Code postal structure BAL|Département structure BAL|Pays structure BAL")
FAMILIES = [f"{a}{b}" for a in ("BEN", "DU", "LE", "MAR", "PE", "RO", "SAU", "VI", "GA", "FON")
            for b in ("BOIS", "CHAMP", "FORT", "GRAND", "LAC", "MONT", "PRÉ", "RIVE", "ROCHE", "VAL",
                      "NOIR", "BLANC", "CLAIR", "DOUX", "FIER", "GRIS", "HAUT", "JOLI", "LONG", "VERT")]
GIVEN = ["Anne", "Benoît", "Chloé", "David", "Élise", "François", "Gaëlle", "Hugo", "Inès", "Jules",
         "Karim", "Léa", "Marc", "Nora", "Olivier", "Pauline", "Quentin", "Rose", "Simon", "Théo"]
PROFESSIONS = [("10", "Médecin"), ("60", "Infirmier"), ("21", "Pharmacien"), ("40", "Chirurgien-Dentiste"),
               ("50", "Sage-Femme"), ("70", "Masseur-Kinésithérapeute")]
DOMAIN = "bench-liaison.mssante.fr"


def with_luhn(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char) * (2 if index % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return body + str((10 - total % 10) % 10)


def generate(path: Path, rows: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """Write the file; return (rpps, family, postcode) of every PER line for the lookups."""
    rng = random.Random(seed)
    people: list[tuple[str, str, str]] = []
    with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
        out.write(HEADER + "\n")
        for n in range(rows):
            postcode = f"{rng.randint(1, 95):02d}{rng.randint(0, 999):03d}"
            if n % 20 == 19:
                finess = f"1{n:09d}"[-10:]
                fields = ["ORG", f"service{n}@{DOMAIN}", "", "", "", "1", finess, f"Service {n % 40}",
                          *[""] * 9, "False", f"CENTRE HOSPITALIER FICTIF {n % 300}", *[""] * 9,
                          postcode, postcode[:2], ""]
                out.write("|".join(fields) + "\n")
                continue
            rpps = with_luhn(f"1999{n:06d}")
            family, given = rng.choice(FAMILIES), rng.choice(GIVEN)
            code, label = rng.choice(PROFESSIONS)
            local = name_key(f"{given} {family}").lower().replace(" ", ".")     # addresses are ASCII
            out.write(f"PER|{local}.{n}@{DOMAIN}|8|{rpps}|8{rpps}||||DR|{family}|{given}|"
                      f"||{code}|{label}|||True|||||||||||{postcode}|{postcode[:2]}|\n")
            people.append((rpps, family, postcode))
    return people


def timed_import(source: Path, index: Path, *, force: bool) -> tuple[float, object]:
    started = time.perf_counter()
    report = import_extraction(source, index, force=force)
    return time.perf_counter() - started, report


async def lookups(index: Path, people: list[tuple[str, str, str]], count: int, searches: int) -> dict:
    rng = random.Random(11)
    directory = IndexDirectory(index)
    keys = [rng.choice(people)[0] for _ in range(count)]
    await directory.mailboxes(keys[0])                     # open the index once
    started = time.perf_counter()
    found = 0
    for key in keys:
        found += len(await directory.mailboxes(key))
    by_rpps = count / (time.perf_counter() - started)
    queries = [rng.choice(people) for _ in range(searches)]
    started = time.perf_counter()
    matched = 0
    for _, family, postcode in queries:
        matched += len(await directory.search(name=family, postal_code=postcode))
    by_name = searches / (time.perf_counter() - started)
    await directory.close()
    return {"by_rpps": by_rpps, "found": found, "by_name": by_name, "matched": matched}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=600_000)
    parser.add_argument("--zip", action="store_true", help="import the .zip, as published")
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--searches", type=int, default=5_000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "Extraction_Correspondance_MSSante_202608011200.txt"
        started = time.perf_counter()
        people = generate(source, args.rows)
        print(f"generated {args.rows} rows, {source.stat().st_size / 1e6:.0f} MB in "
              f"{time.perf_counter() - started:.1f} s")
        if args.zip:
            archive = source.with_suffix(".zip")
            with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
                out.write(source, source.name)
            source.unlink()
            source = archive
            print(f"zipped: {source.stat().st_size / 1e6:.0f} MB")
        index = work / "directory.sqlite"
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        seconds, report = timed_import(source, index, force=False)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"import: {report.rows_kept} kept of {report.rows_read} in {seconds:.1f} s = "
              f"{report.rows_read / seconds:,.0f} rows/s; index {index.stat().st_size / 1e6:.0f} MB")
        print(f"max RSS: {rss_after / 1024:.0f} MB (was {rss_before / 1024:.0f} MB before the import)")
        started = time.perf_counter()
        again = import_extraction(source, index)
        print(f"unchanged file: skipped={again.skipped} in {time.perf_counter() - started:.2f} s (SHA-256 only)")
        tracemalloc.start()
        seconds_traced, _ = timed_import(source, index, force=True)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"python heap peak during a forced re-import (tracemalloc): {peak / 1e6:.1f} MB "
              f"({seconds_traced:.1f} s under tracemalloc)")
        figures = asyncio.run(lookups(index, people, args.lookups, args.searches))
        print(f"lookup by RPPS: {figures['by_rpps']:,.0f}/s ({args.lookups} random keys, {figures['found']} found)")
        print(f"search name+postcode: {figures['by_name']:,.0f}/s ({args.searches} queries, "
              f"{figures['matched']} mailboxes matched)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
