"""Readers of ``liaison.toml`` values, shared by every section's parser.

Each reader takes the table and the full dotted key (``mss.relay``,
``listeners[0].port``), reads the key's last part from the table, and raises
:class:`ConfigError` naming the full key when the value has the wrong type or
range. The core parses its sections with them; each adapter parses its own
section with them too. :func:`read_text` reads a file a setting names the same
way: a missing, unreadable or undecodable file is a ConfigError naming the
setting, the file and what was expected, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from router.errors import ConfigError


def read_table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``data[key]`` as a table (empty when absent)."""
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(key, "expected a table")
    return value


def no_unknown(table: Mapping[str, Any], where: str, known: set[str]) -> None:
    """Refuse a key outside ``known``, naming it under ``where`` (top level when empty)."""
    for key in table:
        if key not in known:
            name = f"{where}.{key}" if where else key
            raise ConfigError(name, f"unknown key (known: {', '.join(sorted(known))})")


def read_str(table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {type(value).__name__}")
    return value


def read_bool(table: Mapping[str, Any], key: str, default: bool) -> bool:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, got {value!r}")
    return value


def read_int(table: Mapping[str, Any], key: str, default: int, *, minimum: int | None = None,
             maximum: int | None = None) -> int:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(key, f"{value} is out of range [{minimum}, {maximum}]")
    return value


def read_seconds(table: Mapping[str, Any], key: str, default: float) -> float:
    """A positive number of seconds (an integer or a float)."""
    value = table.get(key.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(key, f"expected a positive number of seconds, got {value!r}")
    return float(value)


def check_scheme(key: str, url: str, schemes: tuple[str, ...]) -> None:
    """Refuse a URL whose scheme is not one of ``schemes``."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in schemes:
        raise ConfigError(key, f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}, got {url!r}")


def read_text(path: Path, key: str, expected: str, *, encoding: str = "utf-8") -> str:
    """The text of the file ``key`` names; ConfigError naming the setting, the file and ``expected``.

    When ``key`` is the file itself (the configuration file), the path is not repeated.
    """
    try:
        return path.read_text(encoding=encoding)
    except (OSError, UnicodeDecodeError) as exc:
        subject = "" if key == str(path) else f"{path} "
        raise ConfigError(key, f"{subject}{file_problem(exc)}; expected {expected}") from exc


def file_problem(exc: OSError | UnicodeDecodeError) -> str:
    """What is wrong with a file, in a few words: "does not exist", "is a directory", "is not ASCII text (…)"."""
    if isinstance(exc, UnicodeDecodeError):
        encoding = {"ascii": "ASCII", "utf-8": "UTF-8"}.get(exc.encoding, exc.encoding)
        return f"is not {encoding} text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    return next((problem for kind, problem in _FILE_PROBLEMS if isinstance(exc, kind)),
                f"cannot be read: {exc.strerror or exc}")


_FILE_PROBLEMS = (
    (FileNotFoundError, "does not exist"),
    (IsADirectoryError, "is a directory"),
    (NotADirectoryError, "cannot be reached: a part of its path is not a directory"),
    (PermissionError, "cannot be read: permission denied"),
)


def redact_url(url: str) -> str:
    """The URL with its password, if it has one, replaced by ``***``: for messages, logs and listings."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{parts.netloc.rsplit('@', 1)[1]}"))
