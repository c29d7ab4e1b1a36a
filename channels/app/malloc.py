"""Large allocations straight from the OS, so a large message's peak is given back (glibc only).

glibc serves a block of 128 KiB or more with its own mmap, returned to the OS on free, but
raises that threshold to the size of each such block freed (up to 32 MiB): after the first
large message, the next one's 27-35 MB copies (HL7 text, base64, CDA, zip) come from the heap
arenas of the threads that made them, and a peak there stays resident. On the 20 MB-PDF MDM the
worker peaked at 7.9x the message over idle with the dynamic threshold and 4.7x with it fixed
at 1 MiB (README, Performance). ``MALLOC_MMAP_THRESHOLD_`` in the environment overrides this.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import structlog

log = structlog.get_logger(__name__)

#: mallopt's parameter number for the mmap threshold (glibc's malloc.h).
_M_MMAP_THRESHOLD = -3
THRESHOLD = 1 << 20


def fix_mmap_threshold(threshold: int = THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; False where there is no glibc or it is set already."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):        # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = mallopt(_M_MMAP_THRESHOLD, threshold) == 1
    log.debug("malloc.mmap_threshold", bytes=threshold, set=done)
    return done
