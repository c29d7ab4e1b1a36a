"""``liaison user add|list|disable``: the web console's local users.

    liaison user [-c liaison.toml] add NAME --role viewer|operator|admin [--password-stdin]
    liaison user [-c liaison.toml] list
    liaison user [-c liaison.toml] disable NAME

Users live in the file named by ``[console] users`` (default
``/var/lib/liaison/console-users.sqlite``). There is no default account: the
first admin is made with ``add``. The password is read from standard input
with ``--password-stdin`` (one line), else asked twice on the terminal.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from channels.app.settings import Settings, load_settings
from channels.console.settings import ConsoleSettings

ROLES = ("viewer", "operator", "admin")


def add_parser(subparsers) -> None:
    """Add ``user`` (with ``add``, ``list`` and ``disable``) to the ``liaison`` sub-commands."""
    user = subparsers.add_parser("user", help="the web console's users: add, list, disable")
    _config_option(user, default=None)
    sub = user.add_subparsers(dest="user_command", required=True, metavar="COMMAND")
    add = sub.add_parser("add", help="create a user with a role")
    _config_option(add, default=argparse.SUPPRESS)
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES,
                     help="viewer: metadata only; operator: raw messages and release; admin: as operator, and users")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    listing = sub.add_parser("list", help="every user, with role and state")
    _config_option(listing, default=argparse.SUPPRESS)
    disable = sub.add_parser("disable", help="stop a user from logging in (open sessions end too)")
    _config_option(disable, default=argparse.SUPPRESS)
    disable.add_argument("name")


def _config_option(parser: argparse.ArgumentParser, *, default) -> None:
    parser.add_argument("-c", "--config", type=Path, metavar="FILE", default=default,
                        help="the liaison.toml whose [console] users names the users file")


async def run(args: argparse.Namespace, *, stdin=None, out=print) -> int:
    from channels.console.users import Role, SqliteUsers
    settings = load_settings(args.config) if args.config else Settings()
    users = SqliteUsers((settings.console or ConsoleSettings()).users).open()
    try:
        if args.user_command == "add":
            password = _password(args.password_stdin, stdin or sys.stdin)
            if password is None:
                return 2
            try:
                user = users.add(args.name, Role(args.role), password)
            except ValueError as exc:
                print(f"liaison user add: {exc}", file=sys.stderr)
                return 2
            out(f"user {user.name} added with role {user.role}")
            return 0
        if args.user_command == "disable":
            if not users.disable(args.name):
                print(f"liaison user disable: no user {args.name!r}", file=sys.stderr)
                return 1
            out(f"user {args.name} disabled")
            return 0
        out(f"{'name':<24} {'role':<9} state")
        for user in users.users():
            state = "disabled" if user.disabled else ("locked" if user.locked_until else "active")
            out(f"{user.name:<24} {user.role:<9} {state}")
        return 0
    finally:
        users.close()


def _password(from_stdin: bool, stdin) -> str | None:
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        print("liaison user add: the two passwords differ", file=sys.stderr)
        return None
    return first
