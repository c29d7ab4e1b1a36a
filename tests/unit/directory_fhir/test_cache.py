"""CachedDirectory in front of the FHIR directory: hits, expiry, negative entries, size bound."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from channels.directory.cache import CachedDirectory
from router.errors import PeerUnavailable
from channels.testing.adt_messages import DR_DURAND, DR_LEFEVRE, DR_MARTIN
from tests.support.clock import FakeClock
from tests.support.fhir_server import Fault

from .conftest import CHU_IDNST

MARTIN = "8" + DR_MARTIN.rpps


class SecondsClock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return SecondsClock()


@pytest.fixture
def cached(directory, clock):
    return CachedDirectory(directory, ttl_seconds=3600, max_entries=100, negative_ttl_seconds=60, clock=clock)


async def test_second_lookup_is_answered_from_memory(cached, server):
    first = await cached.mailboxes(MARTIN)
    calls = len(server.requests)
    assert await cached.mailboxes(MARTIN) == first
    assert len(server.requests) == calls == 2


async def test_entry_expires_after_its_ttl(cached, server, clock):
    await cached.mailboxes(MARTIN)
    clock.now += 3599
    await cached.mailboxes(MARTIN)
    assert len(server.requests) == 2
    clock.now += 2
    await cached.mailboxes(MARTIN)
    assert len(server.requests) == 4


async def test_empty_answer_is_cached_for_the_shorter_time(cached, server, clock):
    assert await cached.mailboxes("8" + DR_LEFEVRE.rpps) == []
    clock.now += 59
    assert await cached.mailboxes("8" + DR_LEFEVRE.rpps) == []
    assert len(server.requests) == 2
    clock.now += 2
    await cached.mailboxes("8" + DR_LEFEVRE.rpps)
    assert len(server.requests) == 4


async def test_errors_are_not_cached(cached, server):
    server.fail_next(Fault(503))
    with pytest.raises(PeerUnavailable):
        await cached.mailboxes(MARTIN)
    assert len(await cached.mailboxes(MARTIN)) == 2
    assert len(cached) == 1


async def test_least_recently_used_entry_is_evicted(directory, server, clock):
    cached = CachedDirectory(directory, ttl_seconds=3600, max_entries=2, clock=clock)
    await cached.mailboxes(MARTIN)
    await cached.mailboxes(CHU_IDNST)
    await cached.mailboxes(MARTIN)                       # MARTIN is now the most recent
    await cached.mailboxes("8" + DR_DURAND.rpps)         # evicts the CHU
    assert len(cached) == 2
    calls = len(server.requests)
    await cached.mailboxes(MARTIN)
    assert len(server.requests) == calls
    await cached.mailboxes(CHU_IDNST)
    assert len(server.requests) == calls + 1


async def test_concurrent_lookups_share_one_call(cached, server):
    results = await asyncio.gather(*(cached.mailboxes(MARTIN) for _ in range(5)))
    assert all(result == results[0] for result in results)
    assert len(server.requests) == 2


async def test_engine_datetime_clock_works_too(directory, server):
    clock = FakeClock(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    cached = CachedDirectory(directory, ttl_seconds=600, clock=clock)
    await cached.mailboxes(CHU_IDNST)
    clock.moment += timedelta(seconds=599)
    await cached.mailboxes(CHU_IDNST)
    assert len(server.requests) == 1
    clock.moment += timedelta(seconds=2)
    await cached.mailboxes(CHU_IDNST)
    assert len(server.requests) == 2


async def test_invalidate_forgets_an_identifier(cached, server):
    await cached.mailboxes(CHU_IDNST)
    cached.invalidate(CHU_IDNST)
    await cached.mailboxes(CHU_IDNST)
    assert len(server.requests) == 2
