"""Contract suite for retention (``JournalRetention``): every journal adapter must pass it.

Same adapters and fixtures as ``test_journal.py`` (SQLite and PostgreSQL, clear and encrypted). A message
not in a final state, or with a recipient still being sent or retried, is never touched, whatever its age;
work goes in batches; one runner at a time across processes; on SQLite the file actually shrinks.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta


from channels.journal import SqliteJournal
from router.ports import MessageState, Outcome, OutcomeStatus, RenderedDocument
from router.model import Action
from router.retention import RetentionRunner, RetentionSettings
from router.ports import NoticeRecord, NoticeVerdict
from tests.contract.test_journal import T0, a_mail, backend, journal, received  # noqa: F401 - the suite's fixtures

CUTOFF = T0 + timedelta(days=30)
FINAL = (MessageState.DELIVERED, MessageState.PARTIAL, MessageState.FAILED, MessageState.REJECTED,
         MessageState.DISCARDED)
NOT_FINAL = (MessageState.RECEIVED, MessageState.QUEUED, MessageState.PROCESSING, MessageState.DISPATCHED,
             MessageState.PARKED)


async def message(journal, control_id: str, state: MessageState, *, at: datetime = T0) -> str:
    key, _ = await journal.record_received(received(control_id, at=at))
    await journal.set_state(key, state, step="test", detail="a detail")
    await journal.record_outcome(Outcome(f"DOC-{control_id}", "a@x.mssante.fr", OutcomeStatus.ACCEPTED, "250",
                                         datetime.now(UTC), key))
    await journal.bind_content(f"DOC-{control_id}", "digest", key)
    return key


async def test_content_goes_only_from_old_messages_in_a_final_state(journal):
    final = {state: await message(journal, f"F-{state}", state) for state in FINAL}
    waiting = {state: await message(journal, f"W-{state}", state) for state in NOT_FINAL}
    young = await message(journal, "YOUNG", MessageState.DELIVERED, at=CUTOFF + timedelta(days=1))
    retrying = await message(journal, "RETRY", MessageState.PARTIAL)
    await journal.record_outcome(Outcome("DOC-RETRY", "b@x.mssante.fr", OutcomeStatus.RETRYING, "451",
                                         datetime.now(UTC), retrying))
    assert await journal.expirable(CUTOFF, None) == (len(FINAL), 0)
    assert await journal.expire_content(CUTOFF, limit=2) == 2                    # one batch at a time
    assert await journal.expire_content(CUTOFF, limit=100) == len(FINAL) - 2
    assert await journal.expire_content(CUTOFF, limit=100) == 0
    for key in final.values():
        record = await journal.message(key)
        assert record.raw == b"" and record.detail == "a detail"               # metadata stays
        assert [e.step for e in await journal.events(key)][:2] == ["received", "test"]
    for key in [*waiting.values(), young, retrying]:
        assert (await journal.message(key)).raw.startswith(b"MSH|")            # never a non-final message


async def test_metadata_goes_only_from_old_messages_in_a_final_state(journal, backend):
    final = {state: await message(journal, f"F-{state}", state) for state in FINAL}
    waiting = {state: await message(journal, f"W-{state}", state) for state in NOT_FINAL}
    sending = await message(journal, "SEND", MessageState.FAILED)
    assert await journal.claim("DOC-SEND", "b@x.mssante.fr", message_key=sending, stale_after=timedelta(minutes=5))
    mailed = final[MessageState.DELIVERED]
    await journal.record_mail(a_mail("ENV-RET", message_key=mailed))
    await journal.record_notice(NoticeRecord("<dsn-ret@relay>", "dsn", NoticeVerdict.MATCHED, T0, "ENV-RET", mailed,
                                             "delivered"))
    assert await journal.expirable(None, CUTOFF) == (0, len(FINAL))
    assert await journal.expire_metadata(CUTOFF, limit=3) == 3
    assert await journal.expire_metadata(CUTOFF, limit=100) == len(FINAL) - 3
    assert await journal.sent_mail(envelope_id="ENV-RET") is None and await journal.notices() == []
    assert backend.execute([("SELECT count(*) FROM mail_recipients WHERE envelope_id = ?", ("ENV-RET",))]) == [(0,)]
    identified = "SELECT count(*) FROM message_identifiers WHERE message_key = ?"
    for state, key in final.items():
        assert await journal.message(key) is None and await journal.events(key) == []
        assert await journal.outcomes(f"DOC-F-{state}") == []
        assert backend.execute([(identified, (key,))]) == [(0,)]              # the keyed digests go too
    for key in waiting.values():
        assert backend.execute([(identified, (key,))]) != [(0,)]
    for state, key in waiting.items():
        assert (await journal.message(key)).state == state
        assert [o.status for o in await journal.outcomes(f"DOC-W-{state}")] == [OutcomeStatus.ACCEPTED]
    assert (await journal.message(sending)).raw.startswith(b"MSH|")


async def test_the_kept_cda_is_emptied_with_the_content_and_its_version_row_stays(journal):
    key = await message(journal, "DOC", MessageState.DELIVERED)
    await journal.record_document(RenderedDocument("CH", "SRC-1", "DOC-1", "SET-1", 1, "11490-0", Action.PUBLISH,
                                                   key, cda=b"<ClinicalDocument/>"))
    assert await journal.expire_content(CUTOFF, limit=10) == 1
    kept = await journal.rendered_document("CH", "SRC-1")
    assert kept.cda == b"" and kept.version == 1 and kept.set_id == "SET-1"


async def test_a_large_jobs_cda_goes_with_the_content_and_with_the_metadata(journal):
    emptied = await message(journal, "JC", MessageState.DELIVERED, at=T0 - timedelta(days=1))     # oldest first
    removed = await message(journal, "JM", MessageState.DELIVERED)
    waiting = await message(journal, "JW", MessageState.DISPATCHED)
    for key in (emptied, removed, waiting):
        await journal.record_job_content(f"{key}:DOC", key, b"<ClinicalDocument/>")
    assert await journal.expire_content(CUTOFF, limit=1) == 1
    assert await journal.job_content(f"{emptied}:DOC") is None
    assert await journal.job_content(f"{removed}:DOC") == b"<ClinicalDocument/>"
    assert await journal.expire_metadata(CUTOFF, limit=100) == 2
    assert await journal.job_content(f"{removed}:DOC") is None
    assert await journal.job_content(f"{waiting}:DOC") == b"<ClinicalDocument/>"      # never a non-final one


async def test_the_runner_works_in_batches_and_says_what_went(journal):
    for n in range(7):
        await message(journal, f"R{n}", MessageState.DELIVERED)
    parked = await message(journal, "PARKED", MessageState.PARKED)
    runner = RetentionRunner(journal, RetentionSettings(content_days=1, metadata_days=30, batch=3),
                             now=lambda: T0 + timedelta(days=60))
    assert await runner.dry_run() == (7, 7)
    report = await runner.run_once()
    assert (report.metadata, report.content, report.skipped) == (7, 0, False)
    assert report.space
    assert [r.key for r in await journal.search(limit=100)] == [parked]


async def test_one_runner_at_a_time_across_servers(backend):
    first, second = backend.make(), backend.make()
    await first.open()
    await second.open()
    try:
        async with first.alone("retention") as mine:
            async with second.alone("retention") as theirs:
                assert (mine, theirs) == (True, False)
                report = await RetentionRunner(second, RetentionSettings(content_days=1)).run_once()
                assert report.skipped
        async with second.alone("retention") as theirs:
            assert theirs is True
    finally:
        await first.close()
        await second.close()


async def test_sqlite_gives_the_space_back(tmp_path):
    path = tmp_path / "journal.sqlite"
    journal = SqliteJournal(path, key=bytes(32))
    await journal.open()
    try:
        for n in range(300):
            payload = b"MSH|^~\\&|" + bytes(i % 251 for i in range(20_000))
            key, _ = await journal.record_received(received(f"BIG{n}", raw=payload))
            await journal.set_state(key, MessageState.DELIVERED, step="test")
        size = path.stat().st_size
        assert await journal.expire_metadata(CUTOFF, limit=1000) == 300
        said = await journal.reclaim_space()
    finally:
        await journal.close()
    assert said.startswith("SQLite:") and "given back" in said
    assert path.stat().st_size < size / 4, (size, path.stat().st_size)


async def test_an_older_sqlite_journal_says_it_needs_compacting_and_compact_shrinks_it(tmp_path):
    path = tmp_path / "journal.sqlite"
    with sqlite3.connect(path) as conn:                       # as a journal made before incremental vacuum
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("CREATE TABLE placeholder (x)")
        conn.execute("DROP TABLE placeholder")
    journal = SqliteJournal(path)
    await journal.open()
    try:
        for n in range(200):
            key, _ = await journal.record_received(received(f"OLD{n}", raw=b"MSH|" + bytes(20_000)))
            await journal.set_state(key, MessageState.FAILED, step="test")
        assert await journal.expire_content(CUTOFF, limit=1000) == 200
        said = await journal.reclaim_space()
    finally:
        await journal.close()
    assert "liaison retention --compact" in said
    size = path.stat().st_size
    freed = await SqliteJournal(path).compact()
    assert freed > 0 and path.stat().st_size < size / 4
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
