"""A bare asyncio MLLP echo server: frames in, one fixed short ACK out per frame.

The ceiling for the ingest bench: no decoding, no journal, no bus — only the
framing and the socket work every MLLP listener pays. Compare
``channels.mllp.server.MllpServer`` (and the whole ingest path) against it in
the same run (spec/performance.md).

    python -m bench.mllp_echo [--host 127.0.0.1] [--port 2575]
"""

from __future__ import annotations

import argparse
import asyncio

ACK = (b"\x0bMSH|^~\\&|ECHO|BENCH|||20250101000000+0100||ACK^R01^ACK|1|P|2.5\r"
       b"MSA|AA|1\r\x1c\r")
_END = b"\x1c\r"


class _EchoProtocol(asyncio.Protocol):
    """Count complete frames in each chunk and answer each with :data:`ACK`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        data = self.tail + data
        count = data.count(_END)
        if count:
            self.tail = data[data.rfind(_END) + 2:]
            self.transport.write(ACK * count)
        else:
            self.tail = data[-1:] if data.endswith(b"\x1c") else b""


async def start_echo_server(host: str = "127.0.0.1", port: int = 0) -> tuple[asyncio.Server, int]:
    """Start the echo server; return it and its bound port (``port=0`` picks a free one)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_EchoProtocol, host, port)
    return server, server.sockets[0].getsockname()[1]


async def _main(host: str, port: int) -> None:
    server, bound = await start_echo_server(host, port)
    print(f"MLLP echo listening on {host}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2575)
    args = parser.parse_args()
    try:
        asyncio.run(_main(args.host, args.port))
    except KeyboardInterrupt:
        pass
