"""The SingleRunner port on the journal's own store: one runner at a time for a named job.

- PostgreSQL (``PostgresJournal.alone`` in ``postgresql.py``): ``pg_try_advisory_lock`` on a
  connection of its own, held for the block and closed after it. A session lock goes with its session: when the holder dies (``kill -9``,
  machine lost) the server ends the session and the lock is free again; nothing to expire.
- SQLite: ``flock`` on a file beside the journal (``journal.sqlite.<name>.lock``). The kernel
  releases it when the holder's file is closed, by exit or by a kill. Two callers in one
  process open the file twice, and ``flock`` makes those exclude each other too.

Neither waits: a caller that does not get the lease is told so at once and skips its pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path


def _slug(name: str) -> str:
    """A lease name as a file name: what is not a letter, a digit, ``.``, ``_`` or ``-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "_"


@contextlib.asynccontextmanager
async def file_lease(journal_path: Path, name: str) -> AsyncIterator[bool]:
    """Hold ``flock`` on ``<journal>.<name>.lock`` for the block, if nobody else holds it."""
    path = journal_path.with_name(f"{journal_path.name}.{_slug(name)}.lock")
    fd = await asyncio.to_thread(os.open, path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)                    # releases the lock
