"""Keyed digests of the identifiers people search by, so that the journal finds messages without holding them in clear.

An on-call engineer looks a message up by the patient's IPP or INS, the document id, or a
recipient's address. The journal keeps the IPP and INS only inside the sealed raw bytes; a
clear column would put them back on disk. Instead each identifier is stored as
``HMAC-SHA256(k, kind <US> value)`` truncated to 128 bits, in ``message_identifiers`` (schema v7),
indexed, with the message it belongs to; a search computes the same digest and looks it up.

- ``k`` is derived from the journal key with HKDF-SHA256 under its own ``info`` label, so the
  AES-GCM key is never used for anything else and a digest reveals nothing about it. Without the
  journal key nobody can test a guessed IPP against the table (IPPs are short numbers: an unkeyed
  hash would be reversed by enumeration).
- A journal without a key (tests, demos) derives ``k`` from a fixed all-zero key: its digests are
  then plain hashes, which is no loss since such a journal holds everything in clear anyway.
- The kind is part of the digested text, so an IPP never matches an INS of the same digits.
- Values are normalised the way people type them: stripped; an INS and addresses case-folded;
  a document id ``root^extension`` is also indexed under its extension alone, and a deletion's
  ``#delete`` suffix (``deliver.delivery_key``) is dropped.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INFO = b"liaison journal identifier digest v1"
DIGEST_SIZE = 16
KINDS = ("ipp", "ins", "document", "recipient")
_NO_KEY = bytes(32)


class IdentifierDigests:
    """Computes the keyed digests of one journal (one per journal key)."""

    def __init__(self, key: bytes | None):
        material = _NO_KEY if key is None else bytes(key)
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(material)

    def digest(self, kind: str, value: str) -> bytes:
        """The digest one search for ``kind`` = ``value`` looks up."""
        if kind not in KINDS:
            raise ValueError(f"identifier kind: one of {', '.join(KINDS)}, got {kind!r}")
        text = f"{kind}\x1f{normalise(kind, value)}".encode("utf-8")
        return hmac.new(self._key, text, "sha256").digest()[:DIGEST_SIZE]

    def of(self, identifiers: Iterable[tuple[str, str]]) -> list[bytes]:
        """The digests to store for these (kind, value) pairs: distinct, empty values skipped."""
        found: dict[bytes, None] = {}
        for kind, value in identifiers:
            for variant in variants(kind, value):
                found[self.digest(kind, variant)] = None
        return list(found)


def normalise(kind: str, value: str) -> str:
    value = value.strip()
    if kind in ("ins", "recipient"):
        return value.casefold()
    if kind == "document" and value.endswith("#delete"):
        return value[:-len("#delete")]
    return value


def variants(kind: str, value: str) -> list[str]:
    """The forms one identifier is indexed under (a document id also by its extension)."""
    value = normalise(kind, value)
    if not value:
        return []
    if kind == "document" and "^" in value:
        extension = value.split("^", 1)[1].strip()
        return [value, extension] if extension else [value]
    return [value]
