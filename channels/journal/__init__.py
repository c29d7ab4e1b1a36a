"""Journal adapters: every message and every step, stored before the ACK.

- ``sqlite:///var/lib/liaison/journal.sqlite`` -> :class:`SqliteJournal` (one server, the default)
- ``postgresql://...`` -> PostgreSQL adapter (several workers; not written yet)
"""

from channels.cipher import DecryptError, EncryptionKeyError
from channels.journal.sqlite import SqliteJournal, from_url

__all__ = ["DecryptError", "EncryptionKeyError", "SqliteJournal", "from_url"]
