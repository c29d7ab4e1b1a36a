"""Import an Annuaire Santé extraction into the SQLite index, atomically, with a report.

The file (``.txt`` or the published ``.zip``) is read line by line and never
held in memory; rows go in by batches of ``batch_size``, one transaction each,
into a **new** file next to the index. Only when every row is in, duplicates
are removed, the indexes are built and the thresholds are met is that file
renamed over the index (``os.replace``, atomic on one filesystem): a failed or
refused import leaves the previous index serving, and readers
(:class:`~channels.directory.index.IndexDirectory`) pick the new file up on
their next lookup.

The index holds both extraction kinds; importing one carries the other over
from the previous index unchanged. The ``source`` table remembers each file's
SHA-256, size and date: a file identical to the one indexed is skipped, an
older one (by the date in its name) is refused unless ``force``.

The report counts rows read, kept and rejected per reason with the first line
numbers; the log line carries counts only, never a name or an address.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import structlog

from channels.directory import schema
from channels.directory.extraction import (MAILBOXES, PEOPLE, REASONS, WARNINGS, ExtractionError, Layout,
                                           Rejected, fields, file_date, mailbox_record, open_extraction,
                                           person_record, read_header)

log = structlog.get_logger("liaison.directory")

FIRST_LINES = 5                 # line numbers kept per reason in the report
DEFAULT_MAX_REJECTED = 0.05     # share of rejected rows above which an import is refused
KIND_LABELS = {MAILBOXES: "MSSanté mailboxes", PEOPLE: "PS_LibreAcces activities"}


@dataclass
class ImportReport:
    """What an import read, kept and rejected (counts and line numbers, no names)."""

    file_name: str
    member: str = ""
    kind: str = ""
    sha256: str = ""
    size: int = 0
    file_date: str = ""
    index: str = ""
    skipped: bool = False          # identical to the file already indexed
    previous_import: str = ""      # when skipped: when that file was imported
    rows_read: int = 0
    rows_kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    rejected_lines: dict[str, list[int]] = field(default_factory=dict)
    warnings: Counter = field(default_factory=Counter)
    warning_lines: dict[str, list[int]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def reject(self, reason: str, line: int, count: int = 1) -> None:
        self.rejected[reason] += count
        lines = self.rejected_lines.setdefault(reason, [])
        if len(lines) < FIRST_LINES:
            lines.append(line)

    def warn(self, reason: str, line: int, count: int = 1) -> None:
        self.warnings[reason] += count
        lines = self.warning_lines.setdefault(reason, [])
        if len(lines) < FIRST_LINES:
            lines.append(line)

    def describe(self) -> list[str]:
        """The report as lines for a terminal."""
        what = KIND_LABELS.get(self.kind, self.kind)
        head = f"{self.member or self.file_name}: {what}, file date {self.file_date or '?'}, " \
               f"{self.size} bytes, sha256 {self.sha256[:16]}"
        if self.skipped:
            return [head, f"  unchanged since its import at {self.previous_import}: skipped "
                          "(--force to import it again)"]
        lines = [head, f"  read {self.rows_read}, kept {self.rows_kept}, rejected {self.rows_rejected}"]
        for reason, count in sorted(self.rejected.items()):
            lines.append(f"  rejected {reason} ({REASONS[reason]}): {count}, first lines "
                         + ", ".join(map(str, self.rejected_lines.get(reason, []))))
        for reason, count in sorted(self.warnings.items()):
            lines.append(f"  warning {reason} ({WARNINGS[reason]}): {count}, first lines "
                         + ", ".join(map(str, self.warning_lines.get(reason, []))))
        lines.append(f"  index {self.index} ({self.seconds:.1f} s)")
        return lines


class ImportRefused(ExtractionError):
    """The file was read but not swapped in (too many rejects, nothing kept); carries its report."""

    def __init__(self, message: str, report: ImportReport):
        super().__init__(message)
        self.report = report


def import_extraction(source: Path | str, index: Path | str, *, force: bool = False,
                      max_rejected: float = DEFAULT_MAX_REJECTED, batch_size: int = 10_000) -> ImportReport:
    """Import ``source`` into the index at ``index``; raise :class:`ExtractionError` when refused."""
    source, index = Path(source), Path(index)
    started = time.monotonic()
    if not source.is_file():
        raise ExtractionError(f"{source}: no such file")
    report = ImportReport(file_name=source.name, size=source.stat().st_size, sha256=sha256_of(source),
                          index=str(index))
    index.parent.mkdir(parents=True, exist_ok=True)
    with _locked(index), open_extraction(source) as (member, stream):
        layout = read_header(stream.readline(), member)
        report.member, report.kind = member, layout.kind
        report.file_date = file_date(member) or file_date(source.name) or _mtime(source)
        previous = _previous(index, layout.kind)
        if previous and not force:
            if previous["sha256"] == report.sha256 and previous["size"] == report.size:
                report.skipped, report.previous_import = True, previous["imported_at"]
                log.info("directory.import.skipped", kind=layout.kind, file=member)
                return report
            if previous["file_date"] and report.file_date < previous["file_date"]:
                raise ExtractionError(f"{member}: dated {report.file_date}, older than the indexed "
                                      f"{previous['file_name']} ({previous['file_date']}); use --force to import it")
        build = index.with_name(f".{index.name}.{os.getpid()}.build")
        try:
            _build(build, index, stream, layout, report, batch_size, max_rejected)
            _publish(build, index)
        except BaseException:
            build.unlink(missing_ok=True)
            raise
    report.seconds = time.monotonic() - started
    log.info("directory.import", kind=layout.kind, file=member, read=report.rows_read, kept=report.rows_kept,
             rejected=dict(report.rejected), warnings=dict(report.warnings), seconds=round(report.seconds, 1))
    return report


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _build(build: Path, index: Path, stream: BinaryIO, layout: Layout, report: ImportReport,
           batch_size: int, max_rejected: float) -> None:
    db = sqlite3.connect(build, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = OFF")       # a private file: on failure it is deleted, not rolled back
        db.execute("PRAGMA synchronous = OFF")        # fsynced once, before the rename
        db.execute("PRAGMA cache_size = -32000")
        schema.create(db)
        table = "mailbox" if layout.kind == MAILBOXES else "person"
        _load(db, table, stream, layout, report, batch_size)
        db.executescript(schema.INDEXES[table])
        if table == "mailbox":
            _duplicates(db, report)
        _check(report, max_rejected)
        other = "person" if table == "mailbox" else "mailbox"
        _carry_over(db, index, other)
        db.execute("INSERT INTO source VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (layout.kind, report.file_name, report.member, report.sha256, report.size, report.file_date,
                    datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), report.rows_read, report.rows_kept,
                    report.rows_rejected))
        db.execute("ANALYZE")
    except sqlite3.Error as exc:
        raise ExtractionError(f"{report.member}: building the index failed ({exc})") from exc
    finally:
        db.close()


def _load(db: sqlite3.Connection, table: str, stream: BinaryIO, layout: Layout, report: ImportReport,
          batch_size: int) -> None:
    """Stream the data lines into ``table``, one transaction per batch."""
    if table == "mailbox":
        record, flag, width = mailbox_record, 6, schema.MAILBOX_COLUMNS
    else:
        record, flag, width = person_record, 2, schema.PERSON_COLUMNS
    insert = f"INSERT INTO {table} VALUES ({', '.join('?' * width)})"
    batch: list[tuple] = []
    read = kept = 0
    for line, raw in enumerate(stream, start=2):
        if not raw.strip():
            continue
        read += 1
        values = fields(raw, layout)
        row = values if isinstance(values, Rejected) else record(line, values, layout)
        if isinstance(row, Rejected):
            report.reject(row.reason, line)
            continue
        if row[flag] == 0:
            report.warn("rpps_key_invalid", line)
        batch.append(row)
        if len(batch) >= batch_size:
            _insert(db, insert, batch)
            kept += len(batch)
            batch.clear()
    if batch:
        _insert(db, insert, batch)
        kept += len(batch)
    report.rows_read, report.rows_kept = read, kept


def _insert(db: sqlite3.Connection, sql: str, rows: list[tuple]) -> None:
    db.execute("BEGIN")
    db.executemany(sql, rows)
    db.execute("COMMIT")


def _duplicates(db: sqlite3.Connection, report: ImportReport) -> None:
    """Drop later copies of (address, holder, structure); count addresses shared by several holders."""
    db.execute("CREATE TEMP TABLE dupes AS SELECT line FROM (SELECT line, ROW_NUMBER() OVER "
               "(PARTITION BY address_key, identifier, structure_id ORDER BY line) AS n FROM mailbox) WHERE n > 1")
    count = db.execute("SELECT COUNT(*) FROM dupes").fetchone()[0]
    if count:
        first = [line for (line,) in db.execute(f"SELECT line FROM dupes ORDER BY line LIMIT {FIRST_LINES}")]
        report.rejected["duplicate"] += count
        report.rejected_lines["duplicate"] = first
        db.execute("BEGIN")
        db.execute("DELETE FROM mailbox WHERE line IN (SELECT line FROM dupes)")
        db.execute("COMMIT")
        report.rows_kept -= count
    db.execute("DROP TABLE dupes")
    shared = db.execute("SELECT COUNT(*) FROM (SELECT 1 FROM mailbox GROUP BY address_key "
                        "HAVING COUNT(*) > 1)").fetchone()[0]
    if shared:
        report.warnings["shared_address"] += shared
        report.warning_lines["shared_address"] = [line for (line,) in db.execute(
            "SELECT MAX(line) AS second FROM mailbox GROUP BY address_key HAVING COUNT(*) > 1 "
            f"ORDER BY second LIMIT {FIRST_LINES}")]


def _check(report: ImportReport, max_rejected: float) -> None:
    reasons = ", ".join(f"{reason} {count}" for reason, count in report.rejected.most_common())
    if report.rows_kept == 0:
        raise ImportRefused(f"{report.member}: no row kept out of {report.rows_read} "
                            f"({reasons or 'no data line'}); the index is left as it was", report)
    if report.rows_rejected > max_rejected * report.rows_read:
        share = report.rows_rejected / report.rows_read
        raise ImportRefused(f"{report.member}: {report.rows_rejected} of {report.rows_read} rows rejected "
                            f"({share:.1%}, more than {max_rejected:.1%}: {reasons}); the index is left as it was",
                            report)


def _carry_over(db: sqlite3.Connection, index: Path, table: str) -> None:
    """Copy the other extraction's rows and source from the index in service (if it is a readable index)."""
    version = _version(index)
    if version == schema.VERSION:
        kind = PEOPLE if table == "person" else MAILBOXES
        db.execute("ATTACH DATABASE ? AS old", (str(index),))
        try:
            db.execute("BEGIN")
            db.execute(f"INSERT INTO main.{table} SELECT * FROM old.{table}")
            db.execute("INSERT INTO main.source SELECT * FROM old.source WHERE kind = ?", (kind,))
            db.execute("COMMIT")
        finally:
            db.execute("DETACH DATABASE old")
    elif version is not None or index.exists():
        log.warning("directory.import.old_index_ignored", version=version, expected=schema.VERSION)
    db.executescript(schema.INDEXES[table])


def _version(index: Path) -> int | None:
    """The schema version of the index in service; None when absent or not an SQLite file."""
    if not index.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        try:
            return db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return None


def _publish(build: Path, index: Path) -> None:
    """fsync the new file, rename it over the index, fsync the directory."""
    descriptor = os.open(build, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(build, index)
    directory = os.open(index.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _previous(index: Path, kind: str) -> dict | None:
    """The ``source`` row of ``kind`` in the index in service, if any."""
    if not index.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        try:
            db.row_factory = sqlite3.Row
            if db.execute("PRAGMA user_version").fetchone()[0] != schema.VERSION:
                return None
            row = db.execute("SELECT * FROM source WHERE kind = ?", (kind,)).fetchone()
            return dict(row) if row else None
        finally:
            db.close()
    except sqlite3.Error:
        return None                     # not an index we can read: it will be replaced


@contextmanager
def _locked(index: Path) -> Iterator[None]:
    """One import at a time per index; stale build files of killed imports are removed."""
    lock = index.with_name(index.name + ".lock")
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ExtractionError(f"{index}: another import is running") from exc
        for stale in index.parent.glob(f".{index.name}.*.build"):
            stale.unlink(missing_ok=True)
        yield


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M")
