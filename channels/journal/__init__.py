"""Journal adapters: every message and every step, stored before the ACK.

- ``sqlite:///var/lib/liaison/journal.sqlite`` -> :class:`SqliteJournal` (one server, the default)
- ``postgresql://user@host/database`` -> :class:`channels.journal.postgresql.PostgresJournal`
  (several servers; imported on demand, with psycopg)

Both run the same statements (``sql.py`` says how) and the same versioned migrations (``schema.py``).
"""

from channels.cipher import DecryptError, EncryptionKeyError
from channels.journal.sqlite import SqliteJournal, from_url

__all__ = ["DecryptError", "EncryptionKeyError", "SqliteJournal", "from_url"]
