"""The engine's notion of now (UTC, timezone-aware), in one place so tests can reason about it."""

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)
