"""MaildirNoticeReader: reads the structure's mailbox from a local Maildir, for a structure whose MSSanté mail
is delivered on the Liaison server itself (Postfix ``home_mailbox = Maildir/``, Dovecot LDA).

Configured by ``[notices] maildir`` (``settings.py``); the other source is ``[imap]`` (``imap.py``), never both.

Features:
- Looks every ``poll_interval`` seconds at ``new/`` and at ``cur/`` (mails a mail client or an
  earlier run left there), ``batch`` mails at a time: only names are listed, each mail is read
  on its own, so a mailbox with thousands of old mails is never all in memory.
- Each mail is parsed and applied by the same handling as the IMAP reader (``handling.py``),
  then moved, never deleted, into a Maildir++ folder of the same Maildir: ``done_folder``
  (``.Liaison.Traités``) or ``unrecognised_folder`` (``.Liaison.Non reconnus``), under ``cur/``
  with the Seen flag. A move is one ``rename`` on the same file system: a mail is in the inbox
  or in a folder, never in both, never in neither.
- A mail whose handling failed for a reason that may pass stays where it is and is read again
  a few seconds later. A notice read twice changes nothing (``router.notices``).
- A Maildir that does not exist yet (the MTA creates it at the first mail) is looked for again at
  the next poll; the reader keeps running.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog

from channels.notices.handling import Disposal, NoticeHandler, ReaderTask
from channels.notices.settings import MaildirSettings
from router.notices import NoticeDecider
from router.ports import Journal

__all__ = ["MaildirNoticeReader"]

log = structlog.get_logger(__name__)

_DEFERRED_RETRY = 2.0             # seconds before a mail left in the inbox (journal, bus, still sending) is retried


class MaildirNoticeReader(ReaderTask):
    """The Maildir side of the notices: list, apply, move; one pass every ``poll_interval``."""

    task_name = "maildir-notices"

    def __init__(self, settings: MaildirSettings, journal: Journal, decider: NoticeDecider):
        self.settings = settings
        self._handler = NoticeHandler(journal, decider, source="maildir")
        super().__init__()
        self._missing_said = False
        self.handled = 0                 # mails moved out of the inbox since start (for tests and metrics)
        self.passes = 0                  # passes over the inbox since start

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Pass over the inbox until stopped; a failing pass is said and tried again at the next poll."""
        log.info("maildir.reading", path=str(self.settings.path), poll_interval=self.settings.poll_interval)
        while not self._stopping.is_set():
            try:
                deferred = await self.read_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:     # any failure of one pass (a disk gone...): say it, try again later
                log.warning("maildir.pass_failed", path=str(self.settings.path),
                            error=f"{type(exc).__name__}: {exc}")
                deferred = False
            wait = min(self.settings.poll_interval, _DEFERRED_RETRY) if deferred else self.settings.poll_interval
            try:
                await asyncio.wait_for(self._stopping.wait(), wait)
            except asyncio.TimeoutError:
                pass

    # ------------------------------------------------------------------ one pass

    async def read_once(self) -> bool:
        """Handle every mail in the inbox now, a batch at a time; True when one was left for later."""
        root = self.settings.path
        if not (root / "new").is_dir():
            if not self._missing_said:
                log.warning("maildir.missing", path=str(root), expected="a Maildir with new/, cur/ and tmp/")
                self._missing_said = True
            return False
        self._missing_said = False
        for folder in (self.settings.done_folder, self.settings.unrecognised_folder):
            _make_folder(root / folder)
        self.passes += 1
        left: set[Path] = set()          # mails left for later in this pass (not listed again)
        while not self._stopping.is_set():
            batch = await asyncio.to_thread(_list, root, self.settings.batch, left)
            if not batch:
                break
            for path in batch:
                try:
                    raw = await asyncio.to_thread(path.read_bytes)
                except FileNotFoundError:    # moved by someone else meanwhile (a mail client): not ours now
                    continue
                except OSError as exc:       # unreadable (permissions): said, left, the others go on
                    log.warning("maildir.mail_unreadable", file=path.name, error=str(exc))
                    left.add(path)
                    continue
                disposal = await self._handler.handle(raw)
                if disposal == Disposal.LATER:
                    left.add(path)
                    continue
                folder = (self.settings.done_folder if disposal == Disposal.DONE
                          else self.settings.unrecognised_folder)
                await asyncio.to_thread(_move, path, root / folder)
                self.handled += 1
        return bool(left)


# ---------------------------------------------------------------------- helpers

def _list(root: Path, count: int, skip: set[Path]) -> list[Path]:
    """Up to ``count`` mails of ``new/`` then ``cur/``, oldest name first (Maildir names start with the time)."""
    found: list[Path] = []
    for sub in ("new", "cur"):
        try:
            names = sorted(entry.name for entry in os.scandir(root / sub)
                           if entry.is_file() and not entry.name.startswith("."))
        except FileNotFoundError:
            continue
        for name in names:
            path = root / sub / name
            if path not in skip:
                found.append(path)
                if len(found) >= count:
                    return found
    return found


def _make_folder(folder: Path) -> None:
    """A Maildir++ folder (``.Liaison.Traités``): its own tmp/new/cur and the ``maildirfolder`` marker."""
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "maildirfolder").touch(exist_ok=True)


def _move(path: Path, folder: Path) -> None:
    """Rename into the folder's ``cur/`` with the Seen flag (``name:2,S``); never a copy, never a delete."""
    base, _, info = path.name.partition(":")
    flags = info[2:] if info.startswith("2,") else ""
    if "S" not in flags:
        flags = "".join(sorted(flags + "S"))
    try:
        os.rename(path, folder / "cur" / f"{base}:2,{flags}")
    except FileNotFoundError:        # moved by someone else between the read and now: nothing to do
        pass
