"""``liaison run|worker``: start the engine, or only its consumers (or only its listeners).

    liaison run [-c liaison.toml] [--ingest-only]   start the engine (embedded defaults without -c)
    liaison worker [-c liaison.toml]                only the pipeline consumers, for more servers on one bus

With ``[console]`` configured, ``run`` serves the web console too, over the engine's own journal and bus.

The engine stops gracefully on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from channels.app.settings import Settings, load_settings


def add_parser(subparsers) -> None:
    """Add ``run`` and ``worker`` to the ``liaison`` sub-commands."""
    run = subparsers.add_parser("run", help="start the engine")
    run.add_argument("-c", "--config", type=Path, metavar="FILE",
                     help="the liaison.toml configuration (default: the embedded defaults: embedded bus and "
                          "SQLite journal under /var/lib/liaison, MLLP on 127.0.0.1:2575)")
    run.add_argument("--ingest-only", action="store_true",
                     help="only the MLLP listeners (store + queue + ACK); workers run elsewhere")
    worker = subparsers.add_parser("worker", help="only the pipeline consumers (no listener)")
    worker.add_argument("-c", "--config", type=Path, metavar="FILE",
                        help="the liaison.toml configuration; its engine.bus must be a shared amqp:// bus")


async def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config) if args.config else Settings()
    if args.command == "worker":
        return await _serve(settings, listen=False)
    return await _serve(settings, consume=not args.ingest_only)


async def _serve(settings: Settings, *, listen: bool = True, consume: bool = True) -> int:
    """Run the engine until SIGINT or SIGTERM, then stop it gracefully."""
    from channels.app.engine import Engine
    from channels.app.malloc import fix_mmap_threshold
    fix_mmap_threshold()            # a large message's peak goes back to the OS (channels/app/malloc.py)
    if isinstance(settings.bus, str) and settings.bus.startswith("embedded:") and not (listen and consume):
        # The embedded bus is one file locked by one process: a lone listener or worker has no partner.
        print("warning: the embedded bus serves one process; run listeners and workers apart only on a "
              "shared amqp:// bus", file=sys.stderr)
    engine = Engine(settings)
    await engine.start(listen=listen, consume=consume)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if settings.console is not None and listen:
            from channels.app.cli.console import serve_console       # [console]: the web console beside it
            await serve_console(settings.console, engine.journal, engine.bus, stop, engine_settings=settings)
        else:
            await stop.wait()
    finally:
        await engine.stop()
    return 0
