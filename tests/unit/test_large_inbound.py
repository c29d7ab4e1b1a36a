"""A large inbound message travels on the bus as a reference to its journal row (router/queues.py)."""

from __future__ import annotations

import asyncio
import email
import hashlib
import email.policy
import io
import tracemalloc
import zipfile
from dataclasses import replace
from datetime import timedelta

import pytest

from channels.embedded.bus import EmbeddedBus
from channels.journal.sqlite import SqliteJournal
from channels.testing.messages import DR_LEROY, DR_MARTIN, encode_message, make_cda, make_pfi_oru
from mappings.cda_header import read_header
from router import queues
from router.ingest import Ingest
from channels.testing.cda import make_job
from mappings.packaging import MssPackaging
from router.errors import TransientError
from router.job_transport import job_of
from router.model import DocumentJob
from router.ports import Envelope, MessageState, RecipientResult, RecipientStatus
from router.settle import RetryPolicy
from router.stages.deliver import DeliverStage
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


class KeepingMailer:
    """Accepts every mail and keeps it, as the relay would deliver it."""

    def __init__(self):
        self.mails: list[bytes] = []

    async def send(self, message: bytes, *, sender: str, recipients, envelope_id: str = ""):
        self.mails.append(bytes(message))
        return [RecipientResult(r, RecipientStatus.ACCEPTED, 250, "2.0.0 Ok") for r in recipients]

    async def close(self):
        pass


def mailed_cda(mail: bytes) -> bytes:
    """The CDA inside the IHE_XDM.ZIP attached to a mail."""
    message = email.message_from_bytes(mail, policy=email.policy.default)
    for part in message.walk():
        if part.get_filename() == "IHE_XDM.ZIP":
            with zipfile.ZipFile(io.BytesIO(part.get_content())) as archive:
                return max((archive.read(name) for name in archive.namelist()), key=len)   # the CDA, not METADATA
    raise AssertionError("no IHE_XDM.ZIP in the mail")


async def test_a_large_document_job_leaves_its_cda_in_the_journal_and_is_mailed_whole(tmp_path):
    """Over 1 MiB the job goes to deliver.mss without its CDA; the deliver stage reads it back, once written."""
    messages = {"ORU-SMALL": pfi("ORU-SMALL", 1000), "ORU-LARGE": pfi("ORU-LARGE", queues.INLINE_BODY_BYTES)}
    bus = EmbeddedBus(tmp_path / "bus.sqlite")
    await bus.connect()
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        door = Ingest(journal, bus, channel="his", max_frame_bytes=4 * queues.INLINE_BODY_BYTES)
        process = ProcessStage(bus, journal, ZamQueue(bus, journal, enabled=False), cda_reader=read_header,
                               schema_check=None)
        mailer = KeepingMailer()
        deliver = DeliverStage(journal, mailer, ZamQueue(bus, journal, enabled=False),
                               MssPackaging(sender="pfi@hopital-test.mssante.fr", nil="NIL", default_body="Bonjour",
                                            message_id_domain="test.invalid", source_id="1.2.3"),
                               sender="pfi@hopital-test.mssante.fr", policy=RetryPolicy(delays=(1.0,)),
                               stale_claim=timedelta(seconds=60))
        for raw in messages.values():
            assert b"MSA|AA" in await door.handle_frame(raw, "127.0.0.1:1")
        jobs: dict[str, object] = {}
        done = asyncio.Event()

        async def on_inbound(delivery):
            await process(delivery.envelope)
            await delivery.ack()

        async def on_job(delivery):
            envelope = delivery.envelope
            record = await journal.message(DocumentJob.from_json(envelope.body).message_key)
            jobs[record.control_id] = envelope
            await deliver(envelope)
            await delivery.ack()
            if len(jobs) == 2:
                done.set()

        subscriptions = [await bus.consume(queues.INBOUND, on_inbound), await bus.consume(queues.DELIVER_MSS, on_job)]
        await asyncio.wait_for(done.wait(), 30)
        small, large = jobs["ORU-SMALL"], jobs["ORU-LARGE"]
        assert queues.BODY_HEADER not in small.headers and DocumentJob.from_json(small.body).cda.startswith(b"<")
        assert large.headers[queues.BODY_HEADER] == queues.BODY_IN_JOURNAL
        assert len(large.body) < 10_000 and DocumentJob.from_json(large.body).cda == b""
        large_job = DocumentJob.from_json(large.body)
        kept = await journal.job_content(large_job.job_id)
        assert kept is not None and len(kept) > queues.INLINE_BODY_BYTES and b"x" * 1000 in kept
        assert await journal.job_content(DocumentJob.from_json(small.body).job_id) is None
        assert len(mailer.mails) == 2
        assert kept in {mailed_cda(mail) for mail in mailer.mails}            # mailed whole, from the journal
        for subscription in subscriptions:
            await subscription.cancel()
    await bus.close()


async def test_a_job_whose_cda_is_not_in_the_journal_is_retried_not_sent_empty(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        job = make_job()
        envelope = Envelope(body=replace(job, cda=b"").to_json(), message_id=job.job_id,
                            headers={queues.BODY_HEADER: queues.BODY_IN_JOURNAL})
        with pytest.raises(TransientError, match="not in the journal"):
            await job_of(envelope, journal)
        await journal.record_job_content(job.job_id, job.message_key, job.cda)
        await journal.record_job_content(job.job_id, job.message_key, b"<other/>")       # the first write stays
        assert (await job_of(envelope, journal)).cda == job.cda


async def test_the_door_holds_a_large_embedded_document_once_and_still_reads_its_id(tmp_path):
    """The door splits the message with its long base64 run set aside (router/hl7/runs.py): the 5 MB OBX-5
    is not copied into a segment line, a field and its components (~5x the message in Python allocations
    before). The run is still read for the CDA id: other content under a bound id is answered AE 205."""
    raw = pfi("ORU-BIG", 4 * 2**20)
    bus = EmbeddedBus(tmp_path / "bus.sqlite")
    await bus.connect()
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        door = Ingest(journal, bus, channel="his", max_frame_bytes=2 * len(raw))
        tracemalloc.start()
        try:
            answer = await door.handle_frame(raw, "127.0.0.1:1")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert b"MSA|AA" in answer
        assert peak < 2.5 * len(raw), f"{peak / len(raw):.1f}x the message"       # the text, and its decoding
        key = (await journal.search(control_id="ORU-BIG"))[0].key
        assert (await journal.message(key)).raw == raw                       # journaled byte for byte
        cda = make_cda(document_extension="ORU-BIG-CRBIO")
        await journal.bind_content(read_header(cda).document_id, hashlib.sha256(cda).hexdigest(), key)
        reused = pfi("ORU-BIG", 4 * 2**20 + 10).replace(b"|ORU-BIG|", b"|ORU-BIG-2|", 1)
        assert b"MSA|AE" in (answer := await door.handle_frame(reused, "127.0.0.1:1")) and b"205" in answer
        await door.drain()
    await bus.close()
