"""``liaison user add|list|disable|enable|reset|token|tokens|revoke``: the web console's local users.

    liaison user [-c liaison.toml] add NAME --role viewer|operator|admin [--password-stdin]
    liaison user [-c liaison.toml] list
    liaison user [-c liaison.toml] disable|enable NAME
    liaison user [-c liaison.toml] reset NAME [--password-stdin]     new password, lockout cleared
    liaison user [-c liaison.toml] token NAME                        a new API token, printed once
    liaison user [-c liaison.toml] tokens NAME                       NAME's tokens (ids and dates, never the token)
    liaison user [-c liaison.toml] revoke NAME [--id ID]             revoke one token, or all of NAME's

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
    """Add ``user`` and its commands to the ``liaison`` sub-commands."""
    command = command_group(subparsers, "user", help="the web console's users: add, list, disable, reset, API tokens",
                            dest="user_command",
                            config_help="the liaison.toml whose [console] users names the users file")
    add = command("add", help="create a user with a role")
    add.add_argument("name", help="the login name: letters, digits, '.', '_' or '-'")
    add.add_argument("--role", required=True, choices=ROLES,
                     help="viewer: metadata only; operator: raw messages and release; admin: as operator, and users")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    command("list", help="every user, with role and state")
    disable = command("disable", help="stop a user from logging in (open sessions and API tokens stop too)")
    disable.add_argument("name", help="the user to disable")
    enable = command("enable", help="let a disabled user log in again")
    enable.add_argument("name", help="the user to enable")
    reset = command("reset", help="set a new password and clear the lockout")
    reset.add_argument("name", help="the user whose password is reset")
    reset.add_argument("--password-stdin", action="store_true", help="read the new password from standard input")
    token = command("token", help="make an API token for the REST API (Authorization: Bearer), printed once")
    token.add_argument("name", help="the user the token acts as (with that user's role)")
    tokens = command("tokens", help="a user's API tokens: id, created, revoked, last used (never the token)")
    tokens.add_argument("name", help="the user whose tokens are listed")
    revoke = command("revoke", help="revoke a user's API tokens (all of them, or one with --id)")
    revoke.add_argument("name", help="the user whose tokens are revoked")
    revoke.add_argument("--id", dest="token_id", metavar="ID", help="only this token (its id from 'tokens')")


async def run(args: argparse.Namespace, *, stdin=None, out=print) -> int:
    from channels.console.users import Role, SqliteUsers
    settings = load_settings(args.config) if args.config else Settings()
    users = SqliteUsers((settings.console or ConsoleSettings()).users, actor=f"cli:{getpass.getuser()}",
                        journal_key=settings.journal_key).open()
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
        if args.user_command in ("disable", "enable"):
            if not (users.disable if args.user_command == "disable" else users.enable)(args.name):
                return _no_user(args)
            out(f"user {args.name} {args.user_command}d")
            return 0
        if args.user_command == "reset":
            password = _password(args.password_stdin, stdin or sys.stdin, verb="reset")
            if password is None:
                return 2
            try:
                if not users.reset(args.name, password):
                    return _no_user(args)
            except ValueError as exc:
                print(f"liaison user reset: {exc}", file=sys.stderr)
                return 2
            out(f"user {args.name}: new password set, lockout cleared")
            return 0
        if args.user_command == "token":
            try:
                token_id, token = users.new_token(args.name)
            except KeyError:
                return _no_user(args)
            out(token)
            print(f"token {token_id} for {args.name}: shown once, keep it now; revoke it with "
                  f"`liaison user revoke {args.name} --id {token_id}`", file=sys.stderr)
            return 0
        if args.user_command == "tokens":
            if users.user(args.name) is None:
                return _no_user(args)
            out(f"{'id':<9} {'created (UTC)':<20} {'revoked':<20} last used")
            for token_id, created, revoked, used in users.tokens(args.name):
                out(f"{token_id:<9} {created[:19]:<20} {(revoked or '-')[:19]:<20} {(used or '-')[:19]}")
            return 0
        if args.user_command == "revoke":
            if users.user(args.name) is None:
                return _no_user(args)
            count = users.revoke(args.name, args.token_id)
            if args.token_id and not count:
                print(f"liaison user revoke: {args.name} has no live token {args.token_id!r}", file=sys.stderr)
                return 1
            out(f"{count} token(s) of {args.name} revoked")
            return 0
        out(f"{'name':<24} {'role':<9} state")
        for user in users.users():
            state = "disabled" if user.disabled else ("locked" if user.locked_until else "active")
            out(f"{user.name:<24} {user.role:<9} {state}")
        return 0
    finally:
        users.close()


def _no_user(args: argparse.Namespace) -> int:
    print(f"liaison user {args.user_command}: no user {args.name!r} (see `liaison user list`)", file=sys.stderr)
    return 1


def _password(from_stdin: bool, stdin, verb: str = "add") -> str | None:
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        print(f"liaison user {verb}: the two passwords differ", file=sys.stderr)
        return None
    return first
