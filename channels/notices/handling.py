"""What happens to one mail found in the structure's mailbox, whatever reads it (IMAP, Maildir).

:class:`NoticeHandler` parses the mail (``parse.py``), applies it (``router.notices.NoticeDecider``)
and says where it goes next, so that every reader moves mails by the same rules:

- ``DONE``: a notice for one of our mails (applied now or earlier);
- ``UNRECOGNISED``: it names no mail of ours, is no notice at all, or can never be applied
  (journaled as unmatched or malformed first);
- ``LATER``: its handling failed for a reason that may pass (journal or bus unavailable, a DSN
  faster than the journaling of its mail's relay answer): it stays where it is and is read again.
"""

from __future__ import annotations

import asyncio

import hashlib
import re
from enum import Enum

import structlog

from channels.notices.parse import NoticeFormatError, parse_notice
from router.errors import EngineError, PermanentError, TransientError
from router.notices import NoticeDecider
from router.ports import Journal, NoticeRecord, NoticeVerdict
from router.stages.clock import now

__all__ = ["Disposal", "NoticeHandler", "notice_id"]

log = structlog.get_logger(__name__)


class Disposal(Enum):
    DONE = "done"
    UNRECOGNISED = "unrecognised"
    LATER = "later"


class NoticeHandler:
    """Parse, apply, and say where one mail goes; never raises for a bad mail."""

    def __init__(self, journal: Journal, decider: NoticeDecider, *, source: str):
        self.journal = journal
        self.decider = decider
        self.source = source             # "imap" or "maildir": the logs say which reader

    async def handle(self, raw: bytes) -> Disposal:
        try:
            notice = parse_notice(raw)
        except NoticeFormatError as exc:
            log.info("notices.unreadable", source=self.source)
            return await self._aside(notice_id(raw), "unknown", str(exc))
        try:
            verdict = await self.decider.apply(notice)
        except PermanentError as exc:
            # A notice that can never be applied (its mail's HL7 header unreadable...): kept aside, said why.
            log.warning("notices.refused", source=self.source, kind=str(notice.kind), error=str(exc))
            return await self._aside(notice.notice_id, str(notice.kind), f"cannot be applied: {exc}")
        except (EngineError, OSError) as exc:
            log.warning("notices.deferred", source=self.source, kind=str(notice.kind), error=str(exc))
            return Disposal.LATER
        return Disposal.UNRECOGNISED if verdict == NoticeVerdict.UNMATCHED else Disposal.DONE

    async def _aside(self, identifier: str, kind: str, detail: str) -> Disposal:
        """Journal a mail as malformed (LATER when the journal is down)."""
        try:
            await self.journal.record_notice(NoticeRecord(notice_id=identifier, kind=kind,
                                                          verdict=NoticeVerdict.MALFORMED, at=now(),
                                                          detail=detail[:300]))
        except TransientError as journal_down:
            log.warning("notices.deferred", source=self.source, error=str(journal_down))
            return Disposal.LATER
        return Disposal.UNRECOGNISED


def notice_id(raw: bytes) -> str:
    """The mail's Message-ID, else a digest of its bytes (the same mail read twice gets the same id)."""
    match = re.search(rb"^Message-ID:\s*(<[^>\r\n]+>)", raw, re.IGNORECASE | re.MULTILINE)
    return match[1].decode("ascii", "replace") if match else "sha256:" + hashlib.sha256(raw).hexdigest()


class ReaderTask:
    """Start and stop of a notice reader: its ``run()`` in a task, until ``stop()`` sets ``_stopping``."""

    task_name = "notices"
    _task: asyncio.Task | None = None

    def __init__(self) -> None:
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.task_name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
