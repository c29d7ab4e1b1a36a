"""Deliver a mail into a Maildir the way a local MTA does (Postfix ``home_mailbox = Maildir/``, Dovecot LDA).

Written whole into ``tmp/`` then renamed into ``new/``: a reader never sees half a mail. Used by the
tests of ``channels.notices.maildir`` and by ``liaison demo`` (the doctors' read notices coming back).
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path

__all__ = ["deliver", "make_maildir"]

_SEQ = itertools.count(1)


def make_maildir(path: Path) -> Path:
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def deliver(maildir: Path, raw: bytes) -> Path:
    """Put ``raw`` in ``maildir/new`` under a unique Maildir name; the file's path."""
    make_maildir(maildir)
    name = f"{time.time_ns() // 1_000_000_000}.P{os.getpid()}Q{next(_SEQ)}M{time.time_ns() % 1_000_000}" \
           f".{socket.gethostname().replace('/', '_').replace(':', '_')}"
    (maildir / "tmp" / name).write_bytes(raw)
    os.replace(maildir / "tmp" / name, maildir / "new" / name)
    return maildir / "new" / name
