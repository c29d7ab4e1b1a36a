"""``liaison demo [--dir DIR]``: the whole chain on loopback, with a table of what was delivered."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    """Add ``demo`` to the ``liaison`` sub-commands."""
    demo = subparsers.add_parser("demo", help="run the whole chain on loopback with sample messages")
    demo.add_argument("--dir", type=Path, help="where to keep the demo's files (default: a new temp dir)")


async def run(args: argparse.Namespace) -> int:
    from channels.app.demo.run import run_demo
    return await run_demo(args.dir)
