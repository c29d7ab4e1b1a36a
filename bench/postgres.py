"""What the benchmarks run on PostgreSQL share: a fresh schema per run, and the server's CPU time."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg


@contextmanager
def bench_schema(url: str) -> Iterator[str]:
    """``url`` bound to a new schema (the journal's tables start empty), dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}', safe='')}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process of this machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(url: str) -> Callable[[], float] | None:
    """A function giving the CPU seconds of the PostgreSQL server's processes; None when it is not local."""
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return None

    def total() -> float:
        with psycopg.connect(url, autocommit=True) as conn:
            pids = [row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity")]
        seconds = 0.0
        for pid in pids:
            try:
                seconds += process_cpu(pid)
            except OSError:         # it ended meanwhile (this very query's backend, say)
                pass
        return seconds

    return total
