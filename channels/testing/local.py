"""Loopback helpers shared by the tests and the benchmarks: a free port, and waiting for a listener."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_port(port: int, deadline: float, *, still_starting: Callable[[], None] = lambda: None) -> None:
    """Poll until something accepts on 127.0.0.1:``port``, until ``deadline`` (``time.monotonic()``).

    ``still_starting`` is called before each attempt and raises when the process meant to listen died,
    so a crashed server is reported at once rather than at the deadline.
    """
    while time.monotonic() < deadline:
        still_starting()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")
