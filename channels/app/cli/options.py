"""Options several verb groups share: ``-c FILE`` taken before or after the sub-command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def config_option(parser: argparse.ArgumentParser, *, default, help: str) -> None:
    """``-c FILE``; on a sub-command its default is SUPPRESS, so that it does not reset one given before."""
    parser.add_argument("-c", "--config", type=Path, metavar="FILE", default=default, help=help)


def command_group(subparsers, name: str, *, help: str, dest: str,
                  config_help: str) -> Callable[..., argparse.ArgumentParser]:
    """Add the verb group ``name`` (``liaison NAME [-c FILE] COMMAND [-c FILE]``); returns its sub-command maker."""
    group = subparsers.add_parser(name, help=help)
    config_option(group, default=None, help=config_help)
    sub = group.add_subparsers(dest=dest, required=True, metavar="COMMAND")

    def command(command_name: str, *, help: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(command_name, help=help)
        config_option(parser, default=argparse.SUPPRESS, help=config_help)
        return parser

    return command
