"""``liaison whitelist update|check``: refresh the MSSanté liste blanche by hand, or test one address.

    liaison whitelist update [SOURCE] [--checksum SOURCE] [--store DIR] [--ca-file PEM]
        exit 0 accepted, 1 refused (the previous list stays in force)
    liaison whitelist check ADDRESS [--store DIR] [--always-allow DOMAIN]…
        exit 0 allowed, 1 not allowed (or malformed), 2 no usable list in the store

SOURCE is an http(s) URL or a path (default the official URL); the checksum
defaults to the file ``checksum`` beside it. The store directory defaults to
``$LIAISON_WHITELIST_DIR`` or ``/var/lib/liaison/whitelist``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from channels.whitelist.fetch import OFFICIAL_URL
from channels.whitelist.settings import default_store_dir
from channels.whitelist.store import WhitelistStore
from router.whitelist import normalize_domain


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``whitelist`` (with ``update`` and ``check``) to the ``liaison`` sub-commands."""
    parser = subparsers.add_parser("whitelist", help="update the MSSanté liste blanche, or check an address")
    sub = parser.add_subparsers(dest="whitelist_command", required=True)
    update = sub.add_parser("update", help="fetch, verify (SHA-256) and store a new list")
    update.add_argument("source", nargs="?", default=OFFICIAL_URL, help=f"URL or path (default {OFFICIAL_URL})")
    update.add_argument("--checksum", help="URL or path of the checksum file (default: 'checksum' beside SOURCE)")
    update.add_argument("--store", type=Path, help="store directory (default $LIAISON_WHITELIST_DIR or "
                                                   "/var/lib/liaison/whitelist)")
    update.add_argument("--ca-file", help="PEM bundle to trust for https (the IGC-Santé chain)")
    update.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    check = sub.add_parser("check", help="may mail be sent to this address?")
    check.add_argument("address", help="the MSSanté address to check, e.g. dr.martin@ch-test.mssante.fr")
    check.add_argument("--store", type=Path, help="store directory (default $LIAISON_WHITELIST_DIR or "
                                                  "/var/lib/liaison/whitelist)")
    check.add_argument("--always-allow", action="append", default=[], metavar="DOMAIN",
                       help="a domain allowed even when absent from the list (repeatable)")
    return parser


async def run(args: argparse.Namespace, out=print) -> int:
    store_dir = args.store or default_store_dir()
    if args.whitelist_command == "update":
        store = WhitelistStore(store_dir, ca_file=args.ca_file, fetch_timeout=args.timeout)
        store.load()
        result = await store.update(args.source, args.checksum)
        out(f"source: {result.source}")
        out(f"checksum: {result.checksum_source}")
        if result.accepted:
            out(f"domains: {result.domain_count} ({result.entry_count} entries)")
            out(f"generated: {result.generated_at:%Y-%m-%d %H:%M:%S %Z}".rstrip())
            out(f"sha256: {result.sha256}")
        out(result.reason)
        return 0 if result.accepted else 1
    bad = [d for d in args.always_allow if normalize_domain(d) is None]
    if bad:
        out(f"--always-allow: not a domain name: {bad[0]!r}")
        return 2
    store = WhitelistStore(store_dir, always_allowed=args.always_allow)
    whitelist = store.load()
    if whitelist is None:
        out(f"no usable whitelist in {store_dir}: run 'liaison whitelist update' first")
        return 2
    verdict = whitelist.check(args.address)
    out(f"{'allowed' if verdict.allowed else 'not allowed'}: {verdict.reason}")
    return 0 if verdict.allowed else 1
