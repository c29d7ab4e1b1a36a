"""``liaison journal migrate``: create or upgrade the journal's schema to this Liaison's version.

    liaison journal migrate -c liaison.toml      (or: liaison journal -c liaison.toml migrate)

Runs the versioned migrations of ``channels/journal/schema.py`` on the journal the configuration
names (SQLite or PostgreSQL) and says from which version to which; running it again changes
nothing. Processes started with ``engine.journal_migrate = false`` (say, with a database role that
may not change the schema) refuse a journal whose schema is behind: run this first, once per upgrade.
"""

from __future__ import annotations

from channels.app.settings import Settings
from router.config_values import redact_url


async def migrate(settings: Settings, out=print) -> int:
    from channels.app.engine import journal_from_url
    journal = journal_from_url(settings.journal, settings.journal_key)
    found, now = await journal.migrate()
    change = f"schema v{found} -> v{now}" if found != now else f"schema v{now}, up to date"
    out(f"journal {redact_url(settings.journal)}: {change}")
    return 0
