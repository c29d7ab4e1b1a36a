"""The MLLP sections of ``liaison.toml``: ``[[listeners]]`` (the doors) and ``[acks]`` (ZAMs back to the HIS).

    [[listeners]]
    name = "his"                 # the channel name journaled with each message
    host = "127.0.0.1"
    port = 2575
    tls_cert = ""                # set with tls_key: mllps (TLS)
    tls_client_ca = ""           # set: clients must present a certificate from this CA (mutual TLS)

    [acks]
    host = "his.example"         # host and port set: ZAM business acknowledgements are sent there
    port = 2576

Every error names its key (``listeners[0].port``, ``acks.port``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.config_values import no_unknown, read_bool, read_int, read_seconds, read_str
from router.errors import ConfigError
from router.ingest import MAX_FRAME_BYTES


@dataclass(frozen=True)
class ListenerSettings:
    name: str = "his"
    host: str = "127.0.0.1"
    port: int = 2575
    default_charset: str = "utf-8"
    max_frame_bytes: int = MAX_FRAME_BYTES
    read_timeout: float = 300.0
    max_connections: int = 64
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""          # set: clients must present a certificate from this CA
    reuse_port: bool = False         # several `liaison run` on this port, the kernel spreads the connections


@dataclass(frozen=True)
class AckSettings:
    """Where ZAM business acknowledgements go back to the HIS (MLLP)."""

    host: str = ""
    port: int = 0
    timeout: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.host and self.port)


def listeners_settings(items: Any) -> tuple[ListenerSettings, ...]:
    """The ``[[listeners]]`` tables, each checked (``listeners[i].key`` in errors)."""
    return tuple(_listener(item, f"listeners[{i}]") for i, item in enumerate(items))


def ack_settings(table: Mapping[str, Any]) -> AckSettings:
    """The ``[acks]`` table."""
    no_unknown(table, "acks", set(AckSettings.__dataclass_fields__))
    return AckSettings(host=read_str(table, "acks.host", ""),
                       port=read_int(table, "acks.port", 0, minimum=0, maximum=65535),
                       timeout=read_seconds(table, "acks.timeout", 10.0))


def _listener(item: Any, where: str) -> ListenerSettings:
    if not isinstance(item, Mapping):
        raise ConfigError(where, "expected a table ([[listeners]])")
    no_unknown(item, where, set(ListenerSettings.__dataclass_fields__))
    default = ListenerSettings()
    settings = ListenerSettings(
        name=read_str(item, f"{where}.name", default.name),
        host=read_str(item, f"{where}.host", default.host),
        port=read_int(item, f"{where}.port", default.port, minimum=0, maximum=65535),
        default_charset=read_str(item, f"{where}.default_charset", default.default_charset),
        max_frame_bytes=read_int(item, f"{where}.max_frame_bytes", default.max_frame_bytes, minimum=1024),
        read_timeout=read_seconds(item, f"{where}.read_timeout", default.read_timeout),
        max_connections=read_int(item, f"{where}.max_connections", default.max_connections, minimum=1),
        tls_cert=read_str(item, f"{where}.tls_cert", ""),
        tls_key=read_str(item, f"{where}.tls_key", ""),
        tls_client_ca=read_str(item, f"{where}.tls_client_ca", ""),
        reuse_port=read_bool(item, f"{where}.reuse_port", False),
    )
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError(f"{where}.tls_key", "tls_cert and tls_key go together")
    if settings.tls_client_ca and not settings.tls_cert:
        raise ConfigError(f"{where}.tls_client_ca", "client certificates need tls_cert and tls_key")
    try:
        "".encode(settings.default_charset)
    except LookupError as exc:
        raise ConfigError(f"{where}.default_charset", f"unknown charset {settings.default_charset!r}") from exc
    return settings
