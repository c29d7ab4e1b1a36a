"""SQLite journal: every message received and every step taken, in one local file.

URL form: ``sqlite:///var/lib/liaison/journal.sqlite`` (the URL path is the
absolute file path) or ``sqlite:journal.sqlite`` (relative to the working
directory). The file is created with mode 0600, the schema on ``open()`` (with
``migrate=False``, only by ``liaison journal migrate``: ``open()`` then refuses
a schema that is behind); with ``read_only=True`` (the reading commands,
``liaison journal``) nothing is created or written: a journal that does not
exist is a ConfigError naming it.

- Received bytes are stored unaltered; identifiers, states and timestamps are
  clear columns for search; bytes and ``detail`` texts are encrypted with
  AES-256-GCM when a 32-byte ``key`` is given (``cipher.py``). Without a key
  everything is stored in clear: fine for tests, not for patient data - the
  demo and the sample configuration pass a key.
- Idempotent on (sending application MSH-3, control id MSH-10), as the port
  says. MSH-4 (sending facility) is stored but not part of the key: HL7 makes
  MSH-10 unique per sending system, and senders fill MSH-4 less consistently
  than MSH-3 (a resend through another interface engine may change it), so
  including it would let a resent message through as new. Facilities sharing
  one application name with separate MSH-10 counters need distinct MSH-3
  values. A resend returns the first key and adds a "duplicate" event to it.
- Durable on return: WAL with ``synchronous=FULL``, so a row is fsynced before
  ``record_received``/``set_state`` return and the ACK that follows holds even
  across a power cut. Group commit (``writer.py``) shares that fsync between
  concurrent writers. Reads use a second connection on their own thread.
- Keys are ULIDs (``keys.py``): sortable by arrival.
- The statements are shared with the PostgreSQL adapter (``operations.py``,
  ``stays.py``, ``documents.py``, ``consents.py``, ``schema.py``): this module
  runs them (``sql.run``) on its writer thread and its reader connection.
- ``sqlite3.OperationalError`` (disk full, locked, I/O) becomes
  ``TransientError("journal unavailable: ...")``; other errors propagate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog

from channels.cipher import make_codec
from channels.journal.digests import IdentifierDigests
from channels.journal.key_check import check_codec, verify_codec
from channels.journal.schema import LATEST, migrate as migrate_schema
from channels.journal.sql import Operation, SystemClock, run
from channels.journal import operations as ops
from channels.journal.leases import file_lease
from channels.journal.sql_journal import SqlJournal, not_open
from channels.journal.writer import GroupCommitWriter, unavailable
from router.errors import ConfigError, TransientError
from router.ports import Clock, ContentBinding

log = structlog.get_logger(__name__)
T = TypeVar("T")


def from_url(url: str, key: bytes | None = None, **options: Any) -> SqliteJournal:
    """Build a journal from ``sqlite:///absolute/path`` or ``sqlite:relative/path``."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or not parts.path or parts.query:
        raise ConfigError("engine.journal", f"expected sqlite:///path/to/journal.sqlite, got {url!r}")
    path = parts.path
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return SqliteJournal(path, key=key, **options)


class SqliteJournal(SqlJournal):
    """The Journal port on one SQLite file: group-committed writes, threaded reads."""

    def __init__(self, path: str | os.PathLike[str], *, key: bytes | None = None, clock: Clock | None = None,
                 busy_timeout: float = 5.0, max_batch: int = 512, migrate: bool = True, read_only: bool = False):
        self.path = Path(path)
        self._migrate = migrate                 # bring the schema up to date at open (else refuse an old one)
        self.read_only = read_only
        self._codec = make_codec(key)
        self._digests = IdentifierDigests(key)
        self._clock = clock or SystemClock()
        self._busy_timeout = busy_timeout
        self._max_batch = max_batch
        self._writer: GroupCommitWriter | None = None
        self._last_writer: GroupCommitWriter | None = None     # keeps the counters after close
        self._reader: sqlite3.Connection | None = None
        self._read_thread: ThreadPoolExecutor | None = None
        self._loop_reader: sqlite3.Connection | None = None     # point reads on the event loop's thread

    # -------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Create the file (0600) and schema if needed, check the key, start the writer.

        Read-only: open an existing journal for reading and check the key; create and write nothing.
        """
        if self._writer is not None or self._reader is not None:
            return
        if self.read_only:
            await self._open_read_only()
            return
        self._create_file()
        writer = GroupCommitWriter(self._connect, self._setup, max_batch=self._max_batch)
        try:
            await writer.start()
        except sqlite3.OperationalError as exc:
            raise unavailable(exc) from exc
        self._read_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-read")
        try:
            self._reader = await self._read(self._open_reader)
        except BaseException:
            await writer.stop()
            raise
        self._writer = self._last_writer = writer
        log.info("journal.open", path=str(self.path), encrypted=self._codec.encrypted)

    def alone(self, name: str) -> contextlib.AbstractAsyncContextManager[bool]:
        """The SingleRunner port: ``flock`` on a file beside the journal for the block (``leases.py``)."""
        return file_lease(self.path, name)

    async def _open_read_only(self) -> None:
        if not self.path.is_file():
            problem = "is a directory" if self.path.is_dir() else "does not exist"
            raise ConfigError("engine.journal", f"{self.path} {problem}; expected an existing journal (reading "
                                                "commands never create one: check the path, or give -c FILE)")
        self._read_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-read")
        try:
            self._reader = await self._read(self._open_read_only_reader)
        except BaseException:
            self._read_thread.shutdown(wait=False)
            self._read_thread = None
            raise
        log.info("journal.open", path=str(self.path), encrypted=self._codec.encrypted, read_only=True)

    def _open_read_only_reader(self) -> sqlite3.Connection:
        """A ``mode=ro`` connection to a journal whose schema and key this Liaison can read."""
        not_journal = f"{self.path} is not a Liaison journal"
        try:
            reader = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self._busy_timeout,
                                     isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ConfigError("engine.journal", f"{self.path} cannot be opened: {exc}") from exc
        try:
            reader.execute("PRAGMA query_only = ON")
            version = reader.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            settings = dict(reader.execute("SELECT name, value FROM settings"))
        except sqlite3.OperationalError as exc:
            reader.close()
            if "no such table" in str(exc):
                raise ConfigError("engine.journal", f"{not_journal} (no journal schema)") from exc
            raise unavailable(exc) from exc
        except sqlite3.DatabaseError as exc:
            reader.close()
            raise ConfigError("engine.journal", f"{not_journal} ({exc})") from exc
        try:
            if version > LATEST:
                raise ConfigError("engine.journal", f"journal schema v{version} is newer than this Liaison "
                                                    f"(knows up to v{LATEST}): upgrade Liaison")
            verify_codec(settings, self._codec)
        except BaseException:
            reader.close()
            raise
        return reader

    async def close(self) -> None:
        """Commit the writes already queued, then close the connections."""
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.stop()
        if self._reader is not None:
            await self._read(self._reader.close)
            self._reader = None
        if self._read_thread is not None:
            self._read_thread.shutdown(wait=False)
            self._read_thread = None

    def _create_file(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))

    def _connect(self, check_same_thread: bool = True) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                               check_same_thread=check_same_thread)

    def _open_reader(self) -> sqlite3.Connection:
        reader = self._connect(check_same_thread=False)     # used only on the read thread
        reader.execute("PRAGMA query_only = ON")
        return reader

    def _setup(self, conn: sqlite3.Connection) -> None:
        # Before the first table: a new journal gives freed pages back to the file (reclaim_space); an older
        # one keeps auto_vacuum off until compacted once (`liaison retention --compact`).
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            log.warning("journal.no_wal", path=str(self.path), journal_mode=mode)
        conn.execute("PRAGMA synchronous = FULL")
        migrate_schema(conn, allowed=self._migrate)
        check_codec(conn, self._codec)

    async def migrate(self) -> tuple[int, int]:
        """Create or upgrade the schema without opening the journal; (version found, version now)."""
        self._create_file()
        return await self._on_own_connection(migrate_schema)

    async def content_binding(self, document_id: str) -> ContentBinding | None:
        """A primary-key read on the event loop's own connection, without a thread hop.

        The door asks it before the ACK of every PFI message. The read thread's hop
        costs more CPU than the read itself (measured ~120 µs against ~4 µs); in WAL
        mode a reader never waits for the writer, so the loop is held only for the read.
        """
        if self._reader is None:
            raise not_open()
        try:
            if self._loop_reader is None:
                self._loop_reader = self._connect()
                self._loop_reader.execute("PRAGMA query_only = ON")
            return run(self._loop_reader, ops.content_binding(document_id))
        except sqlite3.OperationalError as exc:
            raise unavailable(exc) from exc

    # -------------------------------------------------------------- retention

    async def reclaim_space(self, max_pages: int = 100_000) -> str:
        """Give pages freed by retention back to the file system (incremental vacuum, then a WAL checkpoint)."""
        if self.read_only:
            raise TransientError(f"journal {self.path} is open read-only")

        def reclaim(conn: sqlite3.Connection) -> str:
            if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                free = conn.execute("PRAGMA freelist_count").fetchone()[0]
                return (f"SQLite: {free} free page(s) reused by new rows, the file does not shrink (this journal "
                        "was made before incremental vacuum): run `liaison retention --compact` once, engine "
                        "stopped")
            before = conn.execute("PRAGMA freelist_count").fetchone()[0]
            # executescript steps the pragma to its end (execute frees one page per step taken).
            conn.executescript(f"PRAGMA incremental_vacuum({int(max_pages)});")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            after = conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
            freed = before - after
            return f"SQLite: {freed} page(s) ({freed * size // 1024} KiB) given back to the file system"

        return await self._on_own_connection(reclaim)

    async def compact(self) -> int:
        """Once, engine stopped: turn incremental vacuum on in an older journal and rewrite it (VACUUM); bytes freed."""
        def vacuum(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

        size = self.path.stat().st_size
        await self._on_own_connection(vacuum)
        return size - self.path.stat().st_size

    async def _on_own_connection(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(conn)`` in a thread, on a connection of its own closed after (schema and file maintenance)."""
        def run_it() -> T:
            conn = self._connect()
            try:
                return work(conn)
            finally:
                conn.close()

        try:
            return await asyncio.to_thread(run_it)
        except sqlite3.OperationalError as exc:
            raise unavailable(exc) from exc

    # ------------------------------------------------------------ statements

    async def _write(self, operation: Callable[[], Operation[T]], *, alone: bool = False,
                     large: bool = False) -> T:
        """Run a new ``operation()`` in the writer's next batch (again, alone, if its batch fails)."""
        if self._writer is None:
            raise not_open() if not self.read_only else TransientError(f"journal {self.path} is open read-only")
        return await self._writer.submit(lambda conn: run(conn, operation()))

    async def _query(self, operation: Operation[T]) -> T:
        reader = self._reader
        if reader is None:
            raise not_open()
        try:
            return await self._read(lambda: run(reader, operation))
        except sqlite3.OperationalError as exc:
            raise unavailable(exc) from exc

    async def _read(self, function: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._read_thread, function)
