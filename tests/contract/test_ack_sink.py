"""The AckSink contract: a business acknowledgement (ZAM) goes back to the HIS, and the HIS's answer counts.

Adapters (one today; another joins :data:`ADAPTERS` with a :class:`Link` of its own):

- ``mllp``: ``MllpAckSink`` over ``MllpSender``, as the composition root builds it, talking to a
  real MLLP listener (``channels.mllp.server.MllpServer``) on 127.0.0.1 whose handler plays the HIS.

The sink reaches the HIS through a :class:`~tests.support.tcp_proxy.TcpProxy`, so a test can take the
HIS down. What the stage relies on (``router/stages/acks.py``): a send returns once the HIS acknowledged
positively; AE is a refusal for good (``RejectedByPeer``); AR, a HIS that is down or silent, is worth
retrying (``PeerUnavailable``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from channels.mllp.sender import MllpAckSink, MllpSender
from channels.mllp.server import MllpServer
from router.errors import PeerUnavailable, RejectedByPeer
from router.hl7.ack import build_ack
from router.hl7.charset import decode_lenient, encode, encode_message
from router.hl7.msh import read_header
from router.hl7.zam import build_zam_z02
from router.ports import AckSink
from tests.support.tcp_proxy import TcpProxy

DEADLINE = 20.0
#: The message the ZAMs answer: an ORU from the HIS in ISO 8859-1, so the ZAMs carry accents in that charset.
ORIGINAL = "MSH|^~\\&|DPI|CH-TEST|LIAISON|CH-TEST|20250314093000||ORU^R01^ORU_R01|{id}|P|2.5|||||FRA|8859/1"


def zam(control_id: str, *, delivered: bool = False) -> bytes:
    """A ZAM^Z02 for the ORU ``control_id`` (refused, by default: it then carries an ERR with accents)."""
    failure = {} if delivered else {"error_code": "207", "error_text": "Application internal error",
                                    "detail_code": "MSSRejected", "detail_text": "Refusé par le relais MSSanté"}
    text = build_zam_z02(read_header(ORIGINAL.format(id=control_id)), recipient_address="dr.martin@ch-test.mssante.fr",
                         delivered=delivered, control_id=f"ZAM-{control_id}", **failure)
    return encode_message(text)


# ---------------------------------------------------------------------------- the HIS


class ScriptedHis:
    """The HIS end: keeps every frame as received, answers AA or the answers queued; ``hold`` delays answers."""

    def __init__(self):
        self.frames: list[bytes] = []
        self.answers: deque[tuple[str, str]] = deque()      # (code, MSA-3 text) for the next frames
        self.released = asyncio.Event()
        self.released.set()

    def answer_next(self, code: str, text: str) -> None:
        self.answers.append((code, text))

    def hold(self) -> None:
        self.released.clear()

    async def handle_frame(self, raw: bytes, peer: str) -> bytes:
        self.frames.append(raw)
        await self.released.wait()
        code, text = self.answers.popleft() if self.answers else ("AA", "")
        message, codec, _ = decode_lenient(raw)
        return encode(build_ack(read_header(message), code, text=text), codec)

    async def handle_oversize(self, prefix: bytes, size: int, peer: str) -> bytes:
        message, codec, _ = decode_lenient(prefix)
        return encode(build_ack(read_header(message), "AR", text="too large"), codec)

    async def handle_truncated(self, partial: bytes, peer: str) -> None:
        return None

    async def received(self, count: int) -> list[bytes]:
        """The frames, once there are ``count`` of them (fails after a deadline)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while len(self.frames) < count:
            if loop.time() > deadline:
                pytest.fail(f"the HIS got {len(self.frames)} frame(s), expected {count}")
            await asyncio.sleep(0.01)
        return list(self.frames)


# ---------------------------------------------------------------------------- adapters


@dataclass
class Link:
    """An AckSink adapter pointed at the HIS, and what the tests can do to the HIS."""

    sink: AckSink
    impatient: AckSink               # the same, giving up after a second without an ACK
    his: ScriptedHis
    proxy: TcpProxy                  # between the sinks and the HIS


async def mllp_link() -> AsyncIterator[Link]:
    his = ScriptedHis()
    async with MllpServer(his, host="127.0.0.1", port=0, name="his") as server, TcpProxy(server.port) as proxy:
        sinks = [MllpAckSink(MllpSender("127.0.0.1", proxy.port, timeout=timeout)) for timeout in (10.0, 1.0)]
        try:
            yield Link(sinks[0], sinks[1], his, proxy)
        finally:
            his.released.set()
            for sink in sinks:
                await sink.close()


ADAPTERS = {"mllp": mllp_link}


@pytest.fixture(params=sorted(ADAPTERS))
async def link(request) -> AsyncIterator[Link]:
    async for made in ADAPTERS[request.param]():
        yield made


# ---------------------------------------------------------------------------- delivery


async def test_a_zam_arrives_at_the_his_byte_for_byte(link):
    message = zam("ORU-1")

    await link.sink.send(message)

    assert link.his.frames == [message]
    assert "é".encode("latin-1") in message                 # the bytes compared carry the accents as sent


async def test_a_send_returns_only_once_the_his_has_acknowledged(link):
    link.his.hold()
    sending = asyncio.create_task(link.sink.send(zam("ORU-1")))
    await link.his.received(1)
    assert not sending.done()

    link.his.released.set()
    await asyncio.wait_for(sending, DEADLINE)


async def test_zams_sent_one_after_another_arrive_in_that_order(link):
    messages = [zam(f"ORU-{n}", delivered=n % 2 == 0) for n in range(5)]

    for message in messages:
        await link.sink.send(message)

    assert link.his.frames == messages


async def test_zams_sent_at_the_same_time_are_each_acknowledged(link):
    messages = [zam(f"ORU-{n}") for n in range(5)]

    await asyncio.gather(*(link.sink.send(message) for message in messages))

    assert sorted(link.his.frames) == sorted(messages)


# ---------------------------------------------------------------------------- what the HIS answers


async def test_an_application_error_from_the_his_is_a_refusal_with_its_reason(link):
    link.his.answer_next("AE", "patient inconnu")

    with pytest.raises(RejectedByPeer) as refused:
        await link.sink.send(zam("ORU-1"))

    assert refused.value.code == "AE" and "patient inconnu" in refused.value.reason


async def test_an_application_reject_from_the_his_is_transient_with_its_reason(link):
    link.his.answer_next("AR", "base en maintenance")

    with pytest.raises(PeerUnavailable) as refused:
        await link.sink.send(zam("ORU-1"))

    assert refused.value.code == "AR" and "base en maintenance" in refused.value.reason


async def test_a_refused_zam_does_not_stop_the_next_one(link):
    first, second = zam("ORU-1"), zam("ORU-2")
    link.his.answer_next("AE", "patient inconnu")
    with pytest.raises(RejectedByPeer):
        await link.sink.send(first)

    await link.sink.send(second)

    assert link.his.frames == [first, second]


# ---------------------------------------------------------------------------- a HIS that is down or silent


async def test_a_his_that_is_down_is_transient_and_the_zam_goes_once_it_is_back(link):
    first, second = zam("ORU-1"), zam("ORU-2")
    await link.sink.send(first)                            # a connection is open when the HIS goes away
    await link.proxy.stop()

    with pytest.raises(PeerUnavailable):
        await link.sink.send(second)

    await link.proxy.start()
    await link.sink.send(second)
    assert link.his.frames == [first, second]


async def test_a_his_that_never_answers_is_given_up_on_as_transient(link):
    link.his.hold()

    async with asyncio.timeout(DEADLINE):                  # a bound for the test, should the sink have none
        with pytest.raises(PeerUnavailable):
            await link.impatient.send(zam("ORU-1"))


async def test_a_late_ack_is_never_taken_for_the_next_zams(link):
    first, second = zam("ORU-1"), zam("ORU-2")
    link.his.hold()
    with pytest.raises(PeerUnavailable):
        await link.impatient.send(first)
    link.his.answer_next("AE", "réponse tardive au premier")   # the answer to ORU-1, once the HIS wakes up
    link.his.released.set()

    await link.impatient.send(second)

    assert link.his.frames == [first, second]
