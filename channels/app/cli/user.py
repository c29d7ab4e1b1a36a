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

from channels.app.cli.options import command_group
from channels.app.settings import Settings, load_settings
from channels.console.settings import ConsoleSettings

ROLES = ("viewer", "operator", "admin")


def add_parser(subparsers) -> None:
    """Add ``user`` (with ``add``, ``list`` and ``disable``) to the ``liaison`` sub-commands."""
    command = command_group(subparsers, "user", help="the web console's users: add, list, disable",
                            dest="user_command",
                            config_help="the liaison.toml whose [console] users names the users file")
    add = command("add", help="create a user with a role")
    add.add_argument("name", help="the login name: letters, digits, '.', '_' or '-'")
    add.add_argument("--role", required=True, choices=ROLES,
                     help="viewer: metadata only; operator: raw messages and release; admin: as operator, and users")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    command("list", help="every user, with role and state")
    disable = command("disable", help="stop a user from logging in (open sessions end too)")
    disable.add_argument("name", help="the user to disable")


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
