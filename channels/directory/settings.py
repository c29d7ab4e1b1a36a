"""The directory sections of ``liaison.toml``: ``[[correspondents]]`` and ``[directory]``.

    [[correspondents]]                   # the site's own correspondents (the static directory)
    rpps = "12345678903"                 # or idnat = "..."
    address = "chloe.durand@medecin-test.mssante.fr"

    [directory]
    index = "/var/lib/liaison/directory.sqlite"   # the extraction index (liaison directory import)
    [directory.fhir]                              # the Annuaire Santé FHIR API (channels.directory.fhir)

Both are checked now and kept as tables: :func:`channels.directory.compose.build_directory`
builds the directory from them when the engine starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.directory.static import StaticDirectory
from router.config_values import no_unknown
from router.errors import ConfigError


def correspondents_settings(entries: Any) -> tuple[Mapping[str, Any], ...]:
    """``[[correspondents]]``: checked now (the static directory builds from them), kept as tables."""
    if not isinstance(entries, list) or not all(isinstance(entry, Mapping) for entry in entries):
        raise ConfigError("correspondents", "expected [[correspondents]] tables")
    StaticDirectory.from_config(entries)
    return tuple(dict(entry) for entry in entries)


def directory_settings(table: Mapping[str, Any]) -> Mapping[str, Any]:
    """``[directory]``: ``index`` (the extraction index file) and ``[directory.fhir]`` (checked at start)."""
    no_unknown(table, "directory", {"index", "fhir"})
    if "index" in table and not isinstance(table["index"], str):
        raise ConfigError("directory.index", "expected the path of the directory index (liaison directory import)")
    if "fhir" in table and not isinstance(table["fhir"], Mapping):
        raise ConfigError("directory.fhir", "expected a [directory.fhir] table")
    return dict(table)
