"""A message whose publish reached the queue but whose confirm was lost (a broker node died) was
answered AR ("resend later"); once a worker has taken it on, the HIS's resend gets AA, not the first
AR again for ever. Found by the fault suite (tests/faults, a RabbitMQ node killed mid-stream)."""

from __future__ import annotations

from channels.embedded import EmbeddedBus
from channels.journal.sqlite import SqliteJournal
from channels.testing.messages import encode_message, make_cda, make_pfi_oru
from router.errors import BusUnavailable
from router.hl7.ack import read_ack
from router.ingest import Ingest
from router.ports import MessageState


class ConfirmLostOnce:
    """The real embedded bus, whose first publish stores the message and then reports the confirm lost."""

    def __init__(self, bus: EmbeddedBus):
        self.bus = bus
        self.lost = 0

    async def publish(self, queue, body, *, message_id, headers=None):
        await self.bus.publish(queue, body, message_id=message_id, headers=headers)
        if not self.lost:
            self.lost += 1
            raise BusUnavailable("RabbitMQ: publish confirm lost: connection closed")


async def _answer(ingest: Ingest, raw: bytes) -> str:
    return read_ack((await ingest.handle_frame(raw, "127.0.0.1:1")).decode()).code


async def test_a_resend_after_a_lost_confirm_gets_aa_once_the_message_went_on(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    bus = EmbeddedBus(tmp_path / "bus.sqlite")
    await journal.open()
    await bus.connect()
    try:
        ingest = Ingest(journal, ConfirmLostOnce(bus), channel="his")
        raw = encode_message(make_pfi_oru(make_cda(document_extension="LOST-1"), control_id="LOST-CONFIRM-1"))
        assert await _answer(ingest, raw) == "AR"                 # the confirm was lost: resend later
        (record,) = await journal.search(control_id="LOST-CONFIRM-1")
        assert (record.state, record.ack_code) == (MessageState.RECEIVED, "AR")
        # A worker took the queued copy on meanwhile.
        await journal.set_state(record.key, MessageState.PROCESSING, step="processing")
        assert await _answer(ingest, raw) == "AA"
        assert await _answer(ingest, raw) == "AA"
        await ingest.drain()
    finally:
        await bus.close()
        await journal.close()


async def test_a_message_refused_for_good_still_gets_its_refusal_again(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    bus = EmbeddedBus(tmp_path / "bus.sqlite")
    await journal.open()
    await bus.connect()
    try:
        ingest = Ingest(journal, bus, channel="his")
        raw = encode_message(make_pfi_oru(make_cda(document_extension="BAD-1"), control_id="BAD-TYPE-1")
                             ).replace(b"ORU^R01", b"ZZZ^Z99", 1)
        first = await _answer(ingest, raw)
        assert first == "AR"                                      # message type not handled: refused for good
        assert await _answer(ingest, raw) == first
    finally:
        await bus.close()
        await journal.close()
