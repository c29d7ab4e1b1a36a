"""Contract suite for what operator actions need of the Journal: reopening an outcome, the discarded state.

Same adapters and fixtures as ``test_journal.py`` (SQLite and PostgreSQL, clear and encrypted).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from router.ports import MessageState, Outcome, OutcomeStatus
from tests.contract.test_journal import backend, journal, received  # noqa: F401 - the suite's fixtures

LEASE = dict(stale_after=timedelta(minutes=5))


async def test_a_failed_or_refused_outcome_reopens_and_may_be_claimed_again_by_its_message(journal):
    now = datetime.now(UTC)
    await journal.record_outcome(Outcome("DOC-O", "a@x.mssante.fr", OutcomeStatus.FAILED, "550", now, "K1"))
    await journal.record_outcome(Outcome("DOC-O", "b@x.mssante.fr", OutcomeStatus.REFUSED, "whitelist", now, "K1"))
    assert await journal.claim("DOC-O", "a@x.mssante.fr", message_key="K1", **LEASE) is False
    assert await journal.reopen_outcome("DOC-O", "a@x.mssante.fr", message_key="K1", detail="by alice") is True
    assert await journal.reopen_outcome("DOC-O", "b@x.mssante.fr", message_key="K1", detail="by alice") is True
    statuses = {o.destination: o.status for o in await journal.outcomes("DOC-O")}
    assert statuses == {"a@x.mssante.fr": OutcomeStatus.RETRYING, "b@x.mssante.fr": OutcomeStatus.RETRYING}
    assert await journal.claim("DOC-O", "a@x.mssante.fr", message_key="K1", **LEASE) is True
    events = [e for e in await journal.events("K1") if e.step == "outcome" and e.state == "retrying"]
    assert {e.destination for e in events} == {"a@x.mssante.fr", "b@x.mssante.fr"}
    assert all(e.detail == "by alice" for e in events)


async def test_an_accepted_outcome_or_a_live_claim_is_never_reopened(journal):
    now = datetime.now(UTC)
    await journal.record_outcome(Outcome("DOC-A", "a@x.mssante.fr", OutcomeStatus.ACCEPTED, "250", now, "K1"))
    assert await journal.claim("DOC-A", "b@x.mssante.fr", message_key="K1", **LEASE) is True
    assert await journal.reopen_outcome("DOC-A", "a@x.mssante.fr", message_key="K1", detail="x") is False
    assert await journal.reopen_outcome("DOC-A", "b@x.mssante.fr", message_key="K1", detail="x") is False
    assert await journal.reopen_outcome("DOC-A", "nobody@x.mssante.fr", message_key="K1", detail="x") is False
    statuses = {o.destination: o.status for o in await journal.outcomes("DOC-A")}
    assert statuses == {"a@x.mssante.fr": OutcomeStatus.ACCEPTED, "b@x.mssante.fr": OutcomeStatus.SENDING}
    assert await journal.claim("DOC-A", "a@x.mssante.fr", message_key="K2", **LEASE) is False


async def test_a_message_is_discarded_only_from_the_states_asked(journal):
    key, _ = await journal.record_received(received("DISC-1"))
    kept = frozenset({MessageState.PARKED, MessageState.FAILED})
    assert await journal.set_state(key, MessageState.DISCARDED, step="discarded", detail="x", only_from=kept) is False
    await journal.set_state(key, MessageState.FAILED, step="delivered")
    assert await journal.set_state(key, MessageState.DISCARDED, step="discarded", detail="by alice: duplicate",
                                   only_from=kept) is True
    record = await journal.message(key)
    assert record.state == MessageState.DISCARDED and record.detail == "by alice: duplicate"
    assert [r.key for r in await journal.search(state=MessageState.DISCARDED)] == [key]
