"""Group commit for the PostgreSQL journal: the writes waiting while a transaction runs share the next one.

Why: the ACK for a message is sent only once its journal row is durable, and a
durable commit costs a WAL flush. Eight MLLP connections each committing their
own row would pay eight; here one asyncio task takes every write queued since
the last transaction began and runs them in one transaction, on one pool
connection, so they share one flush. Each caller awaits a future resolved only
after ``COMMIT`` returned (or failed).

Errors, as in SQLite's ``writer.py``: a connection or server failure
(``psycopg.OperationalError``: server down, connection lost, disk full, pool
timeout) fails the whole batch with ``TransientError`` - the caller must not
ACK. A deadlock or serialization failure (another server's transaction took
the same rows in another order) and any other exception, a defect in one
operation, roll the batch back; its operations are then run again one
transaction each, so that only the faulty one fails, with its own error. An
operation is therefore submitted as a function making it, to be made anew.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import psycopg
import structlog

from channels.journal.writer import unavailable
from router.errors import TransientError

log = structlog.get_logger(__name__)

UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError)   # PoolTimeout is an OperationalError


class Write(NamedTuple):
    make: Callable[[], Any]         # makes the operation (anew, when a failed batch is run again)
    alone: bool                     # it reads rows it then writes: not side by side with others
    large: bool                     # it writes a value over a mebibyte (no pipeline mode for its batch)


Transaction = Callable[[list[Write]], Awaitable[list[Any]]]


class PgGroupCommit:
    """An asyncio task that runs queued operations in shared transactions."""

    def __init__(self, transaction: Transaction, *, max_batch: int = 512):
        self._transaction = transaction     # runs made operations in one transaction, returns their results
        self._max_batch = max_batch
        self._queue: deque[tuple[Write, asyncio.Future]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = True
        self.commits = 0            # transactions committed (for /metrics and tests)
        self.operations = 0         # operations committed

    def start(self) -> None:
        self._closed = False
        self._task = asyncio.create_task(self._run(), name="journal-writer")

    async def submit(self, make: Callable[[], Any], *, alone: bool = False, large: bool = False) -> Any:
        """Run ``make()`` in the next batch; return its result once committed.

        ``alone``: the operation reads rows it then writes, so it must not run side by side with
        the others of its batch (``PostgresJournal._transaction``).
        """
        if self._closed:
            raise TransientError("journal unavailable: closed")
        future = asyncio.get_running_loop().create_future()
        self._queue.append((Write(make, alone, large), future))
        self._wakeup.set()
        return await future

    async def stop(self) -> None:
        """Refuse new writes, commit the queued ones, and end the task."""
        self._closed = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        try:
            while self._queue or not self._closed:
                if not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]
                await self._commit(batch)
        finally:
            self._closed = True             # also when the task died: callers must not wait forever
            while self._queue:
                _settle(self._queue.popleft()[1], error=TransientError("journal unavailable: closed"))

    async def _commit(self, batch: list[tuple[Write, asyncio.Future]]) -> None:
        try:
            results = await self._transaction([write for write, _ in batch])
        except UNAVAILABLE as exc:
            if len(batch) > 1 and _rolled_back(exc):
                log.info("journal.batch_retried", reason=type(exc).__name__, batch=len(batch))
                for item in batch:
                    await self._commit([item])
                return
            log.warning("journal.write_failed", error=str(exc), batch=len(batch))
            for _, future in batch:
                _settle(future, error=unavailable(exc))
            return
        except Exception as exc:  # noqa: BLE001 - isolate the faulty operation
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            for item in batch:
                await self._commit([item])
            return
        self.commits += 1
        self.operations += len(batch)
        for (_, future), result in zip(batch, results):
            _settle(future, result=result)


def _rolled_back(exc: BaseException) -> bool:
    """A deadlock or serialization failure (SQLSTATE class 40): the transaction may succeed on its own."""
    return (getattr(exc, "sqlstate", None) or "").startswith("40")


def _settle(future: asyncio.Future, *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():           # the caller was cancelled; the write stands
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
