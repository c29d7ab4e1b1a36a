"""The ``[mss]`` section of ``liaison.toml``: the MSSanté relay and the platform's mailbox.

    [mss]
    relay = "smtp://smtp.operateur-mss.example:587"   # smtp:// (STARTTLS) or smtps://; empty: nothing is mailed
    sender = "pfi@ch-exemple.mssante.fr"              # the applicative mailbox (BAL applicative)
    client_cert = "/etc/liaison/mss/bal-applicative.pem"
    client_key = "/etc/liaison/mss/bal-applicative.key"
    ca_file = "/etc/liaison/mss/igc-sante-chain.pem"
    nil = "0000000000"                                # X-MSS-NIL, the product reference
    dsn = true                                        # ask for delivery notices (RFC 3461) when the relay offers DSN
    mdn = "asked"                                     # Disposition-Notification-To: "asked" (ACK_LECTURE=Y), "always", "never"
    mdn_to = ""                                       # where read notices go (default: sender, the structure's mailbox)

With a relay, ``sender`` and ``nil`` are required. Every error names its key (``mss.relay``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.config_values import check_scheme, no_unknown, read_bool, read_seconds, read_str

MDN_MODES = ("asked", "always", "never")
from router.errors import ConfigError


@dataclass(frozen=True)
class MssSettings:
    relay: str = ""                  # smtp://host:port (STARTTLS) or smtps://host:port
    sender: str = ""                 # the platform's applicative mailbox (BAL applicative)
    client_cert: str = ""
    client_key: str = ""
    ca_file: str = ""
    nil: str = ""                    # X-MSS-NIL: référence produit from convergence.esante.gouv.fr
    default_body: str = ("Bonjour,\r\n\r\nVeuillez trouver ci-joint un document de santé "
                         "au format IHE_XDM.\r\n\r\nCordialement.")
    message_id_domain: str = "liaison.invalid"
    timeout: float = 30.0
    dsn: bool = True                 # NOTIFY=SUCCESS,FAILURE, ORCPT and ENVID when the relay offers DSN
    mdn: str = "asked"               # when to ask for a read notice: asked (ACK_LECTURE=Y), always, never
    mdn_to: str = ""                 # Disposition-Notification-To; empty: the sender

    @property
    def notices_to(self) -> str:
        """The mailbox read notices are asked to go to."""
        return self.mdn_to or self.sender


def mss_settings(table: Mapping[str, Any]) -> MssSettings:
    """The ``[mss]`` table, checked."""
    no_unknown(table, "mss", set(MssSettings.__dataclass_fields__))
    default = MssSettings()
    relay = read_str(table, "mss.relay", "")
    if relay:
        check_scheme("mss.relay", relay, ("smtp", "smtps"))
    sender = read_str(table, "mss.sender", "")
    if relay and "@" not in sender:
        raise ConfigError("mss.sender", "the platform's MSSanté address is required when mss.relay is set")
    mdn = read_str(table, "mss.mdn", default.mdn)
    if mdn not in MDN_MODES:
        raise ConfigError("mss.mdn", f"expected one of {', '.join(MDN_MODES)}, got {mdn!r}")
    mdn_to = read_str(table, "mss.mdn_to", "")
    if mdn_to and "@" not in mdn_to:
        raise ConfigError("mss.mdn_to", f"expected a mail address, got {mdn_to!r}")
    if relay and not read_str(table, "mss.nil", ""):
        raise ConfigError("mss.nil", "X-MSS-NIL (the product reference) is required on every MSSanté message")
    return MssSettings(
        relay=relay, sender=sender,
        client_cert=read_str(table, "mss.client_cert", ""), client_key=read_str(table, "mss.client_key", ""),
        ca_file=read_str(table, "mss.ca_file", ""), nil=read_str(table, "mss.nil", ""),
        default_body=read_str(table, "mss.default_body", default.default_body),
        message_id_domain=read_str(table, "mss.message_id_domain", default.message_id_domain),
        timeout=read_seconds(table, "mss.timeout", default.timeout),
        dsn=read_bool(table, "mss.dsn", default.dsn), mdn=mdn, mdn_to=mdn_to,
    )
