"""The PostgreSQL cluster of the test run, for the tests marked ``postgresql``.

The test command (``deploy/scripts/test.sh``) starts a private cluster on 127.0.0.1
(``deploy/scripts/start-postgres.sh``) and names it in ``LIAISON_TEST_POSTGRES_URL``. Without
it, or when it does not answer, those tests are skipped with a message saying how to start one,
or failed when ``LIAISON_REQUIRE_POSTGRES=1`` (as the test command sets). Each test gets a schema
of its own (the URL's ``options`` set the ``search_path``), dropped after it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest

POSTGRES_URL = os.environ.get("LIAISON_TEST_POSTGRES_URL", "")
_problem: dict[str, str | None] = {}


def postgres_url() -> str:
    """The test cluster's URL; skips the test (fails it under LIAISON_REQUIRE_POSTGRES=1) without one."""
    if POSTGRES_URL not in _problem:
        if not POSTGRES_URL:
            _problem[POSTGRES_URL] = "LIAISON_TEST_POSTGRES_URL is not set"
        else:
            try:
                with psycopg.connect(POSTGRES_URL, connect_timeout=5):
                    _problem[POSTGRES_URL] = None
            except psycopg.Error as exc:
                _problem[POSTGRES_URL] = f"cannot connect to LIAISON_TEST_POSTGRES_URL: {exc}"
    problem = _problem[POSTGRES_URL]
    if problem is None:
        return POSTGRES_URL
    if os.environ.get("LIAISON_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"LIAISON_REQUIRE_POSTGRES=1 but {problem}", pytrace=False)
    pytest.skip(f"PostgreSQL not available ({problem}): run the tests with deploy/scripts/test.sh, or start a "
                "cluster with deploy/scripts/start-postgres.sh DIR and export LIAISON_TEST_POSTGRES_URL=$(cat DIR/url)")


def with_search_path(url: str, schema: str) -> str:
    """``url`` with libpq options that make ``schema`` the connection's first (and only) schema."""
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}', safe='')}"


@contextmanager
def private_schema() -> Iterator[str]:
    """A URL of the test cluster bound to a new, empty schema; the schema is dropped afterwards."""
    url = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def stored_bytes(url: str) -> bytes:
    """Everything the tables of the URL's schema hold, as PostgreSQL's binary COPY gives it."""
    out = bytearray()
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                              "ORDER BY tablename").fetchall()
        for (table,) in tables:
            with conn.cursor().copy(f'COPY "{table}" TO STDOUT (FORMAT binary)') as copy:
                for data in copy:
                    out += data
    return bytes(out)


def execute(url: str, statements: list[tuple[str, tuple]]) -> list[tuple]:
    """Run statements written with ``?`` placeholders in one transaction; the last one's rows."""
    rows: list[tuple] = []
    with psycopg.connect(url) as conn:
        for sql, params in statements:
            cursor = conn.execute(sql.replace("?", "%s") if params else sql, params or None)
            rows = cursor.fetchall() if cursor.description else []
    return rows
