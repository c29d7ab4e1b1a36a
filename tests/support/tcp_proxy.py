"""A TCP relay on 127.0.0.1 in front of a test server, that a test takes down and brings back.

The contract suites use it to make a peer unreachable and then reachable again
on the same address, whatever the peer (a Postfix the session shares, a test
double bound to a port of its own choosing). Bytes pass through untouched, so
TLS runs end to end between the adapter and the server::

    async with TcpProxy(server_port) as proxy:      # listening on proxy.port
        ...
        await proxy.stop()       # open connections cut, connections refused
        await proxy.start()      # listening again on the same port

With ``upload=SlowUpload(...)`` it also plays a slow link towards the server: each
large burst from the client (under TLS a mail's DATA is the only one; SMTP commands
and the handshake are small) is held for a while before it is passed on, so the
server sees the end of the mail only then. A client that goes away while its burst
is held (a process killed with ``kill -9``) loses it: the burst is dropped and the
server's connection reset, so the server never gets the end of that mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterable

READ_CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1", *, upload: SlowUpload | None = None):
        self.target_host = target_host
        self.target_port = target_port
        self.upload = upload
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
        upstream = (_pump(client_reader, server_writer) if self.upload is None
                    else self.upload.pump(client_reader, server_writer))
        try:
            await asyncio.gather(upstream, _pump(server_reader, client_writer))
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


class SlowUpload:
    """The client-to-server side of a slow link, for :class:`TcpProxy` (see the module docstring).

    A read of at least ``min_bytes`` starts a burst; what the client sends while it is held
    joins it. Each burst is held for the next of ``delays`` (seconds, cycled), or, once
    :meth:`gate` was called, until :meth:`release` or until its client goes away.
    """

    def __init__(self, delays: Iterable[float], *, min_bytes: int = 4096):
        self.min_bytes = min_bytes
        self._delays = itertools.cycle(delays)
        self.forwarded = 0          # bursts passed on to the server
        self.dropped = 0            # bursts whose client went away while they were held
        self.held = 0               # bursts held now
        self.gated = 0              # of which held by the gate
        self._gate = False
        self._released = asyncio.Event()

    def gate(self) -> None:
        """Hold every burst from now on until :meth:`release` (or its client goes away)."""
        self._gate = True
        self._released.clear()

    def release(self) -> None:
        self._gate = False
        self._released.set()

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy client to server, holding bursts; drop a held burst and reset the server if the client goes."""
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(READ_CHUNK):
                if len(data) >= self.min_bytes:
                    data = await self._hold(data, reader)
                    if data is None:
                        writer.transport.abort()         # the server sees the session cut before the end of DATA
                        return
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

    async def _hold(self, data: bytes, reader: asyncio.StreamReader) -> bytes | None:
        """The burst once its time is up, or None when its client went away first."""
        gated = self._gate
        loop = asyncio.get_running_loop()
        deadline = None if gated else loop.time() + next(self._delays)
        self.held += 1
        self.gated += gated
        read = asyncio.ensure_future(reader.read(READ_CHUNK))
        waiters = {read}
        if gated:
            waiters.add(asyncio.ensure_future(self._released.wait()))
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if read not in done:
                    break                                   # time is up, or the gate was released
                try:
                    more = read.result()
                except (ConnectionError, OSError):
                    more = b""
                if not more:                                # the client is gone: its burst never reaches the server
                    self.dropped += 1
                    return None
                data += more
                waiters.discard(read)
                read = asyncio.ensure_future(reader.read(READ_CHUNK))
                waiters.add(read)
            self.forwarded += 1
            return data
        finally:
            self.held -= 1
            self.gated -= gated
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
