"""``[[correspondents]]`` and ``[directory]``: checked when the configuration is read, kept as tables."""

import pytest

from channels.directory.settings import correspondents_settings, directory_settings
from tests.support.config import refused_key

DURAND = {"rpps": "12345678903", "address": "chloe.durand@medecin-test.mssante.fr"}


def test_correspondents_are_kept_as_tables():
    assert correspondents_settings([DURAND]) == (DURAND,)
    assert correspondents_settings([]) == ()


@pytest.mark.parametrize("entries, key", [
    ({"rpps": "12345678903"}, "correspondents"),
    ([DURAND, "dr@medecin-test.mssante.fr"], "correspondents"),
    ([{**DURAND, "address": "durand"}], "correspondents[0].address"),
    ([DURAND, {**DURAND, "rpps": "123"}], "correspondents[1].rpps"),
])
def test_correspondent_errors_name_the_entry_and_key(entries, key):
    assert refused_key(correspondents_settings, entries) == key


def test_directory_keeps_the_index_and_the_fhir_table():
    table = {"index": "/var/lib/liaison/directory.sqlite", "fhir": {"api_key_env": "ESANTE_API_KEY"}}
    assert directory_settings(table) == table
    assert directory_settings({}) == {}


@pytest.mark.parametrize("table, key", [
    ({"index": 3}, "directory.index"),
    ({"fhir": "https://gateway.api.esante.gouv.fr"}, "directory.fhir"),
    ({"indexes": "x"}, "directory.indexes"),
])
def test_directory_errors_name_the_key(table, key):
    assert refused_key(directory_settings, table) == key
