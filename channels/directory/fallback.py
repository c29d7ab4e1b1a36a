"""Ask the live directory first, and a local copy when it cannot answer now.

The Annuaire Santé FHIR API is the freshest source but a remote one: it times
out, rate-limits (429) and has maintenance windows. The local index of the
extraction files is a day old at most and always there. When the primary
raises a :class:`~router.errors.TransientError` (timeout, connection refused,
429, 5xx) the fallback answers instead, and every mailbox it returns says so
in its ``source`` (e.g. ``"annuaire extraction (Annuaire Santé FHIR API
unavailable: timeout after 2 s)"``): the resolver copies the source into the
journal, which is where an operator will look.

Permanent errors of the primary (a refused API key) are not hidden behind the
fallback: they propagate. When the fallback knows nothing either, the
primary's transient error is raised again, so the job is retried later rather
than concluded "no mailbox" from a source that may simply lack it.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from router.errors import EngineError, PeerUnavailable, TransientError
from router.ports import Directory, Mailbox

log = structlog.get_logger(__name__)


class FallbackDirectory:
    """``primary`` unless it is unavailable, then ``fallback`` with the reason in each mailbox's source."""

    def __init__(self, primary: Directory, fallback: Directory):
        self.primary = primary
        self.fallback = fallback

    async def mailboxes(self, identifier: str) -> list[Mailbox]:
        try:
            return await self.primary.mailboxes(identifier)
        except TransientError as exc:
            unavailable = exc
        log.warning("directory.fallback", identifier=identifier, reason=unavailable.reason)
        try:
            found = await self.fallback.mailboxes(identifier)
        except EngineError as exc:
            raise PeerUnavailable(f"{unavailable.reason}; the fallback directory failed too: {exc.reason}") from exc
        if not found:
            raise unavailable
        return [replace(mailbox, source=f"{mailbox.source or 'fallback directory'} ({unavailable.reason})")
                for mailbox in found]

    async def close(self) -> None:
        for directory in (self.primary, self.fallback):
            close = getattr(directory, "close", None)
            if close is not None:
                await close()
