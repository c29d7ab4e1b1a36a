"""``liaison retention``: what ``[retention]`` removes, now or as a dry run; compacting an older SQLite journal.

    liaison retention [-c liaison.toml] --dry-run     say what a pass would remove now, remove nothing
    liaison retention [-c liaison.toml]               run one pass now (the engine runs them on its own)
    liaison retention [-c liaison.toml] --compact     SQLite, engine stopped: turn incremental vacuum on
                                                      in a journal made before it, and rewrite the file

One line per kind on stdout (``content``, ``metadata``, ``audit``), then how
the space was given back. Exit 2 when ``[retention]`` sets nothing.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

from channels.app.settings import Settings, load_settings
from router.errors import ConfigError


def add_parser(subparsers) -> None:
    """Add ``retention`` to the ``liaison`` sub-commands."""
    parser = subparsers.add_parser("retention", help="remove what [retention] says is too old (or --dry-run)")
    parser.add_argument("-c", "--config", type=Path, metavar="FILE",
                        help="the liaison.toml with [retention] (content_days, metadata_days, audit_days), the "
                             "journal of [engine] and, for the audit trail, [console] users")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--dry-run", action="store_true", help="only count what a pass would remove now")
    what.add_argument("--compact", action="store_true",
                      help="SQLite journal, engine stopped: enable incremental vacuum and rewrite the file once")


async def run(args: argparse.Namespace, *, out=print) -> int:
    from channels.app.engine import audit_pruner, journal_from_url
    from router.retention import RetentionRunner
    settings = load_settings(args.config) if args.config else Settings()
    if args.compact:
        return await _compact(settings, out)
    if not settings.retention.enabled:
        raise ConfigError("retention", "nothing to do: set content_days, metadata_days or audit_days in "
                                       "[retention] (whole days, at least 1)")
    journal = journal_from_url(settings.journal, settings.journal_key, read_only=args.dry_run, migrate=False)
    await journal.open()
    try:
        runner = RetentionRunner(journal, settings.retention, audit=audit_pruner(settings))
        content_before, metadata_before, audit_before = runner.cutoffs()
        if args.dry_run:
            content, metadata = await runner.dry_run()
            audit = _audit_rows_before(settings, audit_before)
            verb = "would be"
        else:
            report = await runner.run_once()
            if report.skipped:
                print("liaison retention: another server is running retention now; nothing done", file=sys.stderr)
                return 1
            content, metadata, audit, verb = report.content, report.metadata, report.audit, "were"
    finally:
        await journal.close()
    out(f"content\t{_line(content, content_before, f'message(s) {verb} emptied of their HL7 and CDA')}")
    out(f"metadata\t{_line(metadata, metadata_before, f'message(s) {verb} removed with their timeline')}")
    out(f"audit\t{_line(audit, audit_before, f'audit row(s) {verb} removed')}")
    if not args.dry_run and report.space:
        out(f"space\t{report.space}")
    return 0


def _line(count: int | None, before: datetime | None, what: str) -> str:
    if before is None:
        return "kept (no retention set)"
    shown = "?" if count is None else str(count)
    return f"{shown} {what} (received or written before {before:%Y-%m-%d %H:%M} UTC)"


def _audit_rows_before(settings: Settings, before: datetime | None) -> int | None:
    """How many audit rows are older than ``before`` (None when the console's users file is not there)."""
    if before is None or settings.console is None or not Path(settings.console.users).is_file():
        return None
    with sqlite3.connect(f"file:{settings.console.users}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM audit WHERE at < ?", (before.isoformat(),)).fetchone()[0]


async def _compact(settings: Settings, out) -> int:
    from channels.app.engine import journal_from_url
    journal = journal_from_url(settings.journal, settings.journal_key, migrate=False)
    compact = getattr(journal, "compact", None)
    if compact is None:
        raise ConfigError("engine.journal", "--compact is for a SQLite journal; PostgreSQL gives space back with "
                                            "VACUUM (reused) or VACUUM FULL (returned, table locked meanwhile)")
    if not Path(journal.path).is_file():
        raise ConfigError("engine.journal", f"{journal.path} does not exist; expected the engine's journal")
    freed = await compact()
    out(f"compacted {journal.path}: {freed // 1024} KiB given back; incremental vacuum is on from now")
    return 0
