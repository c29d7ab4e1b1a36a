"""MLLP listener on asyncio: persistent connections, in-order answers, limits, TLS/mTLS.

URL form (for the composition root): ``mllp://host:port`` and ``mllps://host:port``
(TLS; mutual TLS when the SSL context requires client certificates).

Features: many messages per connection, answered strictly in order; our own
framer (junk between frames tolerated, a size limit that NACKs and keeps the
connection, truncated frames reported); an idle/read timeout; a connection
cap; graceful close. The listener never decides the answer: a
:class:`FrameHandler` journals each frame and returns the ACK bytes. A handler
that raises is logged and answered with an AR, and the listener goes on.

Design: asyncio streams with our framer fed by ``reader.read(64 KiB)``; the
StreamReader's line limit never applies since ``readuntil`` is not used. One
coroutine per connection reads, handles and writes in turn, so a slow handler
back-pressures its own sender and no other.
"""

from __future__ import annotations

import asyncio
import ssl

import structlog

from channels.mllp.framer import MSH_HEAD_BYTES, Frame, Junk, MllpFramer, Oversize, Truncated, frame
from router.hl7.ack import build_ack, build_minimal_nack
from router.hl7.charset import codec_for, decode_lenient, encode, sniff_msh18
from router.hl7.msh import read_header
from router.ingest import MAX_FRAME_BYTES
from router.ports import FrameHandler

log = structlog.get_logger(__name__)

READ_CHUNK = 64 * 1024


class MllpServer:
    """An MLLP listener; see the module docstring. ``port`` is the bound port once started."""

    def __init__(self, handler: FrameHandler, *, host: str = "127.0.0.1", port: int = 0,
                 max_frame_bytes: int = MAX_FRAME_BYTES, read_timeout: float | None = 300.0,
                 max_connections: int = 256, ssl_context: ssl.SSLContext | None = None,
                 default_charset: str = "utf-8", name: str = "mllp", reuse_port: bool = False):
        self.handler = handler
        self.reuse_port = reuse_port
        self.host = host
        self.port = port
        self.max_frame_bytes = max_frame_bytes
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.ssl_context = ssl_context
        self.default_charset = default_charset
        self.name = name
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task, _Connection] = {}
        self._closing = False
        # counters (cumulative, for metrics)
        self.frames = 0
        self.junk_bytes = 0
        self.oversize = 0
        self.truncated = 0
        self.connections = 0            # accepted
        self.refused_connections = 0    # over max_connections
        self.handler_errors = 0

    @property
    def active_connections(self) -> int:
        return len(self._connections)

    @property
    def closing(self) -> bool:
        """True once :meth:`close` has started (no new connections, no new reads)."""
        return self._closing

    async def start(self) -> None:
        self._closing = False
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.ssl_context, limit=READ_CHUNK,
            ssl_handshake_timeout=self.read_timeout if self.ssl_context else None,
            reuse_port=self.reuse_port or None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("mllp.listening", channel=self.name, host=self.host, port=self.port, tls=self.ssl_context is not None)

    async def close(self, grace: float = 10.0) -> None:
        """Stop accepting; let frames being handled finish and their ACKs go out; then close.

        Connections waiting for data are closed at once (a frame half received
        then is reported to ``handle_truncated``: the sender never got an ACK and
        will resend). Handlers still running after ``grace`` seconds are cancelled.
        """
        self._closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections.values()):
            if conn.reading:             # idle between frames (or mid-frame): nothing in flight to finish
                conn.writer.close()
        tasks = list(self._connections)
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        log.info("mllp.closed", channel=self.name)

    async def __aenter__(self) -> MllpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------- connection

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        if self._closing or len(self._connections) >= self.max_connections:
            self.refused_connections += 1
            log.warning("mllp.connection_refused", channel=self.name, peer=peer,
                        reason="closing" if self._closing else "max_connections", limit=self.max_connections)
            writer.close()
            return
        task = asyncio.current_task()
        conn = _Connection(writer)
        self._connections[task] = conn
        self.connections += 1
        framer = MllpFramer(self.max_frame_bytes)
        log.info("mllp.connection_open", channel=self.name, peer=peer)
        reason = "closed by peer"
        try:
            while not self._closing:
                conn.reading = True
                try:
                    async with asyncio.timeout(self.read_timeout):
                        data = await reader.read(READ_CHUNK)
                except TimeoutError:
                    reason = "read timeout"
                    data = b""
                except (ConnectionError, ssl.SSLError, OSError) as exc:
                    reason = f"connection error: {type(exc).__name__}"
                    data = b""
                finally:
                    conn.reading = False
                if not data:
                    break
                junk_before = framer.junk_bytes
                events = framer.feed(data)
                self.junk_bytes += framer.junk_bytes - junk_before
                if not await self._dispatch(events, writer, peer):
                    reason = "write failed"
                    break
            if self._closing:
                reason = "listener closing"
            await self._dispatch(framer.eof(), writer, peer)     # a frame cut short, if any
        finally:
            del self._connections[task]
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError, OSError):
                pass
            log.info("mllp.connection_closed", channel=self.name, peer=peer, reason=reason,
                     frames=framer.frames)

    async def _dispatch(self, events: list, writer: asyncio.StreamWriter, peer: str) -> bool:
        """Handle events in order; write each answer. False when the peer can no longer be written to."""
        for event in events:
            if isinstance(event, Frame):
                self.frames += 1
                ack = await self._call(self.handler.handle_frame(event.data, peer), event.data, peer)
            elif isinstance(event, Oversize):
                self.oversize += 1
                log.warning("mllp.frame_oversize", channel=self.name, peer=peer, size=event.size,
                            limit=self.max_frame_bytes)
                ack = await self._call(self.handler.handle_oversize(event.prefix, event.size, peer),
                                       event.prefix, peer)
            elif isinstance(event, Truncated):
                self.truncated += 1
                log.warning("mllp.frame_truncated", channel=self.name, peer=peer, size=event.size)
                try:
                    await self.handler.handle_truncated(event.data, peer)
                except Exception:
                    self.handler_errors += 1
                    log.exception("mllp.handler_error", channel=self.name, peer=peer, event="truncated")
                continue
            elif isinstance(event, Junk):
                log.warning("mllp.junk_between_frames", channel=self.name, peer=peer, size=event.size)
                continue
            else:  # pragma: no cover - the framer emits nothing else
                continue
            if writer.is_closing():
                return False
            try:
                writer.write(frame(ack))
                await writer.drain()
            except (ConnectionError, ssl.SSLError, OSError):
                return False
        return True

    async def _call(self, coro, raw: bytes, peer: str) -> bytes:
        """Await a handler; on any exception answer AR (from the MSH when readable) instead of dying."""
        try:
            return await coro
        except Exception as exc:
            self.handler_errors += 1
            log.exception("mllp.handler_error", channel=self.name, peer=peer, error=type(exc).__name__)
            return self.fallback_nack(raw, "internal error while receiving the message")

    def fallback_nack(self, raw: bytes, reason: str) -> bytes:
        """An AR for ``raw``: built from its MSH when it can be read, minimal otherwise."""
        text, codec, _ = decode_lenient(raw[:MSH_HEAD_BYTES], self.default_charset)
        try:
            header = read_header(text)
        except Exception:
            codec = codec_for(sniff_msh18(raw[:MSH_HEAD_BYTES]), self.default_charset)
            return encode(build_minimal_nack(reason, error_code="207", error_text="Application internal error",
                                             codec=codec), codec)
        return encode(build_ack(header, "AR", text=reason, error_code="207"), codec)



class _Connection:
    __slots__ = ("writer", "reading")

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.reading = False
