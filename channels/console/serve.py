"""Serve the console with uvicorn: HTTPS with the configured certificate, or plain HTTP on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

from channels.console.app import create_app
from channels.console.installation import Installation
from channels.console.settings import ConsoleSettings
from channels.console.users import SqliteUsers
from router.errors import ConfigError
from router.ports import Bus, Journal


class ConsoleServer(uvicorn.Server):
    """uvicorn's server, leaving the signals to the command that runs it (it stops through ``should_exit``)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def console_server(settings: ConsoleSettings, journal: Journal, bus: Bus, users: SqliteUsers,
                   installation: Installation | None = None) -> ConsoleServer:
    """A server for the console over opened ports; ``serve_until`` runs it."""
    app = create_app(journal, bus, users, https=settings.https, installation=installation)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, lifespan="off", access_log=False,
                            log_config=None, proxy_headers=False, server_header=False,
                            ssl_certfile=settings.tls_cert or None, ssl_keyfile=settings.tls_key or None)
    return ConsoleServer(config)


async def serve_until(server: ConsoleServer, stop: asyncio.Event) -> None:
    """Run ``server`` until ``stop`` is set, then close it gracefully; a port it cannot take is a ConfigError."""
    task = asyncio.create_task(server.serve())
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    waiter.cancel()
    try:
        await task
    except SystemExit as exc:       # uvicorn exits when it cannot bind
        config = server.config
        raise ConfigError("console.port", f"cannot listen on {config.host}:{config.port}") from exc
