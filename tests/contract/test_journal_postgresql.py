"""Checks specific to the PostgreSQL journal adapter (the port's contract is ``test_journal.py``).

URL reading and the password kept out of messages and logs, the schema's versions and migrations
(at open, by several processes at once, refused when not allowed, by ``migrate()``), connections
the server dropped, and a batch chosen as a deadlock's victim. All but the URL checks need the test
run's cluster (``tests/support/postgres.py``).
"""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import psycopg
import pytest
from structlog.testing import capture_logs

from channels.journal.postgresql import PostgresJournal, from_url
from channels.journal.schema import LATEST
from router.config_values import redact_url
from router.errors import ConfigError, TransientError
from tests.contract.test_journal import KEY, a_stay, received
from tests.support import postgres
from tests.support.poll import eventually


@pytest.fixture
def url():
    with postgres.private_schema() as schema_url:
        yield schema_url


def versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]


# ------------------------------------------------------------------- URLs

def test_from_url_reads_pool_sizes_and_leaves_libpq_its_parameters():
    journal = from_url("postgresql://liaison@db.example:5433/journal?sslmode=verify-full&pool_max=4&pool_min=2")
    assert journal._conninfo == "postgresql://liaison@db.example:5433/journal?sslmode=verify-full"
    assert (journal._min_size, journal._max_size) == (2, 4)
    assert from_url("postgres://db/liaison")._conninfo == "postgres://db/liaison"


@pytest.mark.parametrize("url", ["postgresql://liaison:s3cret@db/journal?pool_max=none",
                                 "postgresql://liaison:s3cret@db/journal?no_such_parameter=1",
                                 "sqlite://liaison:s3cret@db/journal"])
def test_a_bad_url_is_refused_naming_the_key_and_not_the_password(url):
    with pytest.raises(ConfigError) as error:
        from_url(url)
    assert error.value.key == "engine.journal"
    assert "s3cret" not in str(error.value)


def test_redact_url_hides_only_the_password():
    assert redact_url("postgresql://liaison:s3cret@db:5432/journal?sslmode=require") == \
        "postgresql://liaison:***@db:5432/journal?sslmode=require"
    assert redact_url("postgresql://liaison@db/journal") == "postgresql://liaison@db/journal"


async def test_a_server_that_does_not_answer_is_a_transient_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    journal = PostgresJournal(f"postgresql://liaison:s3cret@127.0.0.1:{port}/journal", connect_timeout=2)
    with pytest.raises(TransientError, match="journal unavailable") as error:
        await journal.open()
    assert "s3cret" not in str(error.value)


# ------------------------------------------------------- the test cluster

needs_cluster = pytest.mark.postgresql


@needs_cluster
async def test_the_password_can_come_from_pgpassword_and_is_never_logged(url, monkeypatch):
    parts = psycopg.conninfo.conninfo_to_dict(url)
    password = parts.pop("password")
    monkeypatch.setenv("PGPASSWORD", password)
    bare = url.replace(f":{password}@", "@")
    assert password not in bare
    with capture_logs() as logs:
        async with PostgresJournal(url, key=KEY) as journal:
            await journal.record_received(received("PW-1"))
        async with PostgresJournal(bare, key=KEY) as journal:
            assert len(await journal.search(control_id="PW-1")) == 1
    assert logs and password not in repr(logs)


@needs_cluster
async def test_schema_versions_are_recorded_once(url):
    async with PostgresJournal(url):
        pass
    async with PostgresJournal(url):        # reopening does not migrate again
        pass
    assert versions(url) == list(range(1, LATEST + 1))


@needs_cluster
async def test_journals_opening_together_on_a_new_database_migrate_it_once(url):
    journals = [PostgresJournal(url, key=KEY) for _ in range(4)]
    await asyncio.gather(*(journal.open() for journal in journals))
    try:
        keys = await asyncio.gather(*(journal.record_received(received(f"RACE-{n}"))
                                      for n, journal in enumerate(journals)))
        assert len({key for key, _ in keys}) == 4
    finally:
        await asyncio.gather(*(journal.close() for journal in journals))
    assert versions(url) == list(range(1, LATEST + 1))


@needs_cluster
async def test_without_migrations_a_new_database_is_refused_until_migrated(url):
    with pytest.raises(ConfigError, match="liaison journal migrate") as error:
        await PostgresJournal(url, migrate=False).open()
    assert error.value.key == "engine.journal"

    assert await PostgresJournal(url, migrate=False).migrate() == (0, LATEST)
    assert await PostgresJournal(url).migrate() == (LATEST, LATEST)
    async with PostgresJournal(url, migrate=False) as journal:
        assert (await journal.record_received(received("MIG-1")))[1] is True


@needs_cluster
async def test_a_schema_newer_than_this_liaison_is_refused(url):
    async with PostgresJournal(url):
        pass
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO schema_version VALUES (%s, now())", (LATEST + 1,))
    with pytest.raises(ConfigError, match="upgrade Liaison"):
        await PostgresJournal(url).open()


@needs_cluster
async def test_idle_connections_the_server_dropped_are_replaced_without_failing_a_write(url):
    async with PostgresJournal(url, ping_after=0) as journal:       # every connection counts as idle
        await journal.record_stay(a_stay())
        with psycopg.connect(url, autocommit=True) as admin:
            dropped = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE application_name = 'liaison' AND pid <> pg_backend_pid()").fetchone()[0]
        assert dropped >= 1
        key, is_new = await journal.record_received(received("AFTER-DROP"))
        assert is_new and (await journal.message(key)).control_id == "AFTER-DROP"
        assert (await journal.stay("CHU-TEST", "V2025000001")).ins == "285057512345678"


@needs_cluster
async def test_busy_connections_the_server_dropped_fail_one_write_then_are_replaced(url):
    async with PostgresJournal(url, ping_after=3600) as journal:     # no connection counts as idle
        await journal.record_stay(a_stay())
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'liaison' AND pid <> pg_backend_pid()")
        with pytest.raises(TransientError, match="journal unavailable"):
            await journal.record_received(received("DROPPED"))
        for _ in range(journal._max_size):      # each failure takes one broken connection out of the pool
            try:
                key, _ = await journal.record_received(received("DROPPED"))
                break
            except TransientError:
                continue
        else:
            pytest.fail("the pool kept lending dropped connections")
        assert (await journal.message(key)).control_id == "DROPPED"


@needs_cluster
async def test_a_batch_chosen_as_deadlock_victim_runs_again_one_operation_at_a_time(url):
    claim = ("INSERT INTO outcomes (document_id, destination, status, detail, at, message_key) "
             "VALUES ('DOC-D', %s, 'sending', '', now(), 'K-OTHER')")
    async with PostgresJournal(url) as journal, await psycopg.AsyncConnection.connect(url) as other:
        await other.execute("SET deadlock_timeout = '60s'")          # so that the journal's side is the victim
        await other.execute(claim, ("b@x.mssante.fr",))
        both = asyncio.gather(*(journal.claim("DOC-D", destination, message_key="K-JOURNAL",
                                              stale_after=timedelta(minutes=5))
                                for destination in ("a@x.mssante.fr", "b@x.mssante.fr")))

        async def journal_waits() -> bool:
            # Blocked by this very connection: other tests' sessions on the same server never count.
            row = await (await other.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                (other.info.backend_pid,))).fetchone()
            return row[0] > 0

        await eventually(journal_waits, "the journal's batch to wait for the other transaction's claim")
        await other.execute(claim, ("a@x.mssante.fr",))     # a cycle: the journal's batch is rolled back
        await other.commit()
        assert await both == [False, False]
        assert {o.destination: o.message_key for o in await journal.outcomes("DOC-D")} == {
            "a@x.mssante.fr": "K-OTHER", "b@x.mssante.fr": "K-OTHER"}
