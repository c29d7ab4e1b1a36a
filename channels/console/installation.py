"""What the console shows about the installation around the journal and the bus, handed in by the composition root.

The console may not read the configuration itself (it is an adapter: ``channels.app`` builds it
and passes an :class:`Installation`). Started without one (tests, a bare ``create_app``), the
dashboard and the configuration page say so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Refresh:
    """The reference file in force: the MSSanté whitelist or an Annuaire Santé extraction."""

    name: str
    at: datetime | None            # fetched or imported at
    sha256: str
    source: str                    # where from (URLs without their password)
    detail: str = ""               # counts, or why it could not be read


@dataclass(frozen=True)
class Certificate:
    name: str                      # what it is for, e.g. "listener his (TLS)"
    path: str
    not_after: datetime | None
    problem: str = ""              # why it could not be read

    def days_left(self, now: datetime) -> float | None:
        return None if self.not_after is None else (self.not_after - now).total_seconds() / 86400


@dataclass(frozen=True)
class ChannelStatus:
    name: str
    kind: str                      # "MLLP listener", "MSSanté relay", "ZAM to the HIS", "DMP"
    target: str                    # host:port or URL, without password
    status: str                    # "accepting connections", "not answering", "configured"


class Installation(Protocol):
    timezone: str                  # the site's local time (engine.timezone): what "the day" means

    def configuration(self) -> dict[str, dict[str, Any]]:
        """The running configuration by section, every secret masked."""

    def refreshes(self) -> list[Refresh]:
        """The whitelist and directory files in force, with their SHA-256."""

    def certificates(self) -> list[Certificate]:
        """Every certificate the configuration names, with its expiry."""

    async def channels(self) -> list[ChannelStatus]:
        """Each configured channel and whether its address answers now."""
