"""Where the ANS reference files (CDA schema, CI-SIS schematrons) are on this machine.

They are not ours to ship: a deployment names their directory in the
configuration or an environment variable; development machines and tests find
them in the ANS fixtures (``LIAISON_FIXTURES``, or ``../shared/fixtures`` next to
the repository or the working directory).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


def locate(marker: str, fixture_parts: tuple[str, ...], *, configured: str | os.PathLike | None,
           env_var: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The first directory holding ``marker`` (a file path relative to it), or None.

    Looks at, in order: ``configured``, the ``env_var`` variable, ``LIAISON_FIXTURES``
    + ``fixture_parts``, and ``../shared/fixtures`` + ``fixture_parts`` relative to the
    repository root and to the current directory. ``env`` defaults to ``os.environ``.
    """
    env = os.environ if env is None else env
    candidates: list[tuple[str, Path]] = []
    if configured:
        candidates.append(("configured", Path(configured)))
    if env.get(env_var):
        candidates.append((env_var, Path(env[env_var])))
    if env.get("LIAISON_FIXTURES"):
        candidates.append(("LIAISON_FIXTURES", Path(env["LIAISON_FIXTURES"]).joinpath(*fixture_parts)))
    shared = ("shared", "fixtures", *fixture_parts)
    candidates.append(("repository", Path(__file__).resolve().parents[2].joinpath(*shared)))
    candidates.append(("working directory", Path.cwd().parent.joinpath(*shared)))
    for origin, directory in candidates:
        if (directory / marker).is_file():
            return directory.resolve()
        if origin in ("configured", env_var):
            log.warning("reference_files_missing", origin=origin, directory=str(directory), looking_for=marker)
    return None
