"""The ``[imap]`` section of ``liaison.toml``: the structure's MSSanté mailbox, where notices come back.

    [imap]
    url = "imaps://imap.operateur-mss.example:993"    # implicit TLS; empty or absent: notices are not read
    user = "pfi@ch-exemple.mssante.fr"
    password_file = "/etc/liaison/mss/imap-password"  # or the environment: LIAISON_IMAP_PASSWORD
    client_cert = "/etc/liaison/mss/bal-applicative.pem"
    client_key = "/etc/liaison/mss/bal-applicative.key"
    ca_file = "/etc/liaison/mss/igc-sante-chain.pem"
    mailbox = "INBOX"                                 # where notices arrive
    done_folder = "Liaison/Traités"                   # notices applied (never deleted)
    unrecognised_folder = "Liaison/Non reconnus"      # unmatched or unreadable mails
    batch = 50                                        # mails fetched at a time
    idle = true                                       # use IDLE when the server offers it (false: always poll)
    poll_interval = 60                                # seconds between looks without IDLE
    idle_timeout = 600                                # seconds an IDLE is held before it is renewed
    reconnect_delay = 5                               # first wait after a lost connection (doubles, up to 60 s)
    timeout = 30

The password is a secret: from ``LIAISON_IMAP_PASSWORD`` or ``password_file``, never
the TOML itself. Every error names its key (``imap.url``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from router.config_values import no_unknown, read_bool, read_int, read_seconds, read_str, read_text
from router.errors import ConfigError

PASSWORD_ENV = "LIAISON_IMAP_PASSWORD"


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int = 993
    user: str = ""
    password: str = field(default="", repr=False)
    client_cert: str = ""
    client_key: str = ""
    ca_file: str = ""
    mailbox: str = "INBOX"
    done_folder: str = "Liaison/Traités"
    unrecognised_folder: str = "Liaison/Non reconnus"
    batch: int = 50
    idle: bool = True
    poll_interval: float = 60.0
    idle_timeout: float = 600.0
    reconnect_delay: float = 5.0
    timeout: float = 30.0


_KEYS = {"url", "user", "password_file", "client_cert", "client_key", "ca_file", "mailbox", "done_folder",
         "unrecognised_folder", "batch", "idle", "poll_interval", "idle_timeout", "reconnect_delay", "timeout"}


def imap_settings(table: Mapping[str, Any], env: Mapping[str, str], base: Path | None = None) -> ImapSettings | None:
    """The ``[imap]`` table, checked; None when no ``url`` is set (notices are not read)."""
    no_unknown(table, "imap", _KEYS)
    url = read_str(table, "imap.url", "")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "imaps" or not parts.hostname:
        raise ConfigError("imap.url", f"expected imaps://host:port (implicit TLS), got {url!r}")
    user = read_str(table, "imap.user", "")
    if not user:
        raise ConfigError("imap.user", "the mailbox's login is required when imap.url is set")
    password = env.get(PASSWORD_ENV, "")
    password_file = read_str(table, "imap.password_file", "")
    if not password and password_file:
        path = Path(password_file) if base is None else base / password_file
        password = read_text(path, "imap.password_file", "a file holding the mailbox's password").strip()
    if not password:
        raise ConfigError("imap.password_file", f"no password: set {PASSWORD_ENV} or imap.password_file")
    default = ImapSettings(host="")
    return ImapSettings(
        host=parts.hostname, port=parts.port or 993, user=user, password=password,
        client_cert=read_str(table, "imap.client_cert", ""), client_key=read_str(table, "imap.client_key", ""),
        ca_file=read_str(table, "imap.ca_file", ""), mailbox=read_str(table, "imap.mailbox", default.mailbox),
        done_folder=read_str(table, "imap.done_folder", default.done_folder),
        unrecognised_folder=read_str(table, "imap.unrecognised_folder", default.unrecognised_folder),
        batch=read_int(table, "imap.batch", default.batch, minimum=1, maximum=1000),
        idle=read_bool(table, "imap.idle", default.idle),
        poll_interval=read_seconds(table, "imap.poll_interval", default.poll_interval),
        idle_timeout=read_seconds(table, "imap.idle_timeout", default.idle_timeout),
        reconnect_delay=read_seconds(table, "imap.reconnect_delay", default.reconnect_delay),
        timeout=read_seconds(table, "imap.timeout", default.timeout),
    )


# ---------------------------------------------------------------------- [notices]: a local Maildir instead

@dataclass(frozen=True)
class MaildirSettings:
    """``[notices] maildir``: the structure's mail is delivered by a local MTA into this Maildir.

    A structure whose MSSanté mail lands on the Liaison server (Postfix ``home_mailbox = Maildir/``,
    Dovecot LDA) is read there instead of over IMAP; processed mails go to Maildir++ folders.

        [notices]
        maildir = "/var/mail/pfi/Maildir"                 # holds new/, cur/, tmp/
        done_folder = ".Liaison.Traités"                  # notices applied (never deleted)
        unrecognised_folder = ".Liaison.Non reconnus"     # unmatched or unreadable mails
        batch = 50                                        # mails read per pass
        poll_interval = 5                                 # seconds between looks
    """

    path: Path
    done_folder: str = ".Liaison.Traités"
    unrecognised_folder: str = ".Liaison.Non reconnus"
    batch: int = 50
    poll_interval: float = 5.0


_NOTICES_KEYS = {"maildir", "done_folder", "unrecognised_folder", "batch", "poll_interval"}


def maildir_settings(table: Mapping[str, Any], base: Path | None = None) -> MaildirSettings | None:
    """The ``[notices]`` table, checked; None when no ``maildir`` is set."""
    no_unknown(table, "notices", _NOTICES_KEYS)
    path = read_str(table, "notices.maildir", "")
    if not path:
        return None
    folder = Path(path) if base is None else base / path
    default = MaildirSettings(path=folder)
    names = {}
    for key in ("done_folder", "unrecognised_folder"):
        name = read_str(table, f"notices.{key}", getattr(default, key))
        if not name.startswith(".") or "/" in name or name in (".", ".."):
            raise ConfigError(f"notices.{key}", f"expected a Maildir++ folder name such as '.Liaison.Traités', "
                                                f"got {name!r}")
        names[key] = name
    return MaildirSettings(path=folder, **names,
                           batch=read_int(table, "notices.batch", default.batch, minimum=1, maximum=1000),
                           poll_interval=read_seconds(table, "notices.poll_interval", default.poll_interval))


def one_notice_source(imap: ImapSettings | None, maildir: MaildirSettings | None) -> None:
    """Notices are read from one place: both configured is an error naming the keys."""
    if imap is not None and maildir is not None:
        raise ConfigError("notices.maildir", "the notices are read from one source: set either imap.url or "
                                             "notices.maildir, not both")
