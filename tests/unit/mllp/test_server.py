import asyncio

import pytest
from structlog.testing import capture_logs

from channels.mllp.framer import frame
from router.hl7.charset import decode
from tests.unit.hl7.samples import oru
from tests.unit.mllp.helpers import RecordingHandler, read_frames, reply, wait_until


async def connect(server):
    return await asyncio.open_connection("127.0.0.1", server.port)


async def close(writer):
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass


async def test_one_message_gets_its_ack(make_server, handler):
    server = await make_server(handler)
    reader, writer = await connect(server)
    writer.write(frame(oru("ONE").encode()))
    [ack] = await read_frames(reader, 1)
    assert (reply(ack).code, reply(ack).control_id) == ("AA", "ONE")
    assert server.frames == 1 and server.connections == 1
    await close(writer)


async def test_many_messages_on_one_connection_answered_in_order(make_server, handler):
    server = await make_server(handler)
    reader, writer = await connect(server)
    ids = [f"M{i:04d}" for i in range(300)]
    writer.write(b"".join(frame(oru(i).encode()) for i in ids))      # pipelined, no wait
    acks = await read_frames(reader, len(ids))
    assert [reply(a).control_id for a in acks] == ids
    assert server.connections == 1 and server.frames == 300
    await close(writer)


async def test_truncated_frame_reported_and_listener_serves_a_new_connection(make_server, handler):
    server = await make_server(handler)
    _, writer = await connect(server)
    writer.write(b"\x0b" + oru("CUT").encode()[:60])
    await writer.drain()
    await close(writer)
    await wait_until(lambda: len(handler.truncated) == 1)
    assert handler.truncated[0].startswith(b"MSH|") and handler.frames == []
    assert server.truncated == 1

    reader, writer = await connect(server)
    writer.write(frame(oru("AFTER").encode()))
    [ack] = await read_frames(reader, 1)
    assert reply(ack).control_id == "AFTER"
    await close(writer)


async def test_junk_between_frames_is_skipped_and_both_messages_answered(make_server, handler):
    server = await make_server(handler)
    reader, writer = await connect(server)
    with capture_logs() as logs:
        writer.write(b"\r\n\x00" + frame(oru("J1").encode()) + b"\r\n\x00keep-alive garbage\n"
                     + frame(oru("J2").encode()))
        acks = await read_frames(reader, 2)
    assert [reply(a).control_id for a in acks] == ["J1", "J2"]
    assert server.junk_bytes == 3 + 3 + len(b"keep-alive garbage\n")
    junk_logs = [e for e in logs if e["event"] == "mllp.junk_between_frames"]
    assert len(junk_logs) == 1 and junk_logs[0]["size"] == len(b"\r\n\x00keep-alive garbage\n")
    await close(writer)


async def test_oversize_frame_gets_a_nack_then_next_message_on_same_connection_gets_aa(make_server, handler):
    server = await make_server(handler, max_frame_bytes=8 * 1024)
    reader, writer = await connect(server)
    big = oru("BIG").replace("PENsaW5pY2FsRG9jdW1lbnQvPg==", "A" * 200_000).encode()
    writer.write(frame(big))
    writer.write(frame(oru("SMALL").encode()))
    nack, ack = await read_frames(reader, 2)
    assert (reply(nack).code, reply(nack).control_id) == ("AR", "BIG")
    assert "over the limit" in reply(nack).text
    assert (reply(ack).code, reply(ack).control_id) == ("AA", "SMALL")
    [(prefix, size)] = handler.oversize
    assert size == len(big) and prefix == big[:4096]
    assert server.oversize == 1 and [decode(f)[0][:3] for f in handler.frames] == ["MSH"]
    await close(writer)


async def test_latin1_message_decoded_right_and_ack_encoded_in_latin1(make_server, handler):
    server = await make_server(handler)
    reader, writer = await connect(server)
    writer.write(frame(oru("LAT1", charset="8859/1", family="Hélène Ève").encode("latin-1")))
    [ack] = await read_frames(reader, 1)
    text, codec = decode(handler.frames[0])
    assert codec == "latin-1" and "Hélène Ève" in text
    assert "reçu".encode("latin-1") in ack            # MSA-3 written by the handler, in latin-1
    with pytest.raises(UnicodeDecodeError):
        ack.decode("utf-8")
    parsed = reply(ack, "latin-1")
    assert (parsed.text, parsed.header.charset) == ("reçu", "8859/1")
    await close(writer)


async def test_lf_segment_endings_are_answered(make_server, handler):
    server = await make_server(handler)
    reader, writer = await connect(server)
    writer.write(frame(oru("LF", segment_end="\n").encode()))
    writer.write(frame(oru("CRLF", segment_end="\r\n").encode()))
    acks = await read_frames(reader, 2)
    assert [(reply(a).code, reply(a).control_id) for a in acks] == [("AA", "LF"), ("AA", "CRLF")]
    await close(writer)


async def test_read_timeout_closes_an_idle_connection(make_server, handler):
    server = await make_server(handler, read_timeout=0.2)
    reader, writer = await connect(server)
    writer.write(frame(oru("IDLE").encode()))
    await read_frames(reader, 1)
    async with asyncio.timeout(5):
        assert await reader.read() == b""                  # closed by the listener
    assert handler.truncated == []
    await close(writer)


async def test_read_timeout_mid_frame_reports_truncated(make_server, handler):
    server = await make_server(handler, read_timeout=0.2)
    reader, writer = await connect(server)
    writer.write(b"\x0b" + oru("SLOW").encode()[:80])
    await wait_until(lambda: len(handler.truncated) == 1)
    assert handler.truncated[0].startswith(b"MSH|")
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    await close(writer)


async def test_max_connections_extra_connection_closed_at_once(make_server, handler):
    server = await make_server(handler, max_connections=1)
    reader1, writer1 = await connect(server)
    writer1.write(frame(oru("FIRST").encode()))
    await read_frames(reader1, 1)
    with capture_logs() as logs:
        reader2, writer2 = await connect(server)
        async with asyncio.timeout(5):
            assert await reader2.read() == b""
    assert server.refused_connections == 1
    assert any(e["event"] == "mllp.connection_refused" for e in logs)
    writer1.write(frame(oru("STILL").encode()))          # the first connection still works
    [ack] = await read_frames(reader1, 1)
    assert reply(ack).control_id == "STILL"
    await close(writer1)
    await close(writer2)


class FailingHandler(RecordingHandler):
    async def handle_frame(self, raw: bytes, peer: str) -> bytes:
        self.frames.append(raw)
        if len(self.frames) == 1:
            raise RuntimeError("journal exploded")
        return await super().handle_frame(raw, peer)


async def test_handler_exception_answers_ar_and_connection_goes_on(make_server):
    handler = FailingHandler()
    server = await make_server(handler)
    reader, writer = await connect(server)
    writer.write(frame(oru("BOOM").encode()) + frame(oru("OK").encode()))
    nack, ack = await read_frames(reader, 2)
    assert (reply(nack).code, reply(nack).control_id, reply(nack).error_code) == ("AR", "BOOM", "207")
    assert (reply(ack).code, reply(ack).control_id) == ("AA", "OK")
    assert server.handler_errors == 1
    await close(writer)


async def test_handler_exception_on_unreadable_frame_answers_minimal_nack(make_server):
    class Broken(RecordingHandler):
        async def handle_frame(self, raw, peer):
            raise ValueError("cannot")

    server = await make_server(Broken())
    reader, writer = await connect(server)
    writer.write(frame(b"not hl7 at all"))
    [nack] = await read_frames(reader, 1)
    assert (reply(nack).code, reply(nack).control_id) == ("AR", "")
    await close(writer)


async def test_close_lets_the_frame_in_flight_finish(make_server, handler):
    handler.gate = asyncio.Event()
    server = await make_server(handler)
    reader, writer = await connect(server)
    writer.write(frame(oru("INFLIGHT").encode()))
    await wait_until(lambda: len(handler.frames) == 1)
    closing = asyncio.create_task(server.close())
    await wait_until(lambda: server.closing)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)   # no longer accepting
    assert not closing.done()
    handler.gate.set()
    [ack] = await read_frames(reader, 1)
    assert reply(ack).control_id == "INFLIGHT"
    async with asyncio.timeout(5):
        await closing
    assert server.active_connections == 0
    await close(writer)
