"""A robust AMQP connection over the nodes of one RabbitMQ cluster.

aio-pika's ``RobustConnection`` reconnects to its one URL. ``FailoverConnection`` holds the
list of node URLs and, each time an open connection is lost or a connection attempt fails,
points the next attempt at the next node (round robin). Everything else is aio-pika's: the
reconnection loop and its ``reconnect_interval``, then, once connected, reopening the
channels, redeclaring their queues and restarting their consumers on the new node.

The hook is ``_on_connection_close``: aio-pika calls it when an open connection closes and
when an attempt fails (``UnderlayConnection.connect`` hands the failure to the close callback
before raising), in both cases before its loop tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aio_pika import RobustConnection
from yarl import URL


class FailoverConnection(RobustConnection):
    """A ``RobustConnection`` that moves to the next node before each reconnection attempt."""

    def __init__(self, urls: Sequence[str], *, first: int = 0, **kwargs: Any):
        if not urls:
            raise ValueError("FailoverConnection needs at least one node URL")
        self.nodes = tuple(URL(url) for url in urls)
        self._current = first % len(self.nodes)
        super().__init__(self.nodes[self._current], **kwargs)

    @property
    def node(self) -> URL:
        """The node of the current (or next) connection attempt."""
        return self.nodes[self._current]

    async def _on_connection_close(self, closing: asyncio.Future) -> None:
        if not (self.close_called or self.is_closed):
            self._current = (self._current + 1) % len(self.nodes)
            self.url = self.nodes[self._current]
        await super()._on_connection_close(closing)
