"""MLLP sender: one persistent connection, one message at a time, each checked against its ACK.

URL form: ``mllp://host:port`` (``mllps://`` with an SSL context). Used for the
ZAM business acknowledgements (:class:`MllpAckSink`, the ``AckSink`` port) and
by ``liaison send``.

python-hl7's client reads the ACK with a single ``recv(4096)`` and no timeout
(spec/hl7-libraries.md P6). Here the ACK is read through the framer up to
``0x1C 0x0D`` under a deadline, and MSA-2 must equal the MSH-10 we sent; on a
timeout or a mismatch the connection is dropped, because a late ACK would
otherwise be taken for the next message's.

Errors, as the engine's tree: AA/CA → the ACK bytes; AE/CE → ``RejectedByPeer``;
AR/CR, timeout, connection failure, unreadable ACK, MSA-2 mismatch →
``PeerUnavailable``. An outgoing message without a readable MSH → ``ParseError``.
"""

from __future__ import annotations

import asyncio
import ssl

import structlog

from channels.mllp.framer import Frame, MllpFramer, Oversize, Truncated, frame
from router.errors import ParseError, PeerUnavailable, RejectedByPeer
from router.hl7.ack import AckReply, read_ack
from router.hl7.charset import decode_lenient
from router.hl7.msh import read_header

log = structlog.get_logger(__name__)

MAX_ACK_BYTES = 1024 * 1024


class MllpSender:
    """Send framed messages over one persistent connection, reconnecting when it was closed."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None, default_charset: str = "utf-8"):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.default_charset = default_charset
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._framer = MllpFramer(MAX_ACK_BYTES)
        self._lock = asyncio.Lock()

    async def send(self, message: bytes) -> bytes:
        """Send one message; return the ACK bytes when the peer accepted it (AA/CA)."""
        reply, ack = await self.exchange(message)
        if reply.code in ("AA", "CA"):
            return ack
        detail = _describe(reply)
        if reply.code in ("AE", "CE"):
            raise RejectedByPeer(f"peer answered {detail}", code=reply.code)
        raise PeerUnavailable(f"peer answered {detail}", code=reply.code)

    async def exchange(self, message: bytes) -> tuple[AckReply, bytes]:
        """Send one message and return its ACK, read and checked (MSA-2), whatever its code.

        Raises ``PeerUnavailable`` on timeout, connection errors, an unreadable ACK or an MSA-2 mismatch.
        """
        control_id = _control_id(message, self.default_charset)
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout):
                    try:
                        reused = self._writer is not None
                        ack = await self._send_on(await self._connection(), message)
                    except (ConnectionError, EOFError):
                        if not reused:
                            raise
                        # The peer closed the idle connection as we reused it (its FIN not yet seen):
                        # nothing was acknowledged on it, so the message goes again on a fresh one.
                        await self._drop()
                        ack = await self._send_on(await self._connection(), message)
            except TimeoutError as exc:
                await self._drop()
                raise PeerUnavailable(f"no ACK from {self.host}:{self.port} within {self.timeout:g}s "
                                      f"(MSH-10 {control_id})") from exc
            except (ConnectionError, ssl.SSLError, OSError, EOFError) as exc:
                await self._drop()
                raise PeerUnavailable(f"MLLP connection to {self.host}:{self.port} failed: "
                                      f"{type(exc).__name__}: {exc}") from exc
            text, _, _ = decode_lenient(ack, self.default_charset)
            try:
                reply = read_ack(text)
            except ParseError as exc:
                await self._drop()
                raise PeerUnavailable(f"unreadable ACK from {self.host}:{self.port}: {exc.reason}") from exc
            if reply.control_id != control_id:
                await self._drop()
                raise PeerUnavailable(f"ACK MSA-2 {reply.control_id!r} does not match the MSH-10 sent "
                                      f"{control_id!r}; connection dropped")
            return reply, ack

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def __aenter__(self) -> MllpSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The open connection, or a new one if there is none or the peer closed it while idle."""
        if self._writer is not None and (self._writer.is_closing() or self._reader.at_eof()):
            await self._drop()
        if self._writer is None:
            kwargs = {}
            if self.ssl_context is not None:
                kwargs = {"ssl": self.ssl_context, "server_hostname": self.server_hostname or self.host}
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, **kwargs)
            self._framer = MllpFramer(MAX_ACK_BYTES)
            log.debug("mllp.sender_connected", host=self.host, port=self.port)
        return self._reader, self._writer

    async def _send_on(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], message: bytes) -> bytes:
        reader, writer = connection
        writer.write(frame(message))
        await writer.drain()
        return await self._read_ack(reader)

    async def _read_ack(self, reader: asyncio.StreamReader) -> bytes:
        while True:
            data = await reader.read(65536)
            if not data:
                raise ConnectionResetError("connection closed before the ACK")
            for event in self._framer.feed(data):
                if isinstance(event, Frame):
                    return event.data
                if isinstance(event, (Oversize, Truncated)):
                    raise ConnectionResetError(f"malformed ACK frame ({type(event).__name__})")

    async def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 2.0)
            except (ConnectionError, ssl.SSLError, OSError, TimeoutError):
                pass


class MllpAckSink:
    """The ``AckSink`` port over MLLP: send a business ack (ZAM) and require its positive ACK."""

    def __init__(self, sender: MllpSender):
        self.sender = sender

    async def send(self, message: bytes) -> None:
        await self.sender.send(message)

    async def close(self) -> None:
        await self.sender.close()


def _control_id(message: bytes, default_charset: str) -> str:
    text, _, _ = decode_lenient(message[:4096], default_charset)
    try:
        return read_header(text).control_id
    except ParseError as exc:
        raise ParseError(f"cannot send a message without a readable MSH: {exc.reason}") from exc


def _describe(reply: AckReply) -> str:
    parts = [reply.code]
    if reply.text:
        parts.append(reply.text)
    if reply.error_code or reply.error_text:
        parts.append(f"ERR {reply.error_code} {reply.error_text}".strip())
    return " / ".join(parts)
