"""Group commit: one thread owns the SQLite write connection and commits in batches.

Why: the ACK for a message is sent only once its journal row is durable, and a
durable commit costs an fsync. Eight MLLP connections each waiting for their
own commit would pay eight fsyncs; here every write waiting in the queue when
the thread wakes goes into one transaction, so they share one. Each caller
awaits an asyncio future that is resolved only after ``COMMIT`` returned.

Errors: ``sqlite3.OperationalError`` (disk full, I/O error, database locked
past the busy timeout) fails the whole batch with ``TransientError`` - the
caller must not ACK, and the sender will try again. Any other exception is a
defect in one operation: the batch is rolled back and its operations are run
again one transaction each, so only the faulty one fails, with its own error.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import structlog

from router.errors import TransientError

log = structlog.get_logger(__name__)

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]
_STOP = object()


def unavailable(exc: BaseException) -> TransientError:
    """The engine's error for a journal that cannot take writes right now."""
    error = TransientError(f"journal unavailable: {exc}")
    error.__cause__ = exc
    return error


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open (SQLite may already have rolled back)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class GroupCommitWriter:
    """A writer thread that runs queued operations in shared transactions."""

    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 setup: Callable[[sqlite3.Connection], None], *, max_batch: int = 512, name: str = "journal"):
        self._connect = connect
        self._setup = setup
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped: Future[None] = Future()
        self._closed = True
        self._name = name
        self.commits = 0            # transactions committed (for /metrics and tests)
        self.operations = 0         # operations committed

    async def start(self) -> None:
        """Start the thread, open its connection and run ``setup`` there; raise what setup raised."""
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"{self._name}-writer", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(ready)
        self._closed = False

    async def submit(self, operation: Operation) -> Any:
        """Run ``operation(conn)`` in the next batch; return its result once committed."""
        if self._closed:
            raise TransientError("journal unavailable: closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((operation, future, loop))
        return await future

    async def stop(self) -> None:
        """Refuse new writes, commit the queued ones, and close the connection."""
        if self._thread is None:
            return
        self._closed = True
        self._queue.put(_STOP)
        await asyncio.wrap_future(self._stopped)
        self._thread = None

    # ------------------------------------------------------------ thread side

    def _run(self, ready: Future[None]) -> None:
        try:
            conn = self._connect()
            self._setup(conn)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting start()
            ready.set_exception(exc)
            self._stopped.set_result(None)
            return
        ready.set_result(None)
        try:
            self._loop(conn)
        finally:
            self._closed = True         # also when the loop died: callers must not wait forever
            conn.close()
            self._fail_leftovers()
            self._stopped.set_result(None)

    def _loop(self, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if any(item is _STOP for item in batch):
                stopping = True
                batch = [item for item in batch if item is not _STOP]
            if batch:
                self._commit(conn, batch)

    def _fail_leftovers(self) -> None:
        leftovers = []
        while True:
            try:
                leftovers.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self._settle([(item, False, TransientError("journal unavailable: closed"))
                      for item in leftovers if item is not _STOP])

    def _commit(self, conn: sqlite3.Connection, batch: list[tuple]) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = [operation(conn) for operation, _, _ in batch]
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self._safe_rollback(conn)
            log.warning("journal.write_failed", error=str(exc), batch=len(batch))
            self._settle([(item, False, unavailable(exc)) for item in batch])
            return
        except Exception as exc:  # noqa: BLE001 - isolate the faulty operation
            self._safe_rollback(conn)
            if len(batch) == 1:
                self._settle([(batch[0], False, exc)])
            else:
                for item in batch:
                    self._commit(conn, [item])
            return
        self.commits += 1
        self.operations += len(batch)
        self._settle([(item, True, result) for item, result in zip(batch, results)])

    @staticmethod
    def _safe_rollback(conn: sqlite3.Connection) -> None:
        try:
            rollback(conn)
        except sqlite3.Error as exc:  # the connection is unusable; the next BEGIN will say so
            log.warning("journal.rollback_failed", error=str(exc))

    @staticmethod
    def _settle(outcomes: list[tuple[tuple, bool, Any]]) -> None:
        """Resolve the callers' futures on their own loops, one wake-up per loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for (_, future, loop), ok, value in outcomes:
            by_loop.setdefault(loop, []).append((future, ok, value))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, items)
            except RuntimeError:        # that loop is closed: nobody is waiting any more
                pass


def _resolve(items: list[tuple[asyncio.Future, bool, Any]]) -> None:
    for future, ok, value in items:
        if future.done():           # the caller was cancelled; the write stands
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
