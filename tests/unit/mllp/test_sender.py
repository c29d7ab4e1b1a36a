import asyncio

import pytest

from channels.mllp.framer import Frame, MllpFramer, frame
from channels.mllp.sender import MllpAckSink, MllpSender
from router.errors import ParseError, PeerUnavailable, RejectedByPeer
from tests.unit.hl7.samples import oru
from tests.unit.mllp.helpers import RecordingHandler, wait_until


class FakePeer:
    """A scripted MLLP peer: ``answer(frame_bytes) -> ack bytes | None`` (None = never answer)."""

    def __init__(self, answer):
        self.answer = answer
        self.connections = 0
        self.received: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer):
        self.connections += 1
        self.writers.append(writer)
        framer = MllpFramer()
        while data := await reader.read(65536):
            for event in framer.feed(data):
                if isinstance(event, Frame):
                    self.received.append(event.data)
                    ack = self.answer(event.data)
                    if ack is not None:
                        writer.write(frame(ack))
        writer.close()

    async def stop(self):
        self.server.close()
        for writer in self.writers:
            writer.close()


def ack_for(code: str, msa2: str, extra: str = "") -> bytes:
    return (f"MSH|^~\\&|PEER|FAC|LIAISON|HOP|20250101||ACK^R01^ACK|A1|P|2.5\rMSA|{code}|{msa2}|refus\r"
            f"{extra}").encode()


@pytest.fixture
async def peer_factory():
    peers = []

    async def make(answer):
        peer = FakePeer(answer)
        port = await peer.start()
        peers.append(peer)
        return peer, port

    yield make
    for peer in peers:
        await peer.stop()


def control_id(raw: bytes) -> str:
    return raw.split(b"\r")[0].split(b"|")[9].decode()


async def test_sender_reuses_one_connection(peer_factory):
    peer, port = await peer_factory(lambda raw: ack_for("AA", control_id(raw)))
    async with MllpSender("127.0.0.1", port, timeout=5) as sender:
        for n in range(5):
            assert b"MSA|AA|S%d" % n in await sender.send(oru(f"S{n}").encode())
    assert peer.connections == 1 and len(peer.received) == 5


async def test_sender_timeout_raises_peer_unavailable_and_drops_connection(peer_factory):
    answers = iter([None, "answer"])
    peer, port = await peer_factory(lambda raw: None if next(answers) is None else ack_for("AA", control_id(raw)))
    async with MllpSender("127.0.0.1", port, timeout=0.3) as sender:
        with pytest.raises(PeerUnavailable, match="no ACK"):
            await sender.send(oru("SLOW").encode())
        await sender.send(oru("NEXT").encode())
    assert peer.connections == 2


async def test_sender_msa2_mismatch_raises_and_drops_connection(peer_factory):
    peer, port = await peer_factory(lambda raw: ack_for("AA", "SOMETHING-ELSE"))
    async with MllpSender("127.0.0.1", port, timeout=5) as sender:
        with pytest.raises(PeerUnavailable, match="MSA-2"):
            await sender.send(oru("MINE").encode())
        with pytest.raises(PeerUnavailable):
            await sender.send(oru("MINE2").encode())
    assert peer.connections == 2


@pytest.mark.parametrize("code, error", [("AE", RejectedByPeer), ("CE", RejectedByPeer),
                                         ("AR", PeerUnavailable), ("CR", PeerUnavailable)])
async def test_sender_maps_negative_acks(peer_factory, code, error):
    err = "ERR|||902^Identifiant de patient inconnu^messageErrorCondition|E|\r"
    peer, port = await peer_factory(lambda raw: ack_for(code, control_id(raw), err))
    async with MllpSender("127.0.0.1", port, timeout=5) as sender:
        with pytest.raises(error) as info:
            await sender.send(oru("NEG").encode())
    assert info.value.code == code
    assert "902 Identifiant de patient inconnu" in str(info.value)


async def test_sender_unreadable_ack_is_peer_unavailable(peer_factory):
    peer, port = await peer_factory(lambda raw: b"garbage")
    async with MllpSender("127.0.0.1", port, timeout=5) as sender:
        with pytest.raises(PeerUnavailable, match="unreadable ACK"):
            await sender.send(oru("X").encode())


async def test_sender_connection_refused_is_peer_unavailable(peer_factory):
    peer, port = await peer_factory(lambda raw: None)
    await peer.stop()
    async with MllpSender("127.0.0.1", port, timeout=2) as sender:
        with pytest.raises(PeerUnavailable, match="connection"):
            await sender.send(oru("X").encode())


async def test_sender_refuses_a_message_without_msh():
    async with MllpSender("127.0.0.1", 9, timeout=1) as sender:
        with pytest.raises(ParseError):
            await sender.send(b"PID|1\r")


async def test_sender_reconnects_after_the_listener_closed_an_idle_connection(make_server):
    handler = RecordingHandler()
    server = await make_server(handler, read_timeout=0.2)
    async with MllpSender("127.0.0.1", server.port, timeout=5) as sender:
        await sender.send(oru("BEFORE").encode())
        await wait_until(lambda: server.active_connections == 0)       # idle timeout closed it
        assert b"MSA|AA|AFTER" in await sender.send(oru("AFTER").encode())
    assert server.connections == 2


async def test_ack_sink_sends_and_requires_positive_ack(make_server):
    handler = RecordingHandler()
    server = await make_server(handler)
    sink = MllpAckSink(MllpSender("127.0.0.1", server.port, timeout=5))
    await sink.send(oru("ZAM1").encode())
    handler.code = "AE"
    with pytest.raises(RejectedByPeer):
        await sink.send(oru("ZAM2").encode())
    await sink.close()
    assert [control_id(f) for f in handler.frames] == ["ZAM1", "ZAM2"]
