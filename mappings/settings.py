"""The sections of ``liaison.toml`` that mappings owns: ``[site]`` and ``[mappings]``.

    [site]                       # who the establishment is (mappings.site.Site; fictitious by default)
    finess = "999000029"
    [mappings]
    jdv_dir = "jeuxDeValeurs"    # the CI-SIS JDV files that code overrides are checked against
    table_files = { discharge_modes = "modes.json" }
    [mappings.tables.discharge_modes.by_pv1_36]
    HAD = { code = "127" }

Paths are relative to the configuration file's folder. Every error names its key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mappings.site import Site
from mappings.tables import Tables
from mappings.value_sets import locate_jdv_dir
from router.config_values import no_unknown, read_str, read_table
from router.errors import ConfigError


def site_and_tables(site: Mapping[str, Any], mappings: Mapping[str, Any], env: Mapping[str, str],
                    base: Path | None) -> tuple[Site, Tables]:
    """``[site]`` and ``[mappings]``: the site identity and the code tables, checked against the JDV files.

    The JDV directory is ``mappings.jdv_dir`` (must hold the files when set), else
    ``LIAISON_JDV_DIR`` or the ANS fixtures; without it the codes are not checked.
    """
    no_unknown(mappings, "mappings", {"jdv_dir", "tables", "table_files"})
    configured = read_str(mappings, "mappings.jdv_dir", "")
    if configured:
        configured = str(Path(configured) if base is None else base / configured)
        jdv_dir = locate_jdv_dir(configured, env={})
        if jdv_dir is None or jdv_dir != Path(configured).resolve():
            raise ConfigError("mappings.jdv_dir", f"no CI-SIS JDV files (JDV_J02_...xml) in {configured}")
    else:
        jdv_dir = locate_jdv_dir(env=env)
    files = read_table(mappings, "table_files")
    for name, path in files.items():
        if not isinstance(path, str):
            raise ConfigError(f"mappings.table_files.{name}", f"expected a file path, got {type(path).__name__}")
    tables = Tables.load(read_table(mappings, "tables"), files, jdv_dir=jdv_dir, base=base, env=env).require_valid()
    return Site.from_config(site, jdv_dir=jdv_dir, env=env), tables
