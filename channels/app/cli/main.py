"""Liaison, a hospital integration engine: HL7 v2 in over MLLP, CI-SIS CDA out over MSSanté and the DMP.

    liaison run [-c liaison.toml]          start the engine (embedded defaults without -c)
    liaison worker [-c liaison.toml]       only the pipeline consumers, for more servers on one bus
    liaison demo [--dir DIR]               the whole chain on loopback, with a table of what was delivered
    liaison send --host H --port P FILE…   an MLLP client printing each ACK
    liaison journal search|show [KEY]      a message's timeline: every step, state and reason
    liaison validate [--no-profiles] FILE|DIR… check CDA files as the engine does before sending
    liaison check-config FILE              validate a configuration and say what it would start
    liaison whitelist update|check ADDRESS the MSSanté whitelist: fetch and verify it, or check an address
    liaison directory import|lookup        the Annuaire Santé extraction index: build it, or look someone up
    liaison console [-c liaison.toml]      the web console ([console]; `run` serves it too when configured)
    liaison user add|list|disable|reset|token  the web console's users (no default account)
    liaison release|retry|discard|replay KEY   act on parked or failed messages (audited, never a second mail)
    liaison retention [--dry-run|--compact]    what [retention] removes: count it, or remove it now

Each verb group is a module of this package with ``add_parser(subparsers)`` and
``async run(args) -> exit status``; this module only puts them together, and
gives every command the same manners:

* a configuration or input error is one line on stderr naming the setting, the
  file and what was expected, exit status 2, no traceback; an engine error no
  command reported itself (a journal or peer unavailable) is its reason, status 1;
* output into a pipe that closes early (``liaison journal search | head``) ends
  the command quietly with status 141, as a command killed by SIGPIPE (128 + 13)
  ends in a shell: the command did not finish (``liaison send`` stops sending),
  and ``set -o pipefail`` scripts see it as they would for ``cat``;
* Ctrl-C ends a command quietly with status 130 (128 + SIGINT); ``run`` and
  ``worker`` stop gracefully on SIGINT/SIGTERM themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from channels.app.cli import (actions, check_config, console, demo, directory, engine, journal, retention, send, user,
                              validate, whitelist)
from channels.app.logs import configure_logging
from router.config_values import file_problem
from router.errors import ConfigError, EngineError

GROUPS = (engine, demo, send, journal, validate, check_config, whitelist, directory, console, user, actions, retention)
LOUD = {"run", "worker"}        # the others talk to a person: warnings only, unless --log-level says otherwise
LOG_LEVELS = ("debug", "info", "warning", "error")
#: Exit status when the reader of our output went away (a shell's status for a command killed by SIGPIPE).
EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130
EXIT_CONFIG = 2


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    """The ``liaison`` parser and, for each command name, the verb-group module that runs it."""
    summary, _, rest = __doc__.partition("\n\n")
    usage = rest.split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="liaison", description=summary,
                                     epilog="usage of each command (liaison COMMAND --help for its options):\n"
                                            + usage.replace("    liaison ", "  liaison "),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS,
                        help="log level (default: info for run and worker, warning for the other commands); "
                             "logs go to stderr, JSON lines unless stderr is a terminal")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    group_of = {}
    for group in GROUPS:
        known = set(sub.choices)
        group.add_parser(sub)
        group_of.update(dict.fromkeys(set(sub.choices) - known, group))
    return parser, group_of


def main(argv: list[str] | None = None) -> int:
    """Run one ``liaison`` command; its exit status."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()          # a pipe closed early shows here (also after --help), not at exit
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _run(argv: list[str] | None) -> int:
    parser, group_of = build_parser()
    args = parser.parse_args(argv)
    quiet = args.command not in LOUD and args.log_level == "info"
    configure_logging("warning" if quiet else args.log_level)
    try:
        return asyncio.run(group_of[args.command].run(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except EngineError as exc:
        # A typed failure no command reported itself (a journal or peer unavailable...): its reason, no traceback.
        print(f"liaison {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        # An input or environment problem no command caught itself: one line, and the file when there is one.
        if args.log_level == "debug":
            raise
        if isinstance(exc, UnicodeDecodeError):
            problem = f"input {file_problem(exc)}"
        else:
            problem = f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc.strerror or exc)
        print(f"liaison {args.command}: {problem} (--log-level debug shows where)", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
