"""The embedded bus's SQLite file, written by one thread with group commit.

Why a thread: sqlite3 blocks, and the event loop must not. Why one: every
operation (publish, lease, ack, retry, park) is a write, and SQLite takes one
writer at a time anyway. The thread takes every job waiting in its queue, runs
them in one transaction and commits once, so eight concurrent publishers pay
for one fsync together instead of eight in a row (group commit); each caller
awaits the commit of its own batch.

Durability: WAL journal with ``synchronous=FULL``, so a commit has reached the
disk (the WAL is fsynced) when ``publish`` returns, even across a power cut.
``NORMAL`` would only survive a crash of the process, not of the machine.

One process owns a store: the connection uses ``locking_mode=EXCLUSIVE``, so a
second process opening the same file gets ``BusUnavailable`` instead of both
handing out the same rows. Within a process, every ``EmbeddedBus`` on the same
file shares one ``Store`` (reference counted), so a publish through one wakes
the consumers of another at once. Because no other process can hold a lease,
leases left in the file by a crashed process are released when the store opens.
"""

from __future__ import annotations

import asyncio
import queue as queue_module
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import structlog

from channels.embedded import sql
from router.errors import BusUnavailable

log = structlog.get_logger(__name__)

MAX_BATCH = 512          # jobs per transaction: bounds the latency one commit adds to the first job
BUSY_TIMEOUT = 5.0       # seconds to wait for a closing store of this process to let go of the file

Op = Callable[[sqlite3.Connection], Any]
_Job = tuple[Op | None, asyncio.AbstractEventLoop, asyncio.Future]


class Waker(Protocol):
    def wake(self) -> None: ...


class Store:
    """One SQLite connection owned by one thread; operations are batched into transactions."""

    def __init__(self, path: Path):
        self.path = path
        self.refs = 0
        self.watchers: dict[str, set[Waker]] = {}
        self._jobs: queue_module.SimpleQueue[_Job] = queue_module.SimpleQueue()
        self._put_lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"embedded-bus:{path.name}", daemon=True)
        self._thread.start()

    async def run(self, op: Op) -> Any:
        """Run ``op(connection)`` in the next batch; return its result once the batch committed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._put_lock:
            if self._stopping:
                raise BusUnavailable(f"embedded bus {self.path} is closed")
            self._jobs.put((op, loop, future))
        return await future

    async def stop(self) -> None:
        """Finish the queued jobs, close the connection, end the thread."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._put_lock:
            self._stopping = True
            self._jobs.put((None, loop, future))
        await future

    # --------------------------------------------------------- wake-ups

    def watch(self, queue: str, waker: Waker) -> None:
        self.watchers.setdefault(queue, set()).add(waker)

    def unwatch(self, queue: str, waker: Waker) -> None:
        self.watchers.get(queue, set()).discard(waker)

    def notify(self, queue: str | None = None) -> None:
        """Wake the consumers of ``queue`` (of every queue when None) in this process."""
        groups = self.watchers.values() if queue is None else [self.watchers.get(queue, ())]
        for waker in [w for group in groups for w in group]:
            waker.wake()

    # ----------------------------------------------------- writer thread

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        broken: BaseException | None = None
        try:
            conn = self._open()
        except (sqlite3.Error, OSError) as exc:
            broken = exc
            log.error("bus.embedded.open_failed", path=str(self.path), error=str(exc))
        stop: _Job | None = None
        while stop is None:
            batch = [self._jobs.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue_module.Empty:
                    break
            jobs = [job for job in batch if job[0] is not None]
            stop = next((job for job in batch if job[0] is None), None)
            if jobs:
                self._execute(conn, broken, jobs)
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:  # pragma: no cover - nothing left to save
                log.warning("bus.embedded.close_failed", path=str(self.path), error=str(exc))
        _resolve(stop[1], [(stop[2], None, None)])

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT)
        try:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use the WAL journal here (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(sql.SCHEMA)
            conn.execute("BEGIN IMMEDIATE")      # takes the exclusive lock now, not at the first publish
            released = sql.release_all(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        log.info("bus.embedded.open", path=str(self.path), released_leases=released)
        return conn

    def _execute(self, conn: sqlite3.Connection | None, broken: BaseException | None,
                 jobs: list[_Job]) -> None:
        results: list[tuple[asyncio.AbstractEventLoop, asyncio.Future, Any, BaseException | None]] = []
        try:
            if conn is None:
                raise broken or sqlite3.OperationalError("not open")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for op, loop, future in jobs:
                    results.append((loop, future, op(conn), None))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except Exception as exc:  # noqa: BLE001 - every waiter must hear about the failure
            results = [(loop, future, None, self._translate(exc)) for _, loop, future in jobs]
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for loop, future, value, error in results:
            by_loop.setdefault(loop, []).append((future, value, error))
        for loop, items in by_loop.items():
            _resolve(loop, items)

    def _translate(self, exc: Exception) -> Exception:
        if not isinstance(exc, (sqlite3.Error, OSError)):
            return exc
        if "locked" in str(exc):
            error = BusUnavailable(f"embedded bus {self.path} is in use by another process ({exc})")
        else:
            error = BusUnavailable(f"embedded bus {self.path}: {exc}")
        error.__cause__ = exc
        return error


def _resolve(loop: asyncio.AbstractEventLoop, items: list[tuple[asyncio.Future, Any, Any]]) -> None:
    def settle() -> None:
        for future, value, error in items:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)
    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
        pass


# --------------------------------------------------- one store per file per process

_stores: dict[Path, Store] = {}
_stores_lock = threading.Lock()


async def acquire(path: Path) -> Store:
    """The open store for ``path``, opening it on first use; raises BusUnavailable."""
    key = Path(path).expanduser().resolve()
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = Store(key)
        store.refs += 1
    try:
        await store.run(lambda conn: None)       # the first job runs once the file is open
    except BaseException:
        await release(store)
        raise
    return store


async def release(store: Store) -> None:
    """Drop one reference; the last one closes the file."""
    with _stores_lock:
        store.refs -= 1
        if store.refs > 0:
            return
        if _stores.get(store.path) is store:
            del _stores[store.path]
    await store.stop()
