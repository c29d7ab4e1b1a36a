"""A stand-in HIS for the demo and the tests: an MLLP listener that keeps what it receives and answers AA.

Liaison sends its ZAM business acknowledgements here. Each message is kept
in memory and, when a directory is given, written to disk as ``NNN_<type>.hl7``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from channels.mllp.server import MllpServer
from router.hl7.ack import build_ack
from router.hl7.charset import decode_lenient, encode
from router.hl7.msh import MshHeader, read_header


class RecordingHis:
    def __init__(self, directory: Path | None = None):
        self.directory = directory
        self.received: list[str] = []
        self._changed = asyncio.Condition()
        self.server = MllpServer(self, host="127.0.0.1", port=0, name="his")

    async def start(self) -> int:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        await self.server.start()
        return self.server.port

    async def close(self) -> None:
        await self.server.close()

    async def handle_frame(self, raw: bytes, peer: str) -> bytes:
        text, codec, _ = decode_lenient(raw)
        header = read_header(text)
        await self.record(raw, text, header)
        return encode(build_ack(header, "AA"), codec)

    async def record(self, raw: bytes, text: str, header: MshHeader) -> None:
        """Keep one received message (a subclass keeps what it needs instead)."""
        async with self._changed:
            self.received.append(text)
            if self.directory is not None:
                name = f"{len(self.received):03d}_{header.message_type}_{header.trigger}.hl7"
                (self.directory / name).write_bytes(raw)
            self._changed.notify_all()

    async def handle_oversize(self, prefix: bytes, size: int, peer: str) -> bytes:
        text, codec, _ = decode_lenient(prefix)
        return encode(build_ack(read_header(text), "AR", text="too large"), codec)

    async def handle_truncated(self, partial: bytes, peer: str) -> None:
        return None

    async def wait_for(self, count: int, timeout: float) -> list[str]:
        """Wait until ``count`` messages arrived (or the timeout passed); return them all."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(self.received) >= count), timeout)
            except TimeoutError:
                pass
            return list(self.received)
