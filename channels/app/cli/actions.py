"""``liaison release|retry|discard|replay``: an operator's actions on parked or failed messages.

    liaison release [-c liaison.toml] KEY...                   parked jobs back to their queue
    liaison retry   [-c liaison.toml] KEY --recipient ADDRESS  a new attempt for one failed recipient
    liaison discard [-c liaison.toml] KEY... --reason TEXT     close them for good, with the reason
    liaison replay  [-c liaison.toml] KEY...                   run them again from their raw HL7

The same service as the console's buttons (:mod:`router.actions`): a recipient
that accepted the content is never mailed again, and each action, done or
refused, is audited on the message's timeline and, when ``[console]`` is
configured, in the console's audit trail, under ``--user`` (default: the
login name of whoever runs the command). One line per message on stdout:
``KEY<TAB>done|refused<TAB>what``, nothing else, so it reads well in a pipe.
Exit status 0 when every action was done, 1 when one was refused (the reason
is on stdout and stderr), 2 for a configuration or usage error.

``discard`` needs only the journal. The others put work on the bus: with the
embedded bus, whose file the running engine holds, stop the engine first or use
the console it serves.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from channels.app.settings import Settings, load_settings
from router.errors import BusUnavailable, ConfigError

VERBS = {
    "release": "put a message's parked jobs back on their queue, to run again from that stage",
    "retry": "give one failed or refused recipient of a message a new attempt (never one that accepted)",
    "discard": "close parked or failed messages for good (state discarded), with a reason",
    "replay": "run messages again from their raw HL7 through every stage, as a new run",
}


def add_parser(subparsers) -> None:
    """Add ``release``, ``retry``, ``discard`` and ``replay`` to the ``liaison`` sub-commands."""
    for verb, summary in VERBS.items():
        parser = subparsers.add_parser(verb, help=summary, description=summary + ". " + _NEVER_TWICE)
        parser.add_argument("-c", "--config", type=Path, metavar="FILE",
                            help="the liaison.toml naming the journal and bus of [engine] (and [console] users for "
                                 "the audit trail); default: the embedded defaults")
        if verb == "retry":
            parser.add_argument("key", help="the message's journal key (first column of 'liaison journal search')")
            parser.add_argument("--recipient", required=True, metavar="ADDRESS",
                                help="the recipient's MSSanté address, as 'liaison journal show KEY' lists it")
        else:
            parser.add_argument("key", nargs="+", metavar="KEY",
                                help="journal key(s) of the message(s) (first column of 'liaison journal search')")
        if verb == "discard":
            parser.add_argument("--reason", required=True,
                                help="why it is closed (kept in the journal and the audit; at most 500 characters)")
        parser.add_argument("--user", default=None,
                            help="the name the audit records for this action (default: your login name)")


_NEVER_TWICE = "A recipient that accepted this content is never mailed again; every action is audited."


async def run(args: argparse.Namespace, *, out=print) -> int:
    from channels.app.engine import bus_from_url, journal_from_url
    from channels.sealed_bus import SealedBus
    from router.actions import ActionError, MessageActions
    settings = load_settings(args.config) if args.config else Settings()
    user = args.user or f"cli:{getpass.getuser()}"
    if not user.strip():
        print(f"liaison {args.command}: --user: expected a name, got an empty one", file=sys.stderr)
        return 2
    journal = journal_from_url(settings.journal, settings.journal_key, migrate=False)
    path = getattr(journal, "path", None)
    if path is not None and not Path(path).is_file():
        raise ConfigError("engine.journal", f"{path} does not exist; expected the engine's journal (actions never "
                                            "create one: check the path, or give -c FILE)")
    bus = bus_from_url(settings.bus)
    if settings.journal_key is not None:
        bus = SealedBus(bus, settings.journal_key)
    users = _audit_store(settings)
    await journal.open()
    try:
        if args.command != "discard":
            try:
                await bus.connect()
            except BusUnavailable as exc:
                print(f"liaison {args.command}: the bus does not answer ({exc}); with the embedded bus, stop the "
                      "engine first or use its console", file=sys.stderr)
                return 1
        actions = MessageActions(journal, bus, audit=users.audit_async if users else None)
        refused = 0
        for key in [args.key] if isinstance(args.key, str) else args.key:
            try:
                if args.command == "release":
                    result = await actions.release(key, user)
                elif args.command == "retry":
                    result = await actions.retry_recipient(key, args.recipient, user)
                elif args.command == "discard":
                    result = await actions.discard(key, args.reason, user)
                else:
                    result = await actions.replay(key, user)
            except ActionError as exc:
                refused += 1
                out(f"{key}\trefused\t{exc}")
                print(f"liaison {args.command}: {exc}", file=sys.stderr)
                continue
            out(f"{key}\tdone\t{result.outcome}")
        return 1 if refused else 0
    finally:
        if args.command != "discard":
            await bus.close()
        await journal.close()
        if users is not None:
            users.close()


def _audit_store(settings: Settings):
    """The console's users store when ``[console]`` is configured (its audit trail), else None."""
    if settings.console is None:
        return None
    from channels.console.users import SqliteUsers
    return SqliteUsers(settings.console.users, journal_key=settings.journal_key).open()
