"""``liaison journal migrate``: create or upgrade the journal's schema to this Liaison's version.

    liaison journal migrate -c liaison.toml      (or: liaison journal -c liaison.toml migrate)

Runs the versioned migrations of ``channels/journal/schema.py`` on the journal the configuration
names (SQLite or PostgreSQL) and says from which version to which; running it again changes
nothing. Processes started with ``engine.journal_migrate = false`` (say, with a database role that
may not change the schema) refuse a journal whose schema is behind: run this first, once per upgrade.

Crossing v7 (search by IPP, INS, document id, recipient through keyed digests), an existing journal's
older messages are then filed under their digests (:func:`reindex`, also ``liaison journal reindex``):
the migration itself is SQL and cannot compute a keyed digest. A journal upgraded by the engine at
start (``engine.journal_migrate``) needs ``liaison journal reindex`` once for its older messages.
"""

from __future__ import annotations

from channels.app.settings import Settings
from router.config_values import redact_url

DIGESTS_SINCE = 7       # the schema version that brought message_identifiers


async def migrate(settings: Settings, out=print) -> int:
    from channels.app.engine import journal_from_url
    journal = journal_from_url(settings.journal, settings.journal_key)
    found, now = await journal.migrate()
    change = f"schema v{found} -> v{now}" if found != now else f"schema v{now}, up to date"
    out(f"journal {redact_url(settings.journal)}: {change}")
    if 0 < found < DIGESTS_SINCE <= now:
        return await reindex(settings, out)
    return 0


async def reindex(settings: Settings, out=print) -> int:
    """File every message under its identifiers' digests (``channels/journal/reindex.py``); say how many."""
    from channels.app.engine import journal_from_url
    journal = journal_from_url(settings.journal, settings.journal_key)
    await journal.open()
    try:
        counts = await journal.reindex()
    finally:
        await journal.close()
    out(f"journal {redact_url(settings.journal)}: identifiers filed for "
        + ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in counts.items()))
    return 0
