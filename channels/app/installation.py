"""The console's view of this installation (``channels.console.installation``), read from the settings.

Secrets are never shown: the journal key and every value under a name holding ``key``,
``password``, ``secret`` or ``token`` appear as ``(set)``, URLs lose their password
(``redact_url``). The code tables (``[mappings]``) are left out: they are reference data,
thousands of rows. Reference files and certificates are read when a page asks, so the page
shows what is on disk now; a channel's status is a TCP connection attempt (0.5 s), nothing is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from channels.app.settings import Settings
from channels.console.installation import Certificate, ChannelStatus, Refresh
from router.config_values import redact_url

SECRET_WORDS = ("key", "password", "secret", "token")
LEFT_OUT = {"tables"}
PROBE_TIMEOUT = 0.5


class SettingsInstallation:
    """:class:`channels.console.installation.Installation` over the loaded :class:`Settings`."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.timezone = settings.timezone

    def configuration(self) -> dict[str, dict[str, Any]]:
        engine, sections = {}, {}
        for item in dataclasses.fields(self.settings):
            if item.name in LEFT_OUT:
                continue
            value = getattr(self.settings, item.name)
            if dataclasses.is_dataclass(value) or isinstance(value, Mapping):
                sections[item.name] = flatten(value)
            elif isinstance(value, tuple) and value and (dataclasses.is_dataclass(value[0])
                                                         or isinstance(value[0], Mapping)):
                for index, each in enumerate(value):
                    sections[f"{item.name}[{index}]"] = flatten(each)
            elif value is None:
                sections[item.name] = {"": "(not configured)"}
            else:
                engine[item.name] = shown(item.name, value)
        return {"engine": engine, **sections}

    def refreshes(self) -> list[Refresh]:
        found = []
        if self.settings.whitelist is not None:
            found.append(whitelist_refresh(Path(self.settings.whitelist.store_dir)))
        index = self.settings.directory.get("index")
        if index:
            found += directory_refreshes(Path(index))
        return found

    def certificates(self) -> list[Certificate]:
        s = self.settings
        named = [(f"listener {listener.name} (TLS)", listener.tls_cert) for listener in s.listeners]
        named.append(("MSSanté client certificate", s.mss.client_cert))
        if s.dmp is not None:
            named += [("DMP client certificate", s.dmp.client_cert),
                      ("DMP VIHF signing certificate", str(s.dmp.vihf.signing_cert))]
        if s.console is not None:
            named.append(("console (HTTPS)", s.console.tls_cert))
        return [certificate(name, path) for name, path in named if path]

    async def channels(self) -> list[ChannelStatus]:
        s = self.settings
        wanted = [(listener.name, "MLLP listener", listener.host, listener.port) for listener in s.listeners]
        if s.acks.host:
            wanted.append(("acks", "ZAM to the HIS", s.acks.host, s.acks.port))
        if s.mss.relay:
            parts = urlsplit(s.mss.relay)
            wanted.append(("mss", "MSSanté relay", parts.hostname or "", parts.port or 25))
        found = await asyncio.gather(*(probe(host, port) for _, _, host, port in wanted))
        statuses = [ChannelStatus(name, kind, f"{host}:{port}", status)
                    for (name, kind, host, port), status in zip(wanted, found)]
        if s.dmp is not None:
            statuses.append(ChannelStatus("dmp", "DMP", redact_url(s.dmp.url), "configured"))
        return statuses


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A section as ``{dotted.name: shown value}``."""
    items = (value.items() if isinstance(value, Mapping)
             else ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value)))
    out: dict[str, Any] = {}
    for name, each in items:
        dotted = f"{prefix}{name}"
        if dataclasses.is_dataclass(each) or isinstance(each, Mapping):
            out.update(flatten(each, dotted + "."))
        else:
            out[dotted] = shown(dotted, each)
    return out


def shown(name: str, value: Any) -> Any:
    """A value as the configuration page shows it: secrets masked, URLs without password.

    Under a secret-sounding name, bytes are masked, and text too unless it names where the
    secret is (a file path, an environment variable): that is what an engineer needs to see.
    """
    leaf = name.rsplit(".", 1)[-1].lower()
    if any(word in leaf for word in SECRET_WORDS):
        where = isinstance(value, (str, Path)) and (leaf.endswith(("_env", "_file")) or "/" in str(value))
        if not where and not (isinstance(value, str) and value == ""):
            return "(set)" if value else "(not set)"
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    if isinstance(value, tuple):
        return [shown(name, each) for each in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def whitelist_refresh(store: Path) -> Refresh:
    try:
        meta = json.loads((store / "current.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Refresh("MSSanté whitelist", None, "", str(store), "no list fetched yet")
    except (OSError, ValueError) as exc:
        return Refresh("MSSanté whitelist", None, "", str(store), f"current.json unreadable: {exc}")
    at = meta.get("fetched_at")
    return Refresh("MSSanté whitelist", datetime.fromisoformat(at) if at else None, meta.get("sha256", ""),
                   redact_url(str(meta.get("source", ""))),
                   f"{meta.get('domain_count', '?')} domains, {meta.get('entry_count', '?')} entries")


def directory_refreshes(index: Path) -> list[Refresh]:
    if not index.is_file():
        return [Refresh("Annuaire Santé extraction", None, "", str(index), "no index imported yet")]
    try:
        with sqlite3.connect(f"{index.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0) as conn:
            rows = conn.execute("SELECT kind, file_name, sha256, imported_at, rows_kept FROM source "
                                "ORDER BY kind").fetchall()
    except sqlite3.Error as exc:
        return [Refresh("Annuaire Santé extraction", None, "", str(index), f"index unreadable: {exc}")]
    return [Refresh(f"Annuaire Santé extraction ({kind})", datetime.fromisoformat(at), sha256, file_name,
                    f"{kept} rows") for kind, file_name, sha256, at, kept in rows]


def certificate(name: str, path: str) -> Certificate:
    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        return Certificate(name, path, None, f"unreadable: {type(exc).__name__}")
    return Certificate(name, path, cert.not_valid_after_utc)


async def probe(host: str, port: int) -> str:
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT)
    except (OSError, asyncio.TimeoutError):
        return "not answering"
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return "accepting connections"
