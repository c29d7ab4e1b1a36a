"""A large inbound message travels on the bus as a reference to its journal row (router/queues.py)."""

from __future__ import annotations

import asyncio

from channels.embedded.bus import EmbeddedBus
from channels.journal.sqlite import SqliteJournal
from channels.testing.messages import DR_LEROY, DR_MARTIN, encode_message, make_cda, make_pfi_oru
from mappings.cda_header import read_header
from router import queues
from router.ingest import Ingest
from router.ports import MessageState
from router.stages.process import ProcessStage
from router.stages.zam import ZamQueue


def pfi(control_id: str, padding: int) -> bytes:
    cda = make_cda(document_extension=f"{control_id}-CRBIO").replace(b"</ClinicalDocument>", b"<!--" + b"x" * padding + b"-->\n</ClinicalDocument>")
    return encode_message(make_pfi_oru(cda, control_id=control_id, recipients=[DR_MARTIN, DR_LEROY]))


async def test_a_large_message_is_published_as_a_reference_and_processed_from_the_journal(tmp_path):
    small, large = pfi("ORU-SMALL", 1000), pfi("ORU-LARGE", queues.INLINE_BODY_BYTES)
    assert len(small) < queues.INLINE_BODY_BYTES < len(large)
    bus = EmbeddedBus(tmp_path / "bus.sqlite")
    await bus.connect()
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        door = Ingest(journal, bus, channel="his", max_frame_bytes=4 * queues.INLINE_BODY_BYTES)
        for raw in (small, large):
            assert b"MSA|AA" in await door.handle_frame(raw, "127.0.0.1:1")
        process = ProcessStage(bus, journal, ZamQueue(bus, journal, enabled=False), cda_reader=read_header, schema_check=None)
        seen, processed = {}, []
        done = asyncio.Event()

        async def handler(delivery):
            envelope = delivery.envelope
            seen[envelope.message_id] = envelope
            await process(envelope)
            await delivery.ack()
            processed.append(envelope.message_id)
            if len(processed) == 2:
                done.set()

        subscription = await bus.consume(queues.INBOUND, handler)
        await asyncio.wait_for(done.wait(), 30)
        by_size = {}
        for key, envelope in seen.items():
            record = await journal.message(key)
            assert record.state == MessageState.DISPATCHED, record
            by_size[len(record.raw)] = envelope
        assert by_size[len(small)].body == small and queues.BODY_HEADER not in by_size[len(small)].headers
        assert by_size[len(large)].body == b""
        assert by_size[len(large)].headers[queues.BODY_HEADER] == queues.BODY_IN_JOURNAL
    await bus.close()
