"""``[console]``: where the web console listens, its certificate, and where its users are kept.

    [console]
    host = "127.0.0.1"          # plain HTTP only on a loopback address
    port = 8480
    tls_cert = "/etc/liaison/console.crt"   # both or neither; with them the console speaks HTTPS only
    tls_key = "/etc/liaison/console.key"
    users = "/var/lib/liaison/console-users.sqlite"
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.config_values import no_unknown, read_int, read_str
from router.errors import ConfigError

KEYS = {"host", "port", "tls_cert", "tls_key", "users"}


@dataclass(frozen=True)
class ConsoleSettings:
    host: str = "127.0.0.1"
    port: int = 8480
    tls_cert: str = ""
    tls_key: str = ""
    users: str = "/var/lib/liaison/console-users.sqlite"

    @property
    def https(self) -> bool:
        return bool(self.tls_cert)


def console_settings(table: Mapping[str, Any], base: Path | None = None) -> ConsoleSettings:
    """The ``[console]`` table, checked: TLS both-or-neither, plain HTTP on loopback only."""
    no_unknown(table, "console", KEYS)
    default = ConsoleSettings()
    host = read_str(table, "console.host", default.host)
    port = read_int(table, "console.port", default.port, minimum=1, maximum=65535)
    cert, key = (_path(read_str(table, f"console.{name}", ""), base) for name in ("tls_cert", "tls_key"))
    users = _path(read_str(table, "console.users", default.users), base)
    if bool(cert) != bool(key):
        raise ConfigError("console.tls_key" if cert else "console.tls_cert",
                          "give both tls_cert and tls_key, or neither")
    if not cert and not _loopback(host):
        raise ConfigError("console.host", f"plain HTTP is served on a loopback address only, got {host!r}: "
                                          "give tls_cert and tls_key, or listen on 127.0.0.1")
    return ConsoleSettings(host=host, port=port, tls_cert=cert, tls_key=key, users=users)


def _path(value: str, base: Path | None) -> str:
    if not value or base is None or Path(value).is_absolute():
        return value
    return str(base / value)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
