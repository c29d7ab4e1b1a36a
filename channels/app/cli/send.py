"""``liaison send --host H --port P FILE...``: an MLLP client printing each ACK.

The exit status is 1 when any message was not accepted, 2 when a file cannot be
read (then nothing is sent), else 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from router.config_values import file_problem


def add_parser(subparsers) -> None:
    """Add ``send`` to the ``liaison`` sub-commands."""
    send = subparsers.add_parser("send", help="send HL7 files over MLLP and print each ACK")
    send.add_argument("--host", default="127.0.0.1", help="the MLLP listener's host (default %(default)s)")
    send.add_argument("--port", type=int, required=True, help="the MLLP listener's port")
    send.add_argument("--timeout", type=float, default=10.0,
                      help="seconds to wait for each ACK (default %(default)s)")
    send.add_argument("files", nargs="+", type=Path, metavar="FILE",
                      help="a file of one or more HL7 v2 messages (CR or LF segment endings)")


async def run(args: argparse.Namespace) -> int:
    from channels.mllp.client import send_files
    try:
        failures = await send_files(args.host, args.port, args.files, timeout=args.timeout)
    except OSError as exc:
        if exc.filename is None:
            raise
        print(f"liaison send: {exc.filename} {file_problem(exc)}; expected a file of HL7 v2 messages "
              "(nothing was sent)", file=sys.stderr)
        return 2
    return 1 if failures else 0
