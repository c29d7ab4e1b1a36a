"""Small listes blanches in the ANS format for the tests (fictitious operators and domains)."""

from __future__ import annotations

from pathlib import Path

from channels.testing.whitelist_publish import NS, checksum_of, list_xml, publish

__all__ = ["NS", "OPERATOR", "make_list", "sha256_of", "write_pair"]

OPERATOR = "CN=mss.operateur-test.fr,OU=123456789,O=OPERATEUR TEST,ST=Paris (75),C=FR"


def make_list(domains: dict[str, str] | list[str], generated: str = "2025-03-13T14:54:10Z", *,
              close_root: bool = True) -> bytes:
    """A liste blanche; ``domains`` maps a name to its operator DN (or lists names of the test operator)."""
    return list_xml(domains, operator=OPERATOR, generated=generated, close_root=close_root)


def sha256_of(data: bytes) -> bytes:
    return checksum_of(data)


def write_pair(directory: Path, data: bytes, checksum: bytes | None = None) -> Path:
    return publish(directory, data, checksum)
