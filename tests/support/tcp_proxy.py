"""A TCP relay on 127.0.0.1 in front of a test server, that a test takes down and brings back.

The contract suites use it to make a peer unreachable and then reachable again
on the same address, whatever the peer (a Postfix the session shares, a test
double bound to a port of its own choosing). Bytes pass through untouched, so
TLS runs end to end between the adapter and the server::

    async with TcpProxy(server_port) as proxy:      # listening on proxy.port
        ...
        await proxy.stop()       # open connections cut, connections refused
        await proxy.start()      # listening again on the same port
"""

from __future__ import annotations

import asyncio
import contextlib

READ_CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.connections = 0            # accepted since the first start
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        """Listen (on a free port the first time, on the same port after a stop); return the port."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and cut every relayed connection, both ways."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_writer.close()
            return
        self._writers.update((client_writer, server_writer))
        try:
            await asyncio.gather(_pump(client_reader, server_writer), _pump(server_reader, client_writer))
        finally:
            for writer in (client_writer, server_writer):
                self._writers.discard(writer)
                writer.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the end on (half-close) so each side sees what the other did."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(READ_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
