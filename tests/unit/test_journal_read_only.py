"""The SQLite journal opened read-only, as the reading commands open it: nothing created, nothing written."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import pytest

from channels.journal import EncryptionKeyError, SqliteJournal
from router.errors import ConfigError, TransientError
from router.ports import MessageState, ReceivedMessage

KEY = os.urandom(32)


def message(control_id: str) -> ReceivedMessage:
    return ReceivedMessage(raw=b"MSH|^~\\&|HIS", channel="his", sending_application="HIS", sending_facility="CH",
                           control_id=control_id, message_type="ADT^A03", received_at=datetime.now(UTC), peer="t")


async def test_a_journal_that_does_not_exist_is_named_and_nothing_is_created(tmp_path):
    missing = tmp_path / "misspelt" / "journal.sqlite"
    with pytest.raises(ConfigError) as caught:
        await SqliteJournal(missing, key=KEY, read_only=True).open()
    assert caught.value.key == "engine.journal" and str(missing) in str(caught.value)
    assert "does not exist" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


async def test_a_directory_is_not_a_journal(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        await SqliteJournal(tmp_path, read_only=True).open()


@pytest.mark.parametrize("content", [b"", b"not SQLite at all " * 64])
async def test_a_file_that_is_not_a_journal_is_refused_and_left_alone(tmp_path, content):
    path = tmp_path / "journal.sqlite"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="not a Liaison journal"):
        await SqliteJournal(path, read_only=True).open()
    assert path.read_bytes() == content


async def test_reads_what_the_engine_wrote_even_while_it_writes(tmp_path):
    path = tmp_path / "journal.sqlite"
    async with SqliteJournal(path, key=KEY) as engine:
        key, _ = await engine.record_received(message("M1"))
        await engine.set_state(key, MessageState.QUEUED, step="queued")
        async with SqliteJournal(path, key=KEY, read_only=True) as reader:
            assert [r.control_id for r in await reader.search()] == ["M1"]
            assert (await reader.message(key)).state == MessageState.QUEUED
            await engine.record_received(message("M2"))
            assert [r.control_id for r in await reader.search()] == ["M2", "M1"]


async def test_nothing_is_written_through_a_read_only_journal(tmp_path):
    path = tmp_path / "journal.sqlite"
    async with SqliteJournal(path, key=KEY) as engine:
        await engine.record_received(message("M1"))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    async with SqliteJournal(path, key=KEY, read_only=True) as reader:
        await reader.search()
        with pytest.raises(TransientError, match="read-only"):
            await reader.record_received(message("M2"))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


async def test_the_key_is_checked_without_writing(tmp_path):
    path = tmp_path / "journal.sqlite"
    async with SqliteJournal(path, key=KEY):
        pass
    with pytest.raises(EncryptionKeyError, match="wrong key"):
        await SqliteJournal(path, key=os.urandom(32), read_only=True).open()
    with pytest.raises(EncryptionKeyError, match="a key is required"):
        await SqliteJournal(path, read_only=True).open()
