"""``liaison send --host H --port P FILE...``: an MLLP client printing each ACK.

The exit status is 1 when any message was not accepted, else 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    """Add ``send`` to the ``liaison`` sub-commands."""
    send = subparsers.add_parser("send", help="send HL7 files over MLLP and print each ACK")
    send.add_argument("--host", default="127.0.0.1")
    send.add_argument("--port", type=int, required=True)
    send.add_argument("--timeout", type=float, default=10.0)
    send.add_argument("files", nargs="+", type=Path)


async def run(args: argparse.Namespace) -> int:
    from channels.mllp.client import send_files
    failures = await send_files(args.host, args.port, args.files, timeout=args.timeout)
    return 1 if failures else 0
