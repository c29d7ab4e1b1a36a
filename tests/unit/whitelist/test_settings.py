"""channels.whitelist.settings: the [whitelist] table, defaults and errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.whitelist import OFFICIAL_URL, from_config
from router.errors import ConfigError
from tests.support.whitelist_files import make_list, write_pair


def test_defaults():
    settings = from_config({}, env={})
    assert settings.source == OFFICIAL_URL == "https://espacedeconfiance.mssante.fr/listeblanchemssante.xml"
    assert settings.checksum is None
    assert settings.store_dir == Path("/var/lib/liaison/whitelist")
    assert settings.refresh_interval == 86400
    assert settings.always_allowed == ()
    assert settings.patient_domain == "patient.mssante.fr"


def test_store_dir_from_the_environment_unless_configured():
    assert from_config({}, env={"LIAISON_WHITELIST_DIR": "/srv/wl"}).store_dir == Path("/srv/wl")
    assert from_config({"store_dir": "/data/wl"}, env={"LIAISON_WHITELIST_DIR": "/srv/wl"}).store_dir == \
        Path("/data/wl")


def test_every_key_is_read():
    settings = from_config({
        "source": "https://raw.githubusercontent.com/ansforge/MSS-liste-blanche/main/listeblanchemssante.xml",
        "checksum": "/etc/liaison/checksum", "store_dir": "/tmp/wl", "refresh_interval": 3600,
        "always_allowed": ["patient.mssante.fr"], "ca_file": "/etc/liaison/igc-sante.pem", "fetch_timeout": 10,
    }, env={})
    assert settings.source.startswith("https://raw.githubusercontent.com/")
    assert (settings.checksum, settings.refresh_interval, settings.always_allowed, settings.ca_file,
            settings.fetch_timeout) == ("/etc/liaison/checksum", 3600.0, ("patient.mssante.fr",),
                                        "/etc/liaison/igc-sante.pem", 10.0)


@pytest.mark.parametrize("table, key", [
    ({"sources": "x"}, "whitelist.sources"),
    ({"source": "ftp://example.org/l.xml"}, "whitelist.source"),
    ({"source": ""}, "whitelist.source"),
    ({"checksum": 3}, "whitelist.checksum"),
    ({"refresh_interval": 0}, "whitelist.refresh_interval"),
    ({"refresh_interval": "daily"}, "whitelist.refresh_interval"),
    ({"always_allowed": "patient.mssante.fr"}, "whitelist.always_allowed"),
    ({"always_allowed": ["not a domain"]}, "whitelist.always_allowed"),
    ({"store_dir": 1}, "whitelist.store_dir"),
])
def test_errors_name_the_key(table, key):
    with pytest.raises(ConfigError) as caught:
        from_config(table, env={})
    assert caught.value.key == key


async def test_open_store_and_refresher_use_the_settings(tmp_path):
    source = write_pair(tmp_path / "src", make_list(["ch-test.mssante.fr"]))
    settings = from_config({"source": str(source), "store_dir": str(tmp_path / "store"), "refresh_interval": 60,
                            "always_allowed": ["patient.mssante.fr"]}, env={})
    store = settings.open_store()
    assert store.current is None
    refresher = settings.refresher(store)
    assert (refresher.source, refresher.interval) == (str(source), 60.0)
    assert (await refresher.refresh_once()).accepted
    reopened = settings.open_store()
    assert reopened.current.check("x@ch-test.mssante.fr").allowed
    assert reopened.current.check("x@patient.mssante.fr").allowed


@pytest.mark.parametrize("value", ["not a domain", True, ["patient.mssante.fr"]])
def test_a_bad_patient_domain_is_refused_naming_the_key(value):
    with pytest.raises(ConfigError, match="expected a domain name") as caught:
        from_config({"patient_domain": value}, env={})
    assert caught.value.key == "whitelist.patient_domain"


@pytest.mark.parametrize("off", ["", False])
def test_the_patients_domain_rule_can_be_turned_off(off):
    assert from_config({"patient_domain": off}, env={}).patient_domain is None


async def test_the_store_trusts_the_patients_domain_by_rule_unless_turned_off(tmp_path):
    source = write_pair(tmp_path / "src", make_list(["ch-test.mssante.fr"]))
    for table, allowed in (({}, True), ({"patient_domain": ""}, False)):
        settings = from_config({"source": str(source), "store_dir": str(tmp_path / "store"), **table}, env={})
        store = settings.open_store()
        assert (await store.update(str(source))).accepted
        assert store.current.check("279035121518989@patient.mssante.fr").allowed is allowed
        assert settings.open_store().current.check("279035121518989@patient.mssante.fr").allowed is allowed
