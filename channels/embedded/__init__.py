"""Embedded bus: durable queues in a local SQLite file (``embedded:///path/bus.sqlite``)."""

from channels.embedded.bus import EmbeddedBus, from_url

__all__ = ["EmbeddedBus", "from_url"]
