"""``liaison console``: the web console alone, over the configured journal and bus.

    liaison console [-c liaison.toml]

Serves ``[console]`` (default: http://127.0.0.1:8480/) until SIGINT or SIGTERM.
With the embedded bus, whose file one process holds, run the console inside
the engine instead: ``liaison run`` serves it too when ``[console]`` is configured.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from channels.app.settings import Settings, load_settings
from channels.console.settings import ConsoleSettings
from router.errors import BusUnavailable
from router.ports import Bus, Journal


def add_parser(subparsers) -> None:
    """Add ``console`` to the ``liaison`` sub-commands."""
    console = subparsers.add_parser("console", help="serve the web console")
    console.add_argument("-c", "--config", type=Path, metavar="FILE",
                         help="the liaison.toml: [console] (host, port, tls_cert, tls_key, users), the journal "
                              "and the bus of [engine]")


async def run(args: argparse.Namespace) -> int:
    from channels.app.engine import bus_from_url, journal_from_url
    from channels.sealed_bus import SealedBus
    settings = load_settings(args.config) if args.config else Settings()
    journal = journal_from_url(settings.journal, settings.journal_key)
    bus = bus_from_url(settings.bus)
    if settings.journal_key is not None:
        bus = SealedBus(bus, settings.journal_key)
    await journal.open()
    try:
        try:
            await bus.connect()
        except BusUnavailable as exc:
            print(f"liaison console: the bus does not answer ({exc}); with the embedded bus, configure [console] "
                  "and let `liaison run` serve it", file=sys.stderr)
            return 1
        try:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await serve_console(settings.console or ConsoleSettings(), journal, bus, stop, engine_settings=settings)
        finally:
            await bus.close()
    finally:
        await journal.close()
    return 0


async def serve_console(settings: ConsoleSettings, journal: Journal, bus: Bus, stop: asyncio.Event, *,
                        engine_settings: Settings | None = None) -> None:
    """Serve the console over opened ports until ``stop`` is set (``engine_settings``: shown on its pages)."""
    from channels.app.installation import SettingsInstallation
    from channels.console.serve import console_server, serve_until
    from channels.console.users import SqliteUsers
    users = SqliteUsers(settings.users,
                        journal_key=engine_settings.journal_key if engine_settings is not None else None).open()
    try:
        scheme = "https" if settings.https else "http"
        print(f"console on {scheme}://{settings.host}:{settings.port}/ (users in {settings.users})", file=sys.stderr)
        installation = SettingsInstallation(engine_settings) if engine_settings is not None else None
        await serve_until(console_server(settings, journal, bus, users, installation), stop)
    finally:
        users.close()
