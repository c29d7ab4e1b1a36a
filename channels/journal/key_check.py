"""The journal's key check: a journal remembers whether it is encrypted, and refuses a key that does not fit.

A new journal records its cipher and, when encrypted, a known plaintext sealed under its key; opening
it again with no key, another key or a key where there was none fails at once with the reason, rather
than later on the first row that does not decrypt (``EncryptionKeyError``).
"""

from __future__ import annotations

import sqlite3

from channels.cipher import Codec, DecryptError, EncryptionKeyError, aad
from channels.journal.sql import Operation, run_immediate

KEY_CHECK_PLAINTEXT = b"liaison journal key check v1"


def codec_check(codec: Codec) -> Operation[None]:
    """Record the encryption mode of a new journal; refuse a key that does not fit an old one."""
    where = aad("settings", "key_check")
    rows = dict((yield "SELECT name, value FROM settings", ()).rows)
    if "cipher" not in rows:
        yield "INSERT INTO settings VALUES ('cipher', ?)", (codec.name,)
        if codec.encrypted:
            yield "INSERT INTO settings VALUES ('key_check', ?)", (codec.seal_bytes(KEY_CHECK_PLAINTEXT, where),)
        return
    verify_codec(rows, codec)


def verify_codec(rows: dict, codec: Codec) -> None:
    """Refuse a key that does not fit the journal whose ``settings`` rows these are (a read-only open uses it)."""
    if "cipher" not in rows:
        return
    where = aad("settings", "key_check")
    stored = rows["cipher"]
    stored = bytes(stored).decode("ascii") if isinstance(stored, (bytes, memoryview)) else stored
    if stored != codec.name:
        if codec.encrypted:
            raise EncryptionKeyError("this journal was created without encryption; open it without a key")
        raise EncryptionKeyError(f"this journal is encrypted ({stored}): a key is required to open it")
    if codec.encrypted:
        try:
            ok = codec.open_bytes(bytes(rows["key_check"]), where) == KEY_CHECK_PLAINTEXT
        except DecryptError:
            ok = False
        if not ok:
            raise EncryptionKeyError("wrong key: it does not decrypt this journal")


def check_codec(conn: sqlite3.Connection, codec: Codec) -> None:
    """:func:`codec_check` on a SQLite journal."""
    run_immediate(conn, codec_check(codec))
