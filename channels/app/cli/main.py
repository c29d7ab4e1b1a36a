"""The ``liaison`` command: run, demo, send, check-config.

    liaison run [-c liaison.toml]          start the engine (embedded defaults without -c)
    liaison worker [-c liaison.toml]       only the pipeline consumers, for more servers on one bus
    liaison demo [--dir DIR]               the whole chain on loopback, with a table of what was delivered
    liaison send --host H --port P FILE…   an MLLP client printing each ACK
    liaison journal search|show [KEY]      a message's timeline: every step, state and reason
    liaison validate [--no-profiles] FILE|DIR… check CDA files as the engine does before sending
    liaison check-config FILE              validate a configuration and say what it would start
    liaison whitelist update|check ADDRESS the MSSanté whitelist: fetch and verify it, or check an address
    liaison directory import|lookup        the Annuaire Santé extraction index: build it, or look someone up

Each verb group is a module of this package with ``add_parser(subparsers)`` and
``async run(args) -> exit status``; this module only puts them together.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from channels.app.cli import check_config, demo, directory, engine, journal, send, validate, whitelist
from channels.app.logs import configure_logging
from router.errors import ConfigError

GROUPS = (engine, demo, send, journal, validate, check_config, whitelist, directory)
LOUD = {"run", "worker"}        # the others talk to a person: warnings only, unless --log-level says otherwise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liaison", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default="info")
    sub = parser.add_subparsers(dest="command", required=True)
    group_of = {}
    for group in GROUPS:
        known = set(sub.choices)
        group.add_parser(sub)
        group_of.update(dict.fromkeys(set(sub.choices) - known, group))
    args = parser.parse_args(argv)

    quiet = args.command not in LOUD and args.log_level == "info"
    configure_logging("warning" if quiet else args.log_level)
    try:
        return asyncio.run(group_of[args.command].run(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
