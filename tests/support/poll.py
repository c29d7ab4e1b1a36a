"""Wait for a state by polling it against a deadline: how a test waits, never by sleeping a guessed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def eventually(predicate: Callable[[], Any], what: str, *, timeout: float = 10.0,
                     interval: float = 0.01) -> Any:
    """Poll ``predicate`` (plain or async) until it returns a truthy value, and return that value.

    Fails the test, naming ``what``, when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
