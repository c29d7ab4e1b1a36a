"""Test helpers for the MLLP listener and sender: a recording handler and a raw socket client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from channels.mllp.framer import Frame, MllpFramer
from router.hl7.ack import AckReply, build_ack, read_ack
from router.hl7.charset import decode, decode_lenient, encode
from router.hl7.msh import read_header


class RecordingHandler:
    """Answers AA (or ``code``) from each frame's MSH, in its codec, and records every call."""

    def __init__(self, code: str = "AA"):
        self.code = code
        self.frames: list[bytes] = []
        self.oversize: list[tuple[bytes, int]] = []
        self.truncated: list[bytes] = []
        self.gate: asyncio.Event | None = None      # when set, handle_frame waits for it

    async def handle_frame(self, raw: bytes, peer: str) -> bytes:
        self.frames.append(raw)
        if self.gate is not None:
            await self.gate.wait()
        text, codec = decode(raw)
        return encode(build_ack(read_header(text), self.code, text="reçu"), codec)

    async def handle_oversize(self, prefix: bytes, size: int, peer: str) -> bytes:
        self.oversize.append((prefix, size))
        text, codec, _ = decode_lenient(prefix)
        return encode(build_ack(read_header(text), "AR", text=f"message of {size} bytes is over the limit",
                                error_code="207"), codec)

    async def handle_truncated(self, partial: bytes, peer: str) -> None:
        self.truncated.append(partial)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until true or fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached before the deadline")
        await asyncio.sleep(0.01)


async def read_frames(reader: asyncio.StreamReader, count: int, timeout: float = 5.0) -> list[bytes]:
    """Read ``count`` MLLP frames (the ACKs) from a raw connection."""
    framer, frames = MllpFramer(), []
    async with asyncio.timeout(timeout):
        while len(frames) < count:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError(f"closed after {len(frames)} of {count} frames")
            frames += [e.data for e in framer.feed(data) if isinstance(e, Frame)]
    return frames


def reply(ack: bytes, codec: str = "utf-8") -> AckReply:
    return read_ack(ack.decode(codec))
