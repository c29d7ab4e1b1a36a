"""The whole configuration: ``liaison.toml`` plus the environment, each section parsed by its owner.

The core parses ``[engine]`` and ``[render]`` (:mod:`router.config`); mappings
parses ``[site]`` and ``[mappings]``; each adapter parses its own section
(``[[listeners]]`` and ``[acks]`` in :mod:`channels.mllp.settings`, ``[mss]`` in
:mod:`channels.smtp.settings`, ``[[correspondents]]`` and ``[directory]`` in
:mod:`channels.directory.settings`, ``[whitelist]`` in
:mod:`channels.whitelist.settings`, ``[dmp]`` in :mod:`channels.xds.dmp`, ``[console]`` in
:mod:`channels.console.settings`; ``[retention]`` in :mod:`router.retention`, ``[imap]`` and ``[notices]`` in :mod:`channels.notices.settings`). This
module puts them together into one frozen :class:`Settings` and refuses an
unknown section. Every error names the key it is about (``mss.relay: expected a
smtp:// or smtps:// URL``). Secrets never live in the TOML: the journal key and
the client-certificate key password come from files or environment variables.
Tests pass plain dicts to :func:`settings_from_dict`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from channels.console.settings import ConsoleSettings, console_settings
from channels.directory.settings import correspondents_settings, directory_settings
from channels.mllp.settings import AckSettings, ListenerSettings, ack_settings, listeners_settings
from channels.notices.settings import (ImapSettings, MaildirSettings, imap_settings, maildir_settings,
                                       one_notice_source)
from channels.smtp.settings import MssSettings, mss_settings
from channels.whitelist.settings import WhitelistSettings
from channels.whitelist.settings import from_config as whitelist_settings
from channels.xds.dmp import DmpSettings, dmp_settings
from mappings.settings import site_and_tables
from mappings.site import Site
from mappings.tables import Tables
from router.config import EngineSettings, RenderSettings, engine_settings, render_settings
from router.config_values import no_unknown, read_table, read_text
from router.errors import ConfigError
from router.retention import RetentionSettings, retention_settings

SECTIONS = {"engine", "listeners", "mss", "acks", "site", "mappings", "render", "correspondents", "whitelist",
            "directory", "dmp", "console", "retention", "imap", "notices"}


@dataclass(frozen=True)
class Settings(EngineSettings):
    """``[engine]`` (the fields of :class:`EngineSettings`) and every other section, by name."""

    listeners: tuple[ListenerSettings, ...] = (ListenerSettings(),)
    mss: MssSettings = field(default_factory=MssSettings)
    acks: AckSettings = field(default_factory=AckSettings)
    site: Site = field(default_factory=Site)                 # [site]: who the establishment is (fictitious default)
    render: RenderSettings = field(default_factory=RenderSettings)
    correspondents: tuple[Mapping[str, Any], ...] = ()      # [[correspondents]]: the static directory
    whitelist: WhitelistSettings | None = None               # [whitelist]: None = domains not checked
    directory: Mapping[str, Any] = field(default_factory=dict)   # [directory]: national directory (index, FHIR)
    dmp: DmpSettings | None = None                           # [dmp]: None = no DMP deposit channel
    tables: Tables = field(default_factory=Tables.load)      # [mappings]: code tables in force, JDV-checked
    console: ConsoleSettings | None = None                   # [console]: None = the web console not configured
    retention: RetentionSettings = field(default_factory=RetentionSettings)   # [retention]: default keeps all
    imap: ImapSettings | None = None                         # [imap]: None = notices (DSN, MDN) are not read
    notices_maildir: MaildirSettings | None = None           # [notices] maildir: notices read from a local Maildir


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read a TOML file and build validated settings."""
    path = Path(path)
    text = read_text(path, str(path), "a liaison.toml configuration file (TOML, UTF-8)")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    return settings_from_dict(data, env if env is not None else os.environ, base=path.parent)


def settings_from_dict(data: Mapping[str, Any], env: Mapping[str, str] | None = None,
                       *, base: Path | None = None) -> Settings:
    """Settings from the parsed TOML; relative paths are read from ``base`` (the file's folder)."""
    env = env if env is not None else {}
    engine = engine_settings(read_table(data, "engine"), env, base)
    no_unknown(data, "", SECTIONS)
    imap = imap_settings(read_table(data, "imap"), env, base)
    notices_maildir = maildir_settings(read_table(data, "notices"), base)
    one_notice_source(imap, notices_maildir)
    site, tables = site_and_tables(read_table(data, "site"), read_table(data, "mappings"), env, base)
    return Settings(
        **{f.name: getattr(engine, f.name) for f in fields(EngineSettings)},
        listeners=listeners_settings(data.get("listeners", [{}])),
        mss=mss_settings(read_table(data, "mss")),
        acks=ack_settings(read_table(data, "acks")),
        site=site,
        render=render_settings(read_table(data, "render")),
        correspondents=correspondents_settings(data.get("correspondents", [])),
        whitelist=whitelist_settings(read_table(data, "whitelist"), env) if "whitelist" in data else None,
        directory=directory_settings(read_table(data, "directory")),
        dmp=dmp_settings(read_table(data, "dmp"), env) if "dmp" in data else None,
        tables=tables,
        console=console_settings(read_table(data, "console"), base) if "console" in data else None,
        retention=retention_settings(read_table(data, "retention")),
        imap=imap, notices_maildir=notices_maildir,
    )
