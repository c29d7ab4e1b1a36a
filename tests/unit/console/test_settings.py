"""``[console]``: TLS both or neither, plain HTTP only on loopback, paths beside the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.app.settings import settings_from_dict
from channels.console.settings import ConsoleSettings, console_settings
from router.errors import ConfigError


def test_defaults_listen_on_loopback_over_http():
    settings = console_settings({})
    assert (settings.host, settings.port, settings.https) == ("127.0.0.1", 8480, False)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "console.chu.fr"])
def test_plain_http_off_loopback_is_refused(host):
    with pytest.raises(ConfigError, match="console.host: plain HTTP is served on a loopback address only"):
        console_settings({"host": host})


def test_tls_serves_any_address_and_paths_are_read_beside_the_file():
    settings = console_settings({"host": "0.0.0.0", "tls_cert": "console.crt", "tls_key": "/etc/k.pem",
                                 "users": "users.sqlite"}, base=Path("/etc/liaison"))
    assert settings == ConsoleSettings(host="0.0.0.0", tls_cert="/etc/liaison/console.crt", tls_key="/etc/k.pem",
                                       users="/etc/liaison/users.sqlite")
    assert settings.https


def test_a_certificate_without_its_key_is_refused():
    with pytest.raises(ConfigError, match="console.tls_key: give both"):
        console_settings({"tls_cert": "c.pem"})


def test_unknown_keys_are_named():
    with pytest.raises(ConfigError, match="console.password"):
        console_settings({"password": "x"})


def test_the_whole_configuration_reads_the_console_section():
    assert settings_from_dict({}).console is None
    assert settings_from_dict({"console": {"port": 9000}}).console.port == 9000
