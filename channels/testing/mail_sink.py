"""SmtpSink: a local MSSanté-like relay for tests and ``liaison demo``.

An aiosmtpd server on 127.0.0.1 that behaves like an operator's relay where it
matters to Liaison: STARTTLS is required before MAIL, the client must present
a certificate signed by the test CA (TLS ≥ 1.2), and replies can be scripted to
rehearse faults::

    sink = SmtpSink.from_pki(pki, tmp_path / "mail",
                             rcpt_script={"a@x": [451, 250], "b@x": [550]},
                             data_script=[452])
    port = await sink.start()

A script is a list of replies (an int code or a full ``"550 5.1.1 text"`` line)
consumed one per attempt; the last one repeats. ``rcpt_script`` is keyed by
recipient, ``mail_script`` applies to MAIL FROM, ``data_script`` to the end of
DATA. With ``implicit_tls=True`` the sink speaks TLS from the first byte (SMTPS,
port 465 style) instead of STARTTLS. With ``dsn=True`` the sink announces the DSN extension
(RFC 3461) and keeps what the client asked: ``ENVID`` and, per recipient, ``NOTIFY``
(:attr:`ReceivedMail.envelope_id`, :attr:`ReceivedMail.notify`); it writes no DSN itself.

Each accepted message is kept in :attr:`SmtpSink.messages` and written once per
accepted recipient, Maildir style, as ``<maildir>/<recipient>/new/<unique>.eml``
with ``Return-Path`` and ``Delivered-To`` prepended (as Postfix's virtual agent
does). aiosmtpd is a test/demo dependency: it is imported only here.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import ssl
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from aiosmtpd.smtp import SMTP, TLSSetupException, syntax

from channels.testing.pki import TestPki

__all__ = ["ReceivedMail", "SmtpSink", "folder_name"]

log = structlog.get_logger(__name__)

Reply = int | str

_TEXTS = {
    250: "2.0.0 Ok",
    421: "4.3.2 Service not available, closing transmission channel",
    450: "4.2.0 Mailbox unavailable, try again later",
    451: "4.3.0 Temporary failure, try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.1.1 Mailbox unavailable",
    552: "5.3.4 Message too big",
    554: "5.7.1 Transaction failed",
}


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the sink accepted it."""

    sender: str
    recipients: tuple[str, ...]      # only the accepted ones
    data: bytes                      # the message as received (CRLF, dot-unstuffed)
    client_subject: str              # commonName of the client certificate
    connection: int                  # which TCP connection brought it (1, 2, ...)
    files: tuple[Path, ...] = field(default=())
    envelope_id: str = ""            # ENVID of MAIL FROM (dsn=True), xtext-decoded
    notify: Mapping[str, str] = field(default_factory=dict)   # NOTIFY of each accepted recipient (dsn=True)


class SmtpSink:
    """A scriptable TLS-only SMTP server that stores what it accepts."""

    def __init__(self, maildir: Path, *, server_cert: Path, server_key: Path, ca_cert: Path,
                 host: str = "127.0.0.1", port: int = 0,
                 rcpt_script: Mapping[str, Sequence[Reply]] | None = None,
                 mail_script: Sequence[Reply] | None = None,
                 data_script: Sequence[Reply] | None = None, implicit_tls: bool = False,
                 data_delay: float = 0.0, keep_in_memory: bool = True, dsn: bool = False):
        self.maildir = Path(maildir)
        #: Seconds each DATA waits before its reply: a slow relay (a busy MTA, content filtering).
        self.data_delay = data_delay
        #: False: mails are only written to the Maildir (a long bench run would otherwise hold every one).
        self.keep_in_memory = keep_in_memory
        #: True: announce DSN and accept its MAIL/RCPT parameters (kept in :class:`ReceivedMail`).
        self.dsn = dsn
        self.host = host
        self.port = port
        self.messages: list[ReceivedMail] = []
        self.connections = 0
        self.data_commands = 0              # DATA commands received, accepted or not
        self.tls_refusals: list[str] = []   # why TLS handshakes were refused (client certificate)
        self._context = _server_context(server_cert, server_key, ca_cert)
        self.implicit_tls = implicit_tls
        self._rcpt = {k.lower(): deque(v) for k, v in (rcpt_script or {}).items()}
        self._mail = deque(mail_script or ())
        self._data = deque(data_script or ())
        self._server: asyncio.AbstractServer | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._arrived = asyncio.Event()
        self._seq = itertools.count(1)

    @classmethod
    def from_pki(cls, pki: TestPki, maildir: Path, **options) -> "SmtpSink":
        return cls(maildir, server_cert=pki.server_cert, server_key=pki.server_key, ca_cert=pki.ca_cert,
                   **options)

    async def start(self) -> int:
        """Listen (on a free port unless one was given) and return the port."""
        loop = asyncio.get_running_loop()
        self.maildir.mkdir(parents=True, exist_ok=True)
        self._arrived = asyncio.Event()
        self._server = await loop.create_server(self._new_session, self.host, self.port,
                                                ssl=self._context if self.implicit_tls else None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def stop(self) -> None:
        """Stop listening and cut the open sessions."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.drop_connections()

    def drop_connections(self) -> None:
        """Close every open session, as a relay does after its idle timeout; keep listening."""
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        self._sessions.clear()

    async def __aenter__(self) -> "SmtpSink":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Wait until at least ``count`` messages arrived; raise TimeoutError after ``timeout``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.messages) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"sink got {len(self.messages)} message(s), expected {count}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return list(self.messages)

    # ------------------------------------------------------------ aiosmtpd

    def _new_session(self) -> SMTP:
        self.connections += 1
        handler = (_DsnHandler if self.dsn else _Handler)(self, self.connections)
        session = _SinkSMTP(handler, None if self.implicit_tls else self._context,
                            hostname="mx.sink.test", loop=asyncio.get_running_loop())
        self._sessions.add(session)
        return session

    def _next(self, script: deque, default: int) -> str:
        reply: Reply = default
        if script:
            reply = script.popleft() if len(script) > 1 else script[0]
        if isinstance(reply, int):
            return f"{reply} {_TEXTS.get(reply, 'Scripted reply')}"
        return reply

    def _store(self, sender: str, recipients: list[str], data: bytes, subject: str, connection: int,
               envelope_id: str = "", notify: Mapping[str, str] | None = None) -> None:
        files = []
        for recipient in recipients:
            folder = self.maildir / _folder_name(recipient)
            for sub in ("tmp", "new", "cur"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns()}.{os.getpid()}_{next(self._seq)}.eml"
            head = f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode("ascii", "replace")
            (folder / "tmp" / name).write_bytes(head + data)
            os.replace(folder / "tmp" / name, folder / "new" / name)
            files.append(folder / "new" / name)
        if self.keep_in_memory:
            self.messages.append(ReceivedMail(sender, tuple(recipients), data, subject, connection, tuple(files),
                                              envelope_id, {r: (notify or {}).get(r.lower(), "") for r in recipients}))
        self._arrived.set()


class _SinkSMTP(SMTP):
    """aiosmtpd's SMTP with STARTTLS required (given a context) and DATA commands counted.

    aiosmtpd warns when given a CERT_REQUIRED context ("might cause client
    connection problems"): refusing clients without a valid certificate is the
    point here, so the context is set after its constructor has looked.
    """

    def __init__(self, handler: "_Handler", starttls_context: ssl.SSLContext | None, **kwargs):
        super().__init__(handler, **kwargs)
        self._sink = handler.sink
        if starttls_context is not None:
            self.tls_context = starttls_context
            self.require_starttls = True

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self._sink.data_commands += 1
        await super().smtp_DATA(arg)

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        """With ``dsn``: take ENVID and RET off (aiosmtpd refuses parameters it does not know), keep ENVID."""
        params = {}
        if self._sink.dsn and arg:
            arg, params = _take_params(arg, ("ENVID", "RET"))
        await super().smtp_MAIL(arg)
        if self.envelope is not None and self.envelope.mail_from is not None:
            self.envelope.dsn_envid = _xtext_decode(params.get("ENVID", ""))
            self.envelope.dsn_notify = {}

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        """With ``dsn``: take NOTIFY and ORCPT off, keep NOTIFY per recipient."""
        params = {}
        if self._sink.dsn and arg:
            arg, params = _take_params(arg, ("NOTIFY", "ORCPT"))
        accepted = len(self.envelope.rcpt_tos) if self.envelope is not None else 0
        await super().smtp_RCPT(arg)
        envelope = self.envelope
        if envelope is not None and len(envelope.rcpt_tos) > accepted and hasattr(envelope, "dsn_notify"):
            envelope.dsn_notify[envelope.rcpt_tos[-1].lower()] = params.get("NOTIFY", "")


class _Handler:
    def __init__(self, sink: SmtpSink, connection: int):
        self.sink = sink
        self.connection = connection

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self.sink._next(self.sink._mail, 250)
        if reply.startswith("250"):
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
        return reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.sink._next(self.sink._rcpt.get(address.lower(), deque()), 250)
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        if self.sink.data_delay:
            await asyncio.sleep(self.sink.data_delay)
        reply = self.sink._next(self.sink._data, 250)
        if reply.startswith("250"):
            self.sink._store(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or b"",
                             _client_subject(server, session), self.connection,
                             getattr(envelope, "dsn_envid", ""), getattr(envelope, "dsn_notify", None))
        return reply

    async def handle_exception(self, error: Exception) -> str:
        """Record refused TLS handshakes (no or untrusted client certificate) instead of a traceback."""
        if isinstance(error, TLSSetupException):
            reason = str(error.__cause__ or error) or type(error.__cause__).__name__
            self.sink.tls_refusals.append(reason)
            log.info("smtp_sink.tls_refused", connection=self.connection, reason=reason)
        else:
            log.exception("smtp_sink.error", connection=self.connection)
        return f"500 Error: ({type(error).__name__}) {error}"


class _DsnHandler(_Handler):
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        """The usual EHLO lines, and DSN (RFC 3461) before the last one."""
        session.host_name = hostname
        return [*responses[:-1], "250-DSN", responses[-1]]


def _take_params(arg: str, names: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """``arg`` without the ``NAME=value`` parameters named, and those parameters (names upper-cased)."""
    kept, taken = [], {}
    for word in arg.split(" "):
        name, eq, value = word.partition("=")
        if eq and name.upper() in names:
            taken[name.upper()] = value
        else:
            kept.append(word)
    return " ".join(kept), taken


def _xtext_decode(text: str) -> str:
    """RFC 3461 xtext: ``+HH`` stands for the byte HH."""
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m[1], 16)), text)


def folder_name(address: str) -> str:
    """The Maildir folder of an address in the sink's directory (``<maildir>/<folder_name(address)>``)."""
    return _folder_name(address)


def _folder_name(address: str) -> str:
    """The address as a safe folder name (no separators, no leading dot)."""
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", address).lstrip(".") or "_"


def _server_context(server_cert: Path, server_key: Path, ca_cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca_cert))
    context.load_cert_chain(str(server_cert), str(server_key))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _client_subject(server: SMTP, session) -> str:
    peer = (session.ssl or {}).get("peercert")
    if peer is None and server.transport is not None:      # implicit TLS: the transport itself is TLS
        peer = server.transport.get_extra_info("peercert")
    peer = peer or {}
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return ""
