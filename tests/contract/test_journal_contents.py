"""Contract suite for the received bytes kept apart from the message row (schema v11, ``message_contents``).

Runs on the backends of ``test_journal.py`` (SQLite and PostgreSQL, in clear and encrypted at rest):
a large message comes back byte for byte through its state changes, its row in ``messages`` holds
none of it, and a journal made at v10 (the bytes in ``messages.raw``) migrates with every message's
bytes moved, an emptied one (retention) left without content.
"""

from __future__ import annotations

from channels.cipher import aad, make_codec
from channels.journal.schema import LATEST, VERSION_TABLE, statements, ts
from router.ports import MessageState
from tests.contract.test_journal import KEY, T0, backend, hl7, journal, received  # noqa: F401  (fixtures)


def large_message(control_id: str, size: int = 8 * 2**20) -> bytes:
    """An HL7 message with every byte value in a long note (a journal must not read it as text)."""
    return hl7(control_id, note=b"NTE|1||" + bytes(range(256)) * (size // 256) + b"\r")


def columns(backend, table: str) -> set[str]:  # noqa: F811
    if backend.dialect == "sqlite":
        return {row[1] for row in backend.execute([(f"PRAGMA table_info({table})", ())])}
    return {row[0] for row in backend.execute([("SELECT column_name FROM information_schema.columns "
                                                "WHERE table_name = ? AND table_schema = current_schema()",
                                                (table,))])}


async def test_a_large_message_comes_back_byte_for_byte_through_its_state_changes(backend, journal):  # noqa: F811
    raw = large_message("BIG-1")
    key, new = await journal.record_received(received("BIG-1", raw=raw))
    assert new
    for state in (MessageState.QUEUED, MessageState.PROCESSING, MessageState.DISPATCHED, MessageState.DELIVERED):
        await journal.set_state(key, state, step=str(state))
    record = await journal.message(key)
    assert record.state == MessageState.DELIVERED and record.raw == raw
    assert [r.raw == raw for r in await journal.search(control_id="BIG-1")] == [True]
    again, new = await journal.record_received(received("BIG-1", raw=raw))          # a resend
    assert (again, new) == (key, False)
    assert "identical bytes" in (await journal.events(key))[-1].detail
    await journal.close()
    assert "raw" not in columns(backend, "messages")
    stored = backend.execute([("SELECT key, length(raw) FROM message_contents", ())])
    assert [(k, n > len(raw) - 1) for k, n in stored] == [(key, True)]


async def test_a_journal_made_at_v10_migrates_with_the_bytes_moved_out_of_the_message_rows(backend):  # noqa: F811
    codec = make_codec(KEY if backend.encrypted else None)
    made_at_v10 = [(VERSION_TABLE.of(backend.dialect), ())]
    for version in range(1, 11):
        made_at_v10 += [(statement, ()) for statement in statements(backend.dialect)[version]]
        made_at_v10.append(("INSERT INTO schema_version VALUES (?, ?)", (version, ts(T0))))
    kept = {"K-SMALL": hl7("OLD-1"), "K-LARGE": large_message("OLD-2", 2 * 2**20), "K-EMPTIED": b""}
    for n, (key, raw) in enumerate(kept.items()):
        sealed = codec.seal_bytes(raw, aad("messages", key, "raw")) if raw else b""
        made_at_v10.append((
            "INSERT INTO messages (key, raw, channel, sending_application, sending_facility, control_id, "
            "message_type, state, received_at, updated_at, detail) VALUES (?, ?, 'mllp', 'DXCARE', 'CHU-TEST', ?, "
            "'ADT^A03', 'delivered', ?, ?, ?)",
            (key, sealed, f"OLD-{n}", ts(T0), ts(T0), codec.seal_text("", aad("messages", key, "detail")))))
    backend.execute(made_at_v10)
    assert "raw" in columns(backend, "messages")

    async with backend.make() as journal:
        for key, raw in kept.items():
            assert (await journal.message(key)).raw == raw, key
        await journal.set_state("K-LARGE", MessageState.PARKED, step="operator")
        assert (await journal.message("K-LARGE")).raw == kept["K-LARGE"]
    assert backend.execute([("SELECT max(version) FROM schema_version", ())]) == [(LATEST,)]
    assert "raw" not in columns(backend, "messages")
    assert sorted(row[0] for row in backend.execute([("SELECT key FROM message_contents", ())])) == \
        ["K-LARGE", "K-SMALL"]


async def test_retention_removes_the_contents_row(backend, journal):  # noqa: F811
    key, _ = await journal.record_received(received("GONE-1", raw=large_message("GONE-1", 2**20)))
    await journal.set_state(key, MessageState.DELIVERED, step="delivered")
    assert await journal.expire_content(T0.replace(year=T0.year + 1), 10) == 1
    assert (await journal.message(key)).raw == b""
    assert await journal.expire_content(T0.replace(year=T0.year + 1), 10) == 0
    await journal.close()
    assert backend.execute([("SELECT count(*) FROM message_contents", ())]) == [(0,)]


async def test_messages_of_tens_of_mebibytes_are_journaled_and_come_back(journal):  # noqa: F811
    """A 20 MB PDF makes a ~28 MiB message; on PostgreSQL such a statement in pipeline mode could stall for ever
    (psycopg stopped sending it half way and waited for its result): each one must be stored, in bounded time."""
    import asyncio

    for n in range(4):
        raw = large_message(f"HUGE-{n}", 28 * 2**20)
        key, new = await asyncio.wait_for(journal.record_received(received(f"HUGE-{n}", raw=raw)), timeout=60)
        assert new
        assert (await journal.message(key)).raw == raw
    await journal.close()
