"""Journal message keys: 26-character ULIDs that sort in arrival order.

A key is 48 bits of Unix milliseconds followed by 80 random bits, written in
Crockford base32 (``01HZX3R6Q8...``). Why ULIDs rather than uuid4: keys sort by
creation time, so a listing by key is chronological, and new rows append at
the end of the primary-key index instead of landing on random pages. Keys made
in the same millisecond by this process increase by one, so they stay strictly
ordered even when the clock stands still or steps back.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_lock = threading.Lock()
_last_ms = -1
_last_random = 0


def new_key() -> str:
    """Return a new ULID, greater than every key this process made before."""
    global _last_ms, _last_random
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            random_part = int.from_bytes(os.urandom(_RANDOM_BITS // 8), "big")
        else:
            ms, random_part = _last_ms, _last_random + 1
            if random_part >> _RANDOM_BITS:
                ms, random_part = ms + 1, 0
        _last_ms, _last_random = ms, random_part
    return encode((ms << _RANDOM_BITS) | random_part)


def encode(value: int) -> str:
    """Write a 128-bit integer as 26 Crockford base32 characters."""
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def key_time_ms(key: str) -> int:
    """The Unix time in milliseconds a key was made at (for retention and display)."""
    value = 0
    for char in key[:10].upper():
        value = value * 32 + _ALPHABET.index(char)
    return value
