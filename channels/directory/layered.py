"""The site's own correspondents first, then the national directory.

A hospital's ``[[correspondents]]`` override the Annuaire Santé for the
professionals and organisations they name (a GP who prefers a practice
mailbox, an organisation's generic mailbox the directory lacks); everyone else
is looked up nationally (FHIR API with the extraction index as fallback, or the
index alone).
"""

from __future__ import annotations

from router.ports import Directory, Mailbox


class LayeredDirectory:
    def __init__(self, overrides: Directory, national: Directory | None):
        self.overrides = overrides
        self.national = national

    async def mailboxes(self, identifier: str) -> list[Mailbox]:
        found = await self.overrides.mailboxes(identifier)
        if found or self.national is None:
            return found
        return await self.national.mailboxes(identifier)

    async def close(self) -> None:
        for layer in (self.overrides, self.national):
            close = getattr(layer, "close", None)
            if close is not None:
                await close()
