"""A site's own correspondents: the static directory read from configuration.

Every hospital keeps a short list of usual correspondents (GPs of the area,
partner clinics, organisations' generic mailboxes) whose address it knows
better than the national directory, or that the directory lacks. Render mode
looks recipients up here by IdNat_PS; the national directory (extraction
files, FHIR API) sits behind the same :class:`~router.ports.Directory` port.

Configuration (``[[correspondents]]`` tables)::

    [[correspondents]]
    rpps = "10000023084"              # or idnat = "810000023084"
    address = "sophie.martin@medecin.mssante.fr"
    name = "Dr Sophie MARTIN"
    kind = "PER"                      # PER (default), ORG, APP, CAB
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from router.errors import ConfigError
from router.identity import idnat_ps
from router.ports import Mailbox
from router.recipients_pfi import ADDRESS

KINDS = frozenset({"PER", "ORG", "APP", "CAB"})


class StaticDirectory:
    """An in-memory :class:`~router.ports.Directory` over the configured correspondents."""

    def __init__(self, mailboxes: Iterable[Mailbox] = ()):
        self._by_identifier: dict[str, list[Mailbox]] = {}
        for mailbox in mailboxes:
            self._by_identifier.setdefault(mailbox.identifier, []).append(mailbox)

    async def mailboxes(self, identifier: str) -> list[Mailbox]:
        return list(self._by_identifier.get(identifier, ()))

    def __len__(self) -> int:
        return sum(len(found) for found in self._by_identifier.values())

    @classmethod
    def from_config(cls, entries: Iterable[Mapping[str, Any]]) -> StaticDirectory:
        """Build from ``[[correspondents]]`` tables; each error names the entry and key."""
        return cls(_mailbox(index, entry) for index, entry in enumerate(entries))


def _mailbox(index: int, entry: Mapping[str, Any]) -> Mailbox:
    where = f"correspondents[{index}]"
    address = str(entry.get("address", "")).strip()
    if not ADDRESS.match(address):
        raise ConfigError(f"{where}.address", f"{address!r} is not a mail address")
    rpps, idnat = str(entry.get("rpps", "")).strip(), str(entry.get("idnat", "")).strip()
    if bool(rpps) == bool(idnat):
        raise ConfigError(where, "give exactly one of rpps (11 digits) or idnat (8+RPPS, 0+ADELI, structure id)")
    if rpps and not (len(rpps) == 11 and rpps.isdigit()):
        raise ConfigError(f"{where}.rpps", f"{rpps!r} is not an 11-digit RPPS number")
    kind = str(entry.get("kind", "PER")).strip().upper()
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind", f"{kind!r} is not one of {', '.join(sorted(KINDS))}")
    return Mailbox(address=address, kind=kind, identifier=idnat_ps(rpps, "RPPS") if rpps else idnat,
                   name=str(entry.get("name", "")).strip(), organisation=str(entry.get("organisation", "")).strip(),
                   source="static")
