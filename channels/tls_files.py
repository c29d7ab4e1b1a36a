"""Loading the certificate files a setting names into an SSL context, with errors that say which and why.

``ssl`` reports a missing file as a bare ``[Errno 2] No such file or directory``
and a wrong one as a library code; the listeners, the MSSanté mailer and the
DMP client load their files here instead, so that each problem is a
:class:`ConfigError` naming the setting, the file and what was expected.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from router.config_values import file_problem
from router.errors import ConfigError


def load_cert_chain(context: ssl.SSLContext, cert: str | Path, key: str | Path | None, *, cert_setting: str,
                    key_setting: str) -> None:
    """Our certificate (PEM) and its private key into ``context``."""
    readable(cert_setting, cert, "a PEM certificate")
    if key:
        readable(key_setting, key, "the PEM private key of " + str(cert))
    try:
        context.load_cert_chain(str(cert), str(key) if key else None)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(cert_setting, f"{cert} with {key or 'its key'} cannot be loaded ({_reason(exc)}); expected "
                                        "a PEM certificate and its matching, unencrypted private key") from exc


def load_verify_locations(context: ssl.SSLContext, ca_file: str | Path, *, setting: str) -> None:
    """The CA certificates (PEM) that peers' certificates must chain to."""
    readable(setting, ca_file, "a PEM bundle of CA certificates")
    try:
        context.load_verify_locations(str(ca_file))
    except ssl.SSLError as exc:
        raise ConfigError(setting, f"{ca_file} cannot be loaded ({_reason(exc)}); expected a PEM bundle of CA "
                                   "certificates") from exc


def readable(setting: str, path: str | Path, expected: str) -> None:
    """Raise ConfigError unless ``path`` is a file this process can read."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(setting, f"{path} {file_problem(exc)}; expected {expected}") from exc


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc)
