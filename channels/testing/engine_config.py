"""The sections a test or benchmark engine writes into its ``liaison.toml``.

Why one builder: the worker-crash test, the fault suite and the end-to-end benchmark all run the
real ``liaison`` processes against a loopback relay (Postfix or the TLS sink) with the tests' own PKI
and a fake HIS; the sections that wire them must not drift apart.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

SENDER = "pfi@hopital-test.mssante.fr"
MESSAGE_ID_DOMAIN = "hopital-test.mssante.fr"


class ClientPki(Protocol):
    client_cert: object
    client_key: object
    ca_cert: object


def mail_and_acks_toml(*, relay_port: int, pool: int, pki: ClientPki, his_port: int,
                       mail_timeout: int = 30, ack_timeout: int = 5) -> str:
    """``[mss]`` mailing through ``127.0.0.1:relay_port`` with the PKI's client certificate, ``[acks]`` to the HIS."""
    return f"""\
[mss]
relay = "smtp://127.0.0.1:{relay_port}?pool={pool}"
sender = "{SENDER}"
client_cert = "{pki.client_cert}"
client_key = "{pki.client_key}"
ca_file = "{pki.ca_cert}"
nil = "TEST-NIL-0001"
message_id_domain = "{MESSAGE_ID_DOMAIN}"
timeout = {mail_timeout}

[acks]
host = "127.0.0.1"
port = {his_port}
timeout = {ack_timeout}
"""


def engine_toml(*, bus: str | list[str], journal: str, **options: Any) -> str:
    """``[engine]`` with its bus (one URL or a cluster's list), journal and any other key (JSON is TOML for these)."""
    lines = [f"bus = {json.dumps(bus)}", f"journal = {json.dumps(journal)}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "[engine]\n" + "\n".join(lines) + "\n\n"


def listener_toml(*, port: int, name: str = "his", **options: Any) -> str:
    """One ``[[listeners]]`` entry on 127.0.0.1 (``port = 0``: the OS picks it, the engine logs it)."""
    lines = [f"name = {json.dumps(name)}", 'host = "127.0.0.1"', f"port = {port}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "[[listeners]]\n" + "\n".join(lines) + "\n\n"
