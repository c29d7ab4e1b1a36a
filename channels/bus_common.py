"""What every Bus adapter checks and does the same way, so the contract holds by construction.

Queue names and header types are validated identically on both buses, and a
cancelled subscription lets its running handlers finish within a bound before
cancelling the rest.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)

QUEUE_NAME = re.compile(r"[a-z0-9._-]{1,200}")


def check_queue(queue: str) -> None:
    if not isinstance(queue, str) or not QUEUE_NAME.fullmatch(queue):
        raise ValueError(f"bad queue name {queue!r}: use 1 to 200 of [a-z0-9._-]")


def check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    fields = dict(headers or {})
    for key, value in fields.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"bus headers are str -> str; got {key!r}: {type(value).__name__}")
    return fields


async def finish_handlers(tasks: set[asyncio.Task], *, timeout: float, queue: str) -> None:
    """Wait up to ``timeout`` for running handlers (but not the caller's own), then cancel the rest."""
    running = tasks - {asyncio.current_task()}     # a handler may cancel its own subscription
    if not running:
        return
    _, pending = await asyncio.wait(running, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        log.warning("bus.handlers_cancelled", queue=queue, count=len(pending))
        await asyncio.gather(*pending, return_exceptions=True)
