"""Configuration is validated at start, and every error names its key."""

import base64

import pytest

from router.config import load_settings, settings_from_dict
from router.errors import ConfigError


def test_defaults_run_on_embedded_bus_and_sqlite():
    settings = settings_from_dict({})
    assert settings.bus.startswith("embedded://")
    assert settings.journal.startswith("sqlite://")
    assert settings.listeners[0].port == 2575


@pytest.mark.parametrize("data, key", [
    ({"engine": {"bus": "kafka://x"}}, "engine.bus"),
    ({"engine": {"journal": "mysql://x"}}, "engine.journal"),
    ({"engine": {"prefetch": 0}}, "engine.prefetch"),
    ({"engine": {"retry_delays": "soon"}}, "engine.retry_delays"),
    ({"engine": {"colour": "blue"}}, "engine.colour"),
    ({"listeners": [{"port": 70000}]}, "listeners[0].port"),
    ({"listeners": [{"tls_cert": "a.pem"}]}, "listeners[0].tls_key"),
    ({"listeners": [{"default_charset": "klingon"}]}, "listeners[0].default_charset"),
    ({"mss": {"relay": "http://relay"}}, "mss.relay"),
    ({"mss": {"relay": "smtp://relay:587"}}, "mss.sender"),
    ({"mss": {"relay": "smtp://relay:587", "sender": "pfi@ch.mssante.fr"}}, "mss.nil"),
    ({"acks": {"port": "2576"}}, "acks.port"),
])
def test_errors_name_the_key(data, key):
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(data)
    assert caught.value.key == key
    assert str(caught.value).startswith(key)


def test_journal_key_comes_from_the_environment_not_the_toml():
    key = bytes(range(32))
    settings = settings_from_dict({}, {"LIAISON_JOURNAL_KEY": base64.b64encode(key).decode()})
    assert settings.journal_key == key
    with pytest.raises(ConfigError) as caught:
        settings_from_dict({}, {"LIAISON_JOURNAL_KEY": base64.b64encode(b"short").decode()})
    assert caught.value.key == "LIAISON_JOURNAL_KEY"


def test_journal_key_file_is_relative_to_the_configuration(tmp_path):
    (tmp_path / "journal.key").write_text(base64.b64encode(b"k" * 32).decode())
    (tmp_path / "liaison.toml").write_text('[engine]\njournal_key_file = "journal.key"\n'
                                           '[[listeners]]\nname = "labo"\nport = 2600\n'
                                           '[mss]\nrelay = "smtp://relay.test:587"\nsender = "pfi@ch.mssante.fr"\nnil = "0000"\n')
    settings = load_settings(tmp_path / "liaison.toml", env={})
    assert settings.journal_key == b"k" * 32
    assert settings.listeners[0].name == "labo" and settings.listeners[0].port == 2600
    assert settings.mss.relay == "smtp://relay.test:587"


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[engine\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(path) in str(caught.value)
