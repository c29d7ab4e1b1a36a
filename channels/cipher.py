"""Encryption at rest, shared by the journal and the sealed bus: AES-256-GCM, one fresh nonce per value.

In the journal, what is encrypted: the received bytes and every free-text ``detail`` (they can
hold patient data). What stays clear: keys, states, timestamps, control ids,
message types, application names, document ids and destinations, so that the
journal can be searched without the key.

Stored form: ``nonce (12 bytes) || ciphertext || tag (16 bytes)``. The
associated data binds each value to its row and column (for instance
``messages<US><key><US>raw``), so a value copied into another row or column
fails to decrypt instead of showing the wrong content.

Without a key, :class:`ClearCodec` stores values unchanged. A journal records
at creation whether it is encrypted, with a key-check value, so that opening it
with the wrong key, without its key, or with a key it never had fails at once
with :class:`EncryptionKeyError` rather than on the first read.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from router.errors import ConfigError, PermanentError

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
SEP = "\x1f"        # ASCII unit separator: cannot occur in HL7 identifiers


class EncryptionKeyError(ConfigError):
    """The encryption key (the journal key) is missing, malformed, or does not open this journal."""

    def __init__(self, problem: str):
        super().__init__("LIAISON_JOURNAL_KEY or engine.journal_key_file", problem)


class DecryptError(PermanentError):
    """One stored value does not decrypt: altered, moved, or written with another key."""


def aad(*parts: str) -> bytes:
    """Associated data naming where a value lives (table, row ids, column)."""
    return SEP.join(parts).encode("utf-8")


class ClearCodec:
    """No key: values are stored as given (bytes as BLOB, text as TEXT)."""

    name = "none"
    encrypted = False

    def seal_bytes(self, data: bytes, where: bytes) -> bytes:
        return data

    def open_bytes(self, stored: bytes, where: bytes) -> bytes:
        return bytes(stored)

    def seal_text(self, text: str, where: bytes) -> str:
        return text

    def open_text(self, stored: str | bytes, where: bytes) -> str:
        if isinstance(stored, bytes):
            raise DecryptError(f"encrypted value in a clear journal: {where.decode(errors='replace')!r}")
        return stored


class AesGcmCodec:
    """AES-256-GCM with a random 96-bit nonce per value."""

    name = "aes-256-gcm"
    encrypted = True

    def __init__(self, key: bytes):
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
            size = len(key) if isinstance(key, (bytes, bytearray)) else type(key).__name__
            raise EncryptionKeyError(f"must be {KEY_SIZE} bytes (AES-256), got {size}")
        self._aead = AESGCM(bytes(key))

    def seal_bytes(self, data: bytes, where: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, bytes(data), where)

    def open_bytes(self, stored: bytes, where: bytes) -> bytes:
        if not isinstance(stored, bytes) or len(stored) < NONCE_SIZE + TAG_SIZE:
            raise DecryptError(f"value is not an encrypted blob: {where.decode(errors='replace')!r}")
        try:
            return self._aead.decrypt(stored[:NONCE_SIZE], stored[NONCE_SIZE:], where)
        except InvalidTag as exc:
            raise DecryptError(
                f"cannot decrypt {where.decode(errors='replace')!r}: wrong key or altered value") from exc

    def seal_text(self, text: str, where: bytes) -> bytes:
        return self.seal_bytes(text.encode("utf-8"), where)

    def open_text(self, stored: str | bytes, where: bytes) -> str:
        if isinstance(stored, str):
            raise DecryptError(f"clear value in an encrypted journal: {where.decode(errors='replace')!r}")
        return self.open_bytes(stored, where).decode("utf-8")


Codec = ClearCodec | AesGcmCodec


def make_codec(key: bytes | None) -> Codec:
    """The codec for ``key``: AES-256-GCM with a 32-byte key, clear without one."""
    return ClearCodec() if key is None else AesGcmCodec(key)
