"""ImapNoticeReader: reads the structure's MSSanté mailbox over IMAP and hands each mail to the notice logic.

URL form: ``imaps://host:993`` (implicit TLS; aioimaplib has no STARTTLS), configured by ``[imap]``
(``settings.py``).

Features:
- TLS ≥ 1.2, the server verified against ``ca_file`` (IGC-Santé in production), the
  application mailbox's client certificate presented (``channels/smtp/tls.py``, the same
  rules as the relay), then LOGIN.
- Works through the mailbox in batches of ``batch`` mails (UID SEARCH, then UID FETCH
  BODY.PEEK[] per batch): a mailbox with thousands of old mails is never all in memory, and a
  mail left for later never holds up the ones after it.
- Each mail is parsed and applied (``handling.py``, shared with the Maildir reader), then
  moved, never deleted: to ``done_folder`` when it was a notice for one of our mails
  (applied now or earlier), to ``unrecognised_folder`` when it names no mail of ours or
  is no notice at all, or one that can never be applied (journaled as unmatched or malformed first). MOVE when the server
  has it, else COPY + \\Deleted + UID EXPUNGE of that one mail.
- A mail whose handling failed for a reason that may pass (journal or bus unavailable, a
  DSN faster than the journaling of its mail's relay answer) stays in the mailbox and is
  read again a few seconds later; the channel keeps running.
- IDLE when the server offers it (renewed every ``idle_timeout``), else a look every
  ``poll_interval``. A lost connection (server restart, network) is reopened after
  ``reconnect_delay``, doubling up to a minute; nothing is lost, because a mail leaves
  the mailbox only once it was handled.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl

import aioimaplib
import structlog

from channels.notices.handling import Disposal, NoticeHandler, ReaderTask
from channels.notices.settings import ImapSettings
from channels.smtp.tls import client_context
from router.ports import Journal
from router.notices import NoticeDecider

__all__ = ["ImapNoticeReader", "imap_utf7"]

log = structlog.get_logger(__name__)

_FETCHED = re.compile(rb"UID (\d+)")
_MAX_BACKOFF = 60.0
_DEFERRED_RETRY = 2.0             # seconds before a mail left in the mailbox (journal, bus, still sending) is retried


class ImapNoticeReader(ReaderTask):
    """The IMAP side of the notices: connect, read in batches, apply, move; reconnect when the server goes."""

    task_name = "imap-notices"

    def __init__(self, settings: ImapSettings, journal: Journal, decider: NoticeDecider, *,
                 tls: ssl.SSLContext | None = None):
        self.settings = settings
        self.journal = journal
        self.decider = decider
        self._handler = NoticeHandler(journal, decider, source="imap")
        self._tls = tls or client_context(client_cert=settings.client_cert or None,
                                          client_key=settings.client_key or None,
                                          ca_file=settings.ca_file or None)
        super().__init__()
        self._lost = asyncio.Event()
        self.handled = 0                 # mails moved out of the mailbox since start (for tests and metrics)
        self._deferred = False           # a mail of the last pass was left for later (read again soon)
        self.connections = 0             # sessions opened since start

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Read until stopped, reconnecting with backoff whenever the session fails."""
        delay = self.settings.reconnect_delay
        while not self._stopping.is_set():
            try:
                await self._session()
                delay = self.settings.reconnect_delay
            except asyncio.CancelledError:
                raise
            except Exception as exc:      # any failure of one session: say it, wait, open another
                log.warning("imap.session_failed", host=self.settings.host, port=self.settings.port,
                            error=_describe(exc), retry_in=delay)
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, _MAX_BACKOFF)

    # ------------------------------------------------------------------ one session

    async def _session(self) -> None:
        s = self.settings
        self._lost.clear()
        imap = aioimaplib.IMAP4(host=s.host, port=s.port, timeout=s.timeout, ssl_context=self._tls,
                                conn_lost_cb=lambda exc: self._lost.set())
        try:
            await imap.wait_hello_from_server()
            _ok(await imap.login(s.user, s.password), "LOGIN")
            self.connections += 1
            for folder in (s.done_folder, s.unrecognised_folder):
                await imap.protocol.execute(aioimaplib.Command("CREATE", imap.protocol.new_tag(), _mailbox(folder),
                                                               loop=imap.protocol.loop))   # NO when it exists
            _ok(await imap.select(_mailbox(s.mailbox)), "SELECT")
            idle = s.idle and imap.has_capability("IDLE")
            log.info("imap.connected", host=s.host, port=s.port, idle=idle, move=imap.has_capability("MOVE"))
            while not self._stopping.is_set() and not self._lost.is_set():
                self._deferred = False
                await self._pass(imap)
                if self._deferred:               # left in the mailbox: look again soon, whatever IDLE says
                    await self._wait(min(s.poll_interval, _DEFERRED_RETRY))
                elif idle:
                    await self._idle(imap)
                else:
                    await self._wait(s.poll_interval)
            if self._lost.is_set():
                raise ConnectionError("the IMAP server closed the connection")
        finally:
            await _close(imap)

    async def _pass(self, imap: aioimaplib.IMAP4) -> None:
        """Work through the mailbox as it is now, ``batch`` mails fetched at a time."""
        found = await imap.uid_search("ALL", charset=None)
        _ok(found, "UID SEARCH")
        uids = sorted(int(u) for line in found.lines[:-1] for u in line.split() if u.isdigit())
        for start in range(0, len(uids), self.settings.batch):
            if self._stopping.is_set() or self._lost.is_set():
                return
            batch = uids[start:start + self.settings.batch]
            fetched = await imap.uid("fetch", ",".join(map(str, batch)), "(UID BODY.PEEK[])")
            _ok(fetched, "UID FETCH")
            for uid, raw in _messages(fetched.lines):
                folder = await self._handle(raw)
                if folder is not None:
                    await self._move(imap, uid, folder)
                    self.handled += 1

    async def _handle(self, raw: bytes) -> str | None:
        """Apply one mail; the folder it goes to, or None to leave it for the next pass."""
        disposal = await self._handler.handle(raw)
        if disposal == Disposal.LATER:
            self._deferred = True
            return None
        return self.settings.done_folder if disposal == Disposal.DONE else self.settings.unrecognised_folder

    async def _move(self, imap: aioimaplib.IMAP4, uid: int, folder: str) -> None:
        if imap.has_capability("MOVE"):
            _ok(await imap.uid("move", str(uid), _mailbox(folder)), "UID MOVE")
            return
        _ok(await imap.uid("copy", str(uid), _mailbox(folder)), "UID COPY")
        _ok(await imap.uid("store", str(uid), "+FLAGS.SILENT", "(\\Deleted)"), "UID STORE")
        _ok(await imap.uid("expunge", str(uid)), "UID EXPUNGE")

    async def _idle(self, imap: aioimaplib.IMAP4) -> None:
        """Hold an IDLE until the server announces something, the timeout, the connection drops or stop()."""
        idle = await imap.idle_start(timeout=self.settings.idle_timeout)
        push = asyncio.ensure_future(imap.wait_server_push(timeout=self.settings.idle_timeout + 5))
        lost = asyncio.ensure_future(self._lost.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({push, lost, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (push, lost, stopping):
                waiter.cancel()
        if self._lost.is_set():
            idle.cancel()
            return
        imap.idle_done()
        await asyncio.wait_for(idle, self.settings.timeout)

    async def _wait(self, seconds: float) -> None:
        stopping = asyncio.ensure_future(self._stopping.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({stopping, lost}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            lost.cancel()


# ---------------------------------------------------------------------- helpers

def _messages(lines: list) -> list[tuple[int, bytes]]:
    """(uid, bytes) of each message in a UID FETCH response (a line ending ``{n}`` then its literal)."""
    found = []
    for index, line in enumerate(lines):
        if isinstance(line, (bytes, bytearray)) and index + 1 < len(lines) and line.rstrip().endswith(b"}"):
            uid = _FETCHED.search(bytes(line))
            literal = lines[index + 1]
            if uid and isinstance(literal, (bytes, bytearray)):
                found.append((int(uid[1]), bytes(literal)))
    return found


def imap_utf7(name: str) -> str:
    """A mailbox name in IMAP's modified UTF-7 (RFC 3501 §5.1.3): ``Traités`` → ``Trait&AOk-s``."""
    out, pending = [], []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii").rstrip("=")
            out.append("&" + encoded.replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _mailbox(name: str) -> str:
    """A mailbox name as an IMAP argument: modified UTF-7, quoted."""
    encoded = imap_utf7(name).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{encoded}"'


def _ok(response, what: str):
    if response.result != "OK":
        raise ConnectionError(f"{what} refused: {response.result} {_last(response)}")
    return response


def _last(response) -> str:
    lines = [line for line in response.lines if isinstance(line, (bytes, bytearray))]
    return bytes(lines[-1]).decode("utf-8", "replace")[:200] if lines else ""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc}"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _close(imap: aioimaplib.IMAP4) -> None:
    try:
        if imap.get_state() in ("AUTH", "SELECTED"):
            await asyncio.wait_for(imap.logout(), 5)
    except Exception:       # closing a session that already failed: nothing more to say
        pass
    transport = getattr(imap.protocol, "transport", None)
    if transport is not None:
        transport.close()
    for task in list(getattr(imap, "tasks", ())):
        task.cancel()

