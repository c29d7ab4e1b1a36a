"""SmtpMailer: the Mailer port over SMTP with TLS and a client certificate (MSSanté).

URL form::

    smtp://relay.example.fr:587?security=starttls   STARTTLS (default; port 587 when omitted)
    smtps://relay.example.fr:465                     implicit TLS (same as ?security=tls)

Query keys: ``security`` (starttls|tls), ``timeout`` (seconds), ``helo``, ``min_tls``
(TLSv1_2|TLSv1_3), ``pool`` (connections at most, default :data:`DEFAULT_POOL`), ``server_hostname`` (name checked
in the relay's certificate with STARTTLS, default the URL host). Whether to ask for
delivery notices is the ``dsn`` argument (``[mss] dsn``). Certificate paths are not in the
URL: pass them to :meth:`SmtpMailer.from_url` (``client_cert``, ``client_key``, ``ca_file``).

Features:
- TLS ≥ 1.2 always; the relay's certificate is verified against ``ca_file`` (the
  IGC-Santé chain in production) and the platform presents its client certificate.
  Nothing is ever sent in clear: a relay that does not offer STARTTLS is an error.
- One RCPT per recipient with its own reply (2xx accepted, 4xx temporary, 5xx
  rejected); DATA only when at least one recipient was accepted.
- Connections are kept open and reused (RSET between messages, reconnect when the
  relay closed it); a pool serves concurrent senders, one message per connection
  at a time. A connection is opened only when every open one is busy (the most
  recently used idle one is taken first), so the pool's size bounds the messages in
  flight, not the connections held. Sized by measurement (bench/e2e.py
  ``--smtp-delay 3``, one worker): against a relay taking 3 s per mail a pool of 1
  drained 0.6 documents/s, 4 → 2.0, 16 → 7.1, 32 → 6.8 (the worker's
  ``engine.prefetch``, 16, bounds the sends in flight). The default is 16, the
  default prefetch.
- Delivery status notifications (RFC 3461): when the caller gives an envelope id and
  the relay announces DSN, ``MAIL FROM`` carries ``RET=HDRS ENVID=<id>`` and each
  ``RCPT TO`` ``NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;<address>``, so that the DSNs
  coming back name our id and the address as we wrote it. A relay without DSN gets
  plain commands (and then no notices come back, only its own bounces).
- Errors are translated at this boundary: connection refused, timeouts, TLS
  failures and 421 become :class:`PeerUnavailable`; 4xx at MAIL FROM too; 5xx at
  MAIL FROM becomes :class:`RejectedByPeer`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import aiosmtplib
import structlog

from channels.smtp.tls import client_context
from router.errors import ConfigError, EngineError, MappingError, PeerUnavailable, RejectedByPeer
from router.ports import RecipientResult, RecipientStatus

__all__ = ["SmtpMailer", "xtext"]

log = structlog.get_logger(__name__)

_SECURITIES = ("starttls", "tls")
_URL_KEYS = {"security", "timeout", "helo", "min_tls", "pool", "server_hostname"}
#: Connections per mailer when the URL says none: the engine's default prefetch (messages in flight).
DEFAULT_POOL = 16


class SmtpMailer:
    """Send MIME messages to one relay; implements :class:`router.ports.Mailer`."""

    def __init__(self, host: str, port: int, *, security: str = "starttls",
                 client_cert: str | Path | None = None, client_key: str | Path | None = None,
                 ca_file: str | Path | None = None, timeout: float = 30.0, helo: str | None = None,
                 min_tls: str = "TLSv1_2", pool_size: int = DEFAULT_POOL, server_hostname: str | None = None,
                 dsn: bool = True):
        if security not in _SECURITIES:
            raise ConfigError("smtp.security", f"must be one of {', '.join(_SECURITIES)}, not {security!r}")
        if pool_size < 1:
            raise ConfigError("smtp.pool", "must be at least 1")
        self.host = host
        self.port = int(port)
        self.security = security
        self.timeout = float(timeout)
        self.helo = helo
        self.server_hostname = server_hostname or host
        self.dsn = dsn
        self._tls = client_context(client_cert=client_cert, client_key=client_key, ca_file=ca_file,
                                   min_tls=min_tls)
        # Last in, first out: sequential sends keep to one warm connection; more open only under concurrency.
        self._idle: asyncio.LifoQueue[_Connection] = asyncio.LifoQueue()
        for _ in range(pool_size):
            self._idle.put_nowait(_Connection(self))
        self._pool_size = pool_size

    @classmethod
    def from_url(cls, url: str, **tls_paths) -> "SmtpMailer":
        """Build a mailer from ``smtp://host:port?security=starttls`` plus certificate paths."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError("smtp.url", f"expected smtp://host:port or smtps://host:port, got {url!r}")
        query = dict(parse_qsl(parts.query))
        unknown = set(query) - _URL_KEYS
        if unknown:
            raise ConfigError("smtp.url", f"unknown query key(s): {', '.join(sorted(unknown))}")
        security = query.get("security", "tls" if parts.scheme == "smtps" else "starttls")
        port = parts.port or (465 if security == "tls" else 587)
        try:
            options = {
                "timeout": float(query.get("timeout", 30.0)),
                "pool_size": int(query.get("pool", DEFAULT_POOL)),
            }
        except ValueError as exc:
            raise ConfigError("smtp.url", f"timeout and pool must be numbers: {exc}") from exc
        for key in ("helo", "min_tls", "server_hostname"):
            if key in query:
                options[key] = query[key]
        options.update(tls_paths)
        return cls(parts.hostname, port, security=security, **options)

    async def send(self, message: bytes, *, sender: str, recipients: Sequence[str],
                   envelope_id: str = "") -> list[RecipientResult]:
        """Send ``message`` once to every recipient; return one result per recipient, in order.

        With ``envelope_id``, ask the relay for delivery notices under that ENVID when it offers DSN.
        """
        if not recipients:
            return []
        _check_address(sender, what="sender")
        connection = await self._idle.get()
        try:
            return await connection.send(message, sender, list(recipients), envelope_id)
        except EngineError:
            raise
        except BaseException:
            connection.drop()      # cancelled or failed mid-transaction: never reuse a session in that state
            raise
        finally:
            self._idle.put_nowait(connection)

    async def close(self) -> None:
        """Say QUIT on every open connection (waiting for messages in flight)."""
        taken = [await self._idle.get() for _ in range(self._pool_size)]
        try:
            await asyncio.gather(*(c.close() for c in taken))
        finally:
            for connection in taken:
                self._idle.put_nowait(connection)

    @property
    def tls_context(self) -> ssl.SSLContext:
        return self._tls


class _Connection:
    """One SMTP session, used by one message at a time (the pool hands it out)."""

    def __init__(self, mailer: SmtpMailer):
        self.mailer = mailer
        self.smtp: aiosmtplib.SMTP | None = None

    @property
    def connected(self) -> bool:
        return self.smtp is not None and self.smtp.is_connected

    async def send(self, message: bytes, sender: str, recipients: list[str],
                   envelope_id: str = "") -> list[RecipientResult]:
        await self._ready()
        smtp = self.smtp
        assert smtp is not None
        dsn = bool(envelope_id) and self.mailer.dsn and smtp.supports_extension("dsn")
        try:
            mail_from = b"FROM:<" + sender.encode("ascii") + b">"
            if dsn:
                mail_from += b" RET=HDRS ENVID=" + xtext(envelope_id)
            reply = await smtp.execute_command(b"MAIL", mail_from)
            if reply.code != 250:
                await self._reset_after(reply.code)
                raise _refusal(reply.code, reply.message, "relay refused MAIL FROM")

            results = [await self._rcpt(smtp, address, dsn=dsn) for address in recipients]
            accepted = [i for i, r in enumerate(results) if r.status is RecipientStatus.ACCEPTED]
            if not accepted:
                await self._reset_after(0)
                return results

            try:
                await smtp.data(message)
            except aiosmtplib.SMTPDataError as exc:
                if exc.code == 421:
                    self.drop()
                    raise PeerUnavailable(f"relay closed the session at DATA: {exc.code} {exc.message}",
                                          code=exc.code) from exc
                await self._reset_after(exc.code)
                status = RecipientStatus.TEMPORARY if 400 <= exc.code < 500 else RecipientStatus.REJECTED
                for i in accepted:
                    results[i] = RecipientResult(recipients[i], status, exc.code, exc.message)
            log.info("smtp.sent", relay=self.mailer.host, size=len(message), recipients=len(recipients), dsn=dsn,
                     accepted=sum(r.status is RecipientStatus.ACCEPTED for r in results))
            return results
        except aiosmtplib.SMTPException as exc:
            self.drop()
            raise PeerUnavailable(f"SMTP session with {self._where()} failed: {_describe(exc)}") from exc

    async def _rcpt(self, smtp: aiosmtplib.SMTP, address: str, *, dsn: bool = False) -> RecipientResult:
        try:
            _check_address(address, what="recipient")
        except MappingError as exc:
            return RecipientResult(address, RecipientStatus.REJECTED, 0, str(exc))
        rcpt_to = b"TO:<" + address.encode("ascii") + b">"
        if dsn:
            rcpt_to += b" NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;" + xtext(address)
        reply = await smtp.execute_command(b"RCPT", rcpt_to)
        if reply.code == 421:
            self.drop()
            raise PeerUnavailable(f"relay closed the session at RCPT TO: {reply.code} {reply.message}",
                                  code=reply.code)
        if 200 <= reply.code < 300:
            status = RecipientStatus.ACCEPTED
        elif 400 <= reply.code < 500:
            status = RecipientStatus.TEMPORARY
        else:
            status = RecipientStatus.REJECTED
        return RecipientResult(address, status, reply.code, reply.message)

    async def _ready(self) -> None:
        """Make sure the session is open and clean: RSET a kept one, reconnect a closed one."""
        if self.connected:
            assert self.smtp is not None
            try:
                reply = await self.smtp.execute_command(b"RSET")
                if reply.code == 250:
                    return
            except aiosmtplib.SMTPException:
                pass
            self.drop()           # the relay closed it (idle timeout) or answered oddly: start again
        await self._connect()

    async def _connect(self) -> None:
        mailer = self.mailer
        if mailer.helo is None:           # aiosmtplib would look it up again for every connection
            mailer.helo = await asyncio.to_thread(socket.getfqdn)
        smtp = aiosmtplib.SMTP(
            hostname=mailer.host, port=mailer.port, timeout=mailer.timeout,
            use_tls=mailer.security == "tls", start_tls=False, tls_context=mailer._tls,
            local_hostname=mailer.helo,
        )
        stage = "connecting"
        try:
            await smtp.connect()
            stage = "at EHLO"
            await smtp.ehlo()
            if mailer.security == "starttls":
                if not smtp.supports_extension("starttls"):
                    smtp.close()
                    raise PeerUnavailable(f"{self._where()} does not offer STARTTLS; refusing to send in clear")
                stage = "during STARTTLS"
                await smtp.starttls(tls_context=mailer._tls, server_hostname=mailer.server_hostname)
                stage = "after STARTTLS"
                await smtp.ehlo()
        except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
            smtp.close()
            raise PeerUnavailable(_connect_failure(self._where(), stage, exc),
                                  code=getattr(exc, "code", None)) from exc
        self.smtp = smtp
        log.debug("smtp.connected", relay=mailer.host, port=mailer.port, security=mailer.security)

    async def _reset_after(self, code: int) -> None:
        """Leave the session clean for the next message, or drop it when the relay is closing."""
        if code == 421 or self.smtp is None:
            self.drop()
            return
        try:
            reply = await self.smtp.execute_command(b"RSET")
            if reply.code != 250:
                self.drop()
        except aiosmtplib.SMTPException:
            self.drop()

    def drop(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
        self.smtp = None

    async def close(self) -> None:
        if self.connected:
            assert self.smtp is not None
            try:
                await self.smtp.quit(timeout=min(self.mailer.timeout, 5.0))
            except aiosmtplib.SMTPException:
                pass
        self.drop()

    def _where(self) -> str:
        return f"relay {self.mailer.host}:{self.mailer.port}"


def xtext(value: str) -> bytes:
    """RFC 3461 xtext: printable ASCII except ``+`` and ``=`` as it is, anything else as ``+XX``."""
    return b"".join(bytes([c]) if 33 <= c <= 126 and c not in b"+=" else f"+{c:02X}".encode("ascii")
                    for c in value.encode("utf-8"))


def _check_address(address: str, *, what: str) -> None:
    if (not address or not address.isascii() or any(c in address for c in "<> \t\r\n")
            or any(ord(c) < 32 or ord(c) == 127 for c in address)):
        raise MappingError(f"{what} address cannot be sent over SMTP (empty, not ASCII or contains <, >, spaces"
                           " or control characters)")


def _refusal(code: int, text: str, what: str) -> Exception:
    if 400 <= code < 500:
        return PeerUnavailable(f"{what}: {code} {text}", code=code)
    return RejectedByPeer(f"{what}: {code} {text}", code=code)


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    cause = exc.__cause__
    detail = f"{code} {text}" if code else text
    if cause is not None and str(cause) and str(cause) not in detail:
        detail += f" ({type(cause).__name__}: {cause})"
    return detail


def _connect_failure(where: str, stage: str, exc: BaseException) -> str:
    """Say what happened in words an operator understands, with the relay's own reply."""
    code = getattr(exc, "code", None)
    detail = _describe(exc)
    if stage == "after STARTTLS" and code is not None and "certificate" in detail.lower():
        return f"{where} refused the client certificate: {detail}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS handshake with {where} failed: its certificate was not accepted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed: {exc}"
    if stage == "after STARTTLS" and code is None:
        return (f"{where} closed the connection after the TLS handshake "
                f"(client certificate refused?): {detail}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return f"timed out {stage} {where}: {detail}"
    if isinstance(exc, aiosmtplib.SMTPConnectError) and code is None:
        return f"cannot connect to {where}: {detail}"
    return f"{where} refused the session {stage}: {detail}"
