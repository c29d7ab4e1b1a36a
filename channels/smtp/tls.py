"""The client TLS context for MSSanté relays: TLS ≥ 1.2, the relay verified, our certificate presented.

With ``ca_file`` only that bundle is trusted (the IGC-Santé chain in production,
whose roots are not in public trust stores); without it, the system's store.
Problems loading files are configuration errors that name the ``[mss]`` key,
the file and what was expected.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from channels.tls_files import load_cert_chain, readable
from router.errors import ConfigError

__all__ = ["client_context"]


def client_context(*, client_cert: str | Path | None = None, client_key: str | Path | None = None,
                   ca_file: str | Path | None = None, min_tls: str = "TLSv1_2") -> ssl.SSLContext:
    """A client context that verifies the relay and presents our certificate; TLS ≥ ``min_tls``."""
    try:
        version = ssl.TLSVersion[min_tls]
    except KeyError:
        raise ConfigError("smtp.min_tls", f"expected TLSv1_2 or TLSv1_3, got {min_tls!r}") from None
    if version < ssl.TLSVersion.TLSv1_2:
        raise ConfigError("smtp.min_tls", "MSSanté requires TLS 1.2 or later")
    if ca_file:
        readable("mss.ca_file", ca_file, "a PEM bundle of the CA certificates that sign the relay's")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None)
    except ssl.SSLError as exc:
        raise ConfigError("mss.ca_file", f"{ca_file} cannot be loaded ({exc.reason or exc}); expected a PEM "
                                         "bundle of CA certificates") from exc
    context.minimum_version = version
    if client_cert:
        load_cert_chain(context, client_cert, client_key, cert_setting="mss.client_cert",
                        key_setting="mss.client_key")
    elif client_key:
        raise ConfigError("mss.client_cert", "client_key given without client_cert")
    return context
