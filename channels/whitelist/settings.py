"""The ``[whitelist]`` configuration table, validated with the key named in every error.

    [whitelist]
    source = "https://espacedeconfiance.mssante.fr/listeblanchemssante.xml"   # URL or path
    checksum = "https://raw.githubusercontent.com/ansforge/MSS-liste-blanche/main/checksum"  # default: beside source
    store_dir = "/var/lib/liaison/whitelist"     # default: $LIAISON_WHITELIST_DIR or this
    refresh_interval = 86400                     # seconds
    always_allowed = []                          # domains allowed even when absent from the list held
    patient_domain = "patient.mssante.fr"        # the patients' domain, trusted by rule; "" or false: not
    ca_file = "/etc/liaison/igc-sante.pem"       # optional PEM bundle for the IGC-Santé TLS chain

``patient_domain``: Mon espace santé (addresses ``<INS>@patient.mssante.fr``)
belongs to the Espace de confiance by rule although the published list does
not name it, so it is allowed by default; a site turns the rule off with
``patient_domain = ""`` (or ``false``). ``always_allowed`` is empty by default.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from channels.whitelist.fetch import OFFICIAL_URL
from channels.whitelist.refresher import WhitelistRefresher
from channels.whitelist.store import WhitelistStore
from router.config_values import no_unknown, read_seconds
from router.ports import SingleRunner
from router.errors import ConfigError
from router.recipients_pfi import PATIENT_DOMAIN
from router.whitelist import normalize_domain

DEFAULT_STORE_DIR = "/var/lib/liaison/whitelist"
_KNOWN = {"source", "checksum", "store_dir", "refresh_interval", "always_allowed", "patient_domain", "ca_file",
          "fetch_timeout"}


def default_store_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$LIAISON_WHITELIST_DIR`` when set, else ``/var/lib/liaison/whitelist``."""
    env = os.environ if env is None else env
    return Path(env.get("LIAISON_WHITELIST_DIR") or DEFAULT_STORE_DIR)


@dataclass(frozen=True)
class WhitelistSettings:
    source: str = OFFICIAL_URL
    checksum: str | None = None
    store_dir: Path = field(default_factory=lambda: Path(DEFAULT_STORE_DIR))
    refresh_interval: float = 86400.0
    always_allowed: tuple[str, ...] = ()
    ca_file: str | None = None
    fetch_timeout: float = 30.0
    patient_domain: str | None = PATIENT_DOMAIN

    def open_store(self) -> WhitelistStore:
        """A store on ``store_dir`` with the stored list loaded (when there is one)."""
        store = WhitelistStore(self.store_dir, always_allowed=self.always_allowed, ca_file=self.ca_file,
                               fetch_timeout=self.fetch_timeout, patient_domain=self.patient_domain)
        store.load()
        return store

    def refresher(self, store: WhitelistStore, runner: SingleRunner | None = None) -> WhitelistRefresher:
        """The refresher of ``store``; with a ``runner``, one process at a time refreshes this machine's store."""
        return WhitelistRefresher(store, self.source, self.refresh_interval, checksum_source=self.checksum,
                                  attempt_timeout=max(60.0, 4 * self.fetch_timeout), runner=runner,
                                  lease=f"whitelist-refresh:{socket.gethostname()}:{Path(self.store_dir).resolve()}")


def _source(table: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = table.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"whitelist.{key}", f"expected a URL or a path, got {value!r}")
    scheme = urlsplit(value).scheme
    if scheme and len(scheme) > 1 and scheme not in ("http", "https"):
        raise ConfigError(f"whitelist.{key}", f"expected an http(s) URL or a path, got {value!r}")
    return value


def _patient_domain(table: Mapping[str, Any]) -> str | None:
    value = table.get("patient_domain", PATIENT_DOMAIN)
    if value is False or value == "":
        return None
    if not isinstance(value, str) or normalize_domain(value) is None:
        raise ConfigError("whitelist.patient_domain", f"expected a domain name, or \"\" / false to turn the rule "
                                                      f"off, got {value!r}")
    return value


def from_config(table: Mapping[str, Any], env: Mapping[str, str] | None = None) -> WhitelistSettings:
    """Settings from the ``[whitelist]`` table (a plain mapping; missing keys take their defaults)."""
    if not isinstance(table, Mapping):
        raise ConfigError("whitelist", "expected a table")
    no_unknown(table, "whitelist", _KNOWN)
    store_dir = table.get("store_dir")
    if store_dir is not None and (not isinstance(store_dir, str) or not store_dir):
        raise ConfigError("whitelist.store_dir", f"expected a directory path, got {store_dir!r}")
    always = table.get("always_allowed", [])
    if not isinstance(always, list | tuple) or not all(isinstance(d, str) for d in always):
        raise ConfigError("whitelist.always_allowed", f"expected a list of domains, got {always!r}")
    for domain in always:
        if normalize_domain(domain) is None:
            raise ConfigError("whitelist.always_allowed", f"not a domain name: {domain!r}")
    ca_file = table.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not ca_file):
        raise ConfigError("whitelist.ca_file", f"expected a PEM file path, got {ca_file!r}")
    return WhitelistSettings(
        source=_source(table, "source", OFFICIAL_URL) or OFFICIAL_URL,
        checksum=_source(table, "checksum", None),
        store_dir=Path(store_dir) if store_dir else default_store_dir(env),
        refresh_interval=read_seconds(table, "whitelist.refresh_interval", 86400.0),
        always_allowed=tuple(always),
        ca_file=ca_file,
        fetch_timeout=read_seconds(table, "whitelist.fetch_timeout", 30.0),
        patient_domain=_patient_domain(table))
