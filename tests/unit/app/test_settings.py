"""The composed configuration: each section parsed by its owner, one frozen Settings, every error naming its key."""

import base64
from pathlib import Path

import pytest

from channels.app.settings import Settings, load_settings, settings_from_dict
from mappings.site import Site
from router.errors import ConfigError
from tests.support.config import refused_key
from tests.support.fixtures import require_fixture

ROOT = Path(__file__).resolve().parents[3]


def test_defaults_run_on_embedded_bus_and_sqlite():
    settings = settings_from_dict({})
    assert settings.bus.startswith("embedded://")
    assert settings.journal.startswith("sqlite://")
    assert settings.listeners[0].port == 2575
    assert settings.site == Site() and settings.whitelist is None and settings.dmp is None


@pytest.mark.parametrize("data, key", [
    ({"engine": {"bus": "kafka://x"}}, "engine.bus"),
    ({"listeners": [{"port": 70000}]}, "listeners[0].port"),
    ({"mss": {"relay": "http://relay"}}, "mss.relay"),
    ({"mss": "smtp://relay"}, "mss"),
    ({"acks": {"port": "2576"}}, "acks.port"),
    ({"site": {"finess": "12"}}, "site.finess"),
    ({"mappings": {"tablez": {}}}, "mappings.tablez"),
    ({"render": {"schematrons": "some"}}, "render.schematrons"),
    ({"correspondents": [{"rpps": "123", "address": "dr@medecin-test.mssante.fr"}]}, "correspondents[0].rpps"),
    ({"whitelist": {"refresh_interval": 0}}, "whitelist.refresh_interval"),
    ({"directory": {"index": 3}}, "directory.index"),
    ({"dmp": {"url": "http://dmp"}}, "dmp.client_cert"),
    ({"colour": "blue"}, "colour"),
])
def test_each_section_is_parsed_by_its_owner_and_errors_name_the_key(data, key):
    assert refused_key(settings_from_dict, data) == key


def test_a_file_is_read_section_by_section_relative_to_its_folder(tmp_path):
    (tmp_path / "journal.key").write_text(base64.b64encode(b"k" * 32).decode())
    (tmp_path / "liaison.toml").write_text('[engine]\njournal_key_file = "journal.key"\nprefetch = 4\n'
                                           '[[listeners]]\nname = "labo"\nport = 2600\n'
                                           '[mss]\nrelay = "smtp://relay.test:587"\nsender = "pfi@ch.mssante.fr"\nnil = "0000"\n'
                                           '[acks]\nhost = "his.test"\nport = 2576\n'
                                           '[render]\nlab_roles = ["prescriber"]\n')
    settings = load_settings(tmp_path / "liaison.toml", env={})
    assert isinstance(settings, Settings)
    assert settings.journal_key == b"k" * 32 and settings.prefetch == 4
    assert settings.listeners[0].name == "labo" and settings.listeners[0].port == 2600
    assert settings.mss.relay == "smtp://relay.test:587"
    assert settings.acks.enabled and settings.render.lab_roles == ("prescriber",)


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[engine\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(path) in str(caught.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as caught:
        load_settings(tmp_path / "absent.toml", env={})
    assert caught.value.key == str(tmp_path / "absent.toml")


def test_the_example_configuration_declares_a_site_and_overrides():
    jdv_dir = require_fixture("TestContenuCDA-3-0", "jeuxDeValeurs")
    settings = load_settings(ROOT / "deploy" / "liaison.example.toml",
                             env={"LIAISON_JOURNAL_KEY": "A" * 43 + "=", "LIAISON_JDV_DIR": str(jdv_dir)})
    assert settings.site.name == "CH Exemple" and settings.site.finess == "999000029"
    assert settings.tables.get("discharge_modes")["by_pv1_36"]["HAD"]["code"] == "127"
    assert settings.tables.get("txa_document_types")["by_txa2"]["CRRAD"] == "18748-4"


def test_a_cluster_bus_is_one_amqp_bus_over_the_nodes_in_their_order():
    from channels.amqp import AmqpBus
    from channels.app.engine import bus_from_url
    nodes = ["amqp://u:p@rabbit-b:5672/", "amqp://u:p@rabbit-a:5672/", "amqp://u:p@rabbit-c:5672/"]
    bus = bus_from_url(settings_from_dict({"engine": {"bus": nodes}}).bus)
    assert isinstance(bus, AmqpBus) and bus.urls == tuple(nodes)
    assert repr(bus) == "AmqpBus('amqp://rabbit-b:5672,rabbit-a:5672,rabbit-c:5672/')"


def test_the_imap_section_is_read_with_its_password_from_the_environment():
    assert settings_from_dict({}).imap is None
    settings = settings_from_dict({"imap": {"url": "imaps://imap.test:993", "user": "pfi@ch.mssante.fr"}},
                                  {"LIAISON_IMAP_PASSWORD": "secret"})
    assert (settings.imap.host, settings.imap.user, settings.imap.password) == ("imap.test", "pfi@ch.mssante.fr",
                                                                                "secret")
    assert refused_key(settings_from_dict, {"imap": {"url": "imap://imap.test"}}) == "imap.url"


def test_the_multi_server_example_names_a_postgresql_journal_and_the_cluster_nodes(tmp_path):
    import tomllib
    data = tomllib.loads((ROOT / "deploy" / "liaison.multi-server.example.toml").read_text())
    # The files it names are the operator's (certificates, keys, the ANS bundle): here, none of them.
    key = tmp_path / "journal.key"
    key.write_text("A" * 43 + "=\n")
    data["engine"] |= {"journal_key_file": str(key), "cda_schema_required": False, "schematrons": "off"}
    data["engine"].pop("schematron_dir")
    data["engine"].pop("cda_schema_dir")
    for name in ("client_cert", "client_key", "ca_file"):
        data["mss"].pop(name)
    data.pop("console")
    settings = settings_from_dict(data, env={}, base=tmp_path)
    assert settings.journal.startswith("postgresql://liaison@db.local:5432/liaison")
    assert not settings.journal_migrate
    assert len(settings.bus) == 3 and all(url.startswith("amqp://") for url in settings.bus)
