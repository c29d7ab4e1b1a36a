"""Why a new liste blanche was refused; the store keeps the previous one in every case.

    WhitelistError            a candidate list that must not replace the current one
    ├── FetchError            the list or its checksum could not be read (HTTP status, network, file)
    ├── ChecksumError         the checksum file is empty or not a SHA-256, or does not match the list
    └── ListFormatError       the XML is unparsable, unsafe (DOCTYPE), not a liste blanche, or empty
"""

from __future__ import annotations


class WhitelistError(Exception):
    """A candidate list was refused; ``str(exc)`` is the reason, safe to log and print."""


class FetchError(WhitelistError):
    """The list or its checksum could not be read."""


class ChecksumError(WhitelistError):
    """The checksum is unusable or does not match the list's bytes."""


class ListFormatError(WhitelistError):
    """The bytes are not a usable liste blanche."""
