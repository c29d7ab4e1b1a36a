"""``liaison directory import|lookup``: load the Annuaire Santé extractions, find mailboxes.

    liaison directory import FILE [--index PATH] [--force] [--max-rejected 0.05]
    liaison directory lookup IDENTIFIER [--index PATH]
    liaison directory lookup --name N [--profession P] [--postcode C] [--index PATH]

``FILE`` is ``Extraction_Correspondance_MSSante_*.zip|txt`` (mailboxes) or
``PS_LibreAcces_*.zip`` / ``PS_LibreAcces_Personne_activite_*.txt`` (people);
the import prints its report (counts and line numbers). The index is
``/var/lib/liaison/directory.sqlite`` unless ``LIAISON_DIRECTORY_INDEX`` or
``--index`` says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from channels.directory.extraction import ExtractionError
from channels.directory.importer import DEFAULT_MAX_REJECTED, ImportRefused, import_extraction
from channels.directory.index import IndexDirectory
from channels.journal.leases import file_lease
from router.errors import PeerUnavailable

DEFAULT_INDEX = Path("/var/lib/liaison/directory.sqlite")


def default_index_path() -> Path:
    """``LIAISON_DIRECTORY_INDEX`` when set, else ``/var/lib/liaison/directory.sqlite``."""
    configured = os.environ.get("LIAISON_DIRECTORY_INDEX", "").strip()
    return Path(configured) if configured else DEFAULT_INDEX


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``directory`` with its ``import`` and ``lookup`` commands to the ``liaison`` subparsers."""
    parser = subparsers.add_parser("directory", help="import the Annuaire Santé extractions, look mailboxes up")
    sub = parser.add_subparsers(dest="directory_command", required=True)
    load = sub.add_parser("import", help="import an extraction file (.zip or .txt) into the local index")
    load.add_argument("file", type=Path, metavar="FILE",
                      help="Extraction_Correspondance_MSSante_*.zip|txt or PS_LibreAcces_*.zip|txt")
    load.add_argument("--index", type=Path, help="the index file (default: $LIAISON_DIRECTORY_INDEX or "
                                                 f"{DEFAULT_INDEX})")
    load.add_argument("--force", action="store_true", help="import even an unchanged or older file")
    load.add_argument("--max-rejected", type=float, default=DEFAULT_MAX_REJECTED,
                      help="share of rejected rows above which the import is refused (default %(default)s)")
    lookup = sub.add_parser("lookup", help="mailboxes of an RPPS/IdNat_PS or structure id, or by name")
    lookup.add_argument("identifier", nargs="?", default="", help="RPPS, IdNat_PS (8+RPPS, 0+ADELI) or structure id")
    lookup.add_argument("--name", help="words of the family name, optionally with given names (any order; accents and "
                                             "case ignored)")
    lookup.add_argument("--profession", help="profession label or code, e.g. Médecin or 10")
    lookup.add_argument("--postcode", help="postal code of the place of practice: 5 characters exact, fewer as a prefix (75)")
    lookup.add_argument("--limit", type=int, default=50, help="at most this many mailboxes (default %(default)s)")
    lookup.add_argument("--index", type=Path, help="the index file (default: $LIAISON_DIRECTORY_INDEX or "
                                                   f"{DEFAULT_INDEX})")
    return parser


async def run(args: argparse.Namespace, out=print) -> int:
    """Run ``liaison directory ...``; 0 when done, 1 when nothing found, 2 on an error."""
    index = args.index or default_index_path()
    if args.directory_command == "import":
        try:
            # One import at a time into an index (a timer and an operator, say): a lock beside it.
            async with file_lease(Path(index), "import") as mine:
                if not mine:
                    print(f"import not started: another import into {index} is running", file=sys.stderr)
                    return 2
                report = await asyncio.to_thread(import_extraction, args.file, index, force=args.force,
                                                 max_rejected=args.max_rejected)
        except ImportRefused as exc:
            for line in exc.report.describe()[:-1]:
                out(line)
            print(f"import refused: {exc}", file=sys.stderr)
            return 2
        except (ExtractionError, OSError) as exc:
            print(f"import failed: {exc}", file=sys.stderr)
            return 2
        for line in report.describe():
            out(line)
        return 0
    return await _lookup(args, index, out)


async def _lookup(args: argparse.Namespace, index: Path, out) -> int:
    if bool(args.identifier) == bool(args.name or args.profession or args.postcode):
        print("give an identifier, or --name/--profession/--postcode", file=sys.stderr)
        return 2
    directory = IndexDirectory(index)
    try:
        if args.identifier:
            found = await directory.mailboxes(args.identifier)
        else:
            found = await directory.search(name=args.name or "", profession=args.profession or "",
                                           postal_code=args.postcode or "", limit=args.limit)
    except PeerUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        await directory.close()
    for mailbox in found:
        where = " / ".join(x for x in (mailbox.organisation, mailbox.service, mailbox.postal_code) if x)
        flags = "  RED LIST: do not send" if mailbox.red_list else ""
        out(f"{mailbox.kind} {mailbox.address:<45} {mailbox.identifier:<14} {mailbox.name or '-'}"
            f"  {mailbox.profession or '-'}  {where or '-'}{flags}")
    out(f"{len(found)} mailbox(es) ({found[0].source if found else 'no match'})")
    return 0 if found else 1
