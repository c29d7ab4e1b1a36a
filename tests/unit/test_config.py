"""The core's sections, ``[engine]`` and ``[render]``, are validated at start, and every error names its key."""

import base64

import pytest

from router.config import engine_settings, render_settings
from router.errors import ConfigError
from router.recipients_render import LETTER_ROLES, PatientPolicy
from tests.support.config import refused_key


def test_defaults_run_on_embedded_bus_and_sqlite():
    engine = engine_settings({}, {}, None)
    assert engine.bus.startswith("embedded://")
    assert engine.journal.startswith("sqlite://")
    assert engine.journal_key is None and engine.schematrons == "off"


@pytest.mark.parametrize("table, key", [
    ({"bus": "kafka://x"}, "engine.bus"),
    ({"journal": "mysql://x"}, "engine.journal"),
    ({"prefetch": 0}, "engine.prefetch"),
    ({"retry_delays": "soon"}, "engine.retry_delays"),
    ({"colour": "blue"}, "engine.colour"),
    ({"schematrons": "some"}, "engine.schematrons"),
    ({"cda_schema_required": "yes"}, "engine.cda_schema_required"),
])
def test_engine_errors_name_the_key(table, key):
    assert refused_key(engine_settings, table, {}, None) == key


def test_a_list_of_amqp_urls_is_a_cluster_bus():
    nodes = ["amqp://u:p@rabbit-a:5672/liaison", "amqp://u:p@rabbit-b:5672/liaison", "amqp://u:p@rabbit-c/liaison"]
    assert engine_settings({"bus": nodes}, {}, None).bus == tuple(nodes)


def test_one_url_stays_one_url():
    assert engine_settings({"bus": "amqp://u:p@rabbit-a:5672/"}, {}, None).bus == "amqp://u:p@rabbit-a:5672/"


@pytest.mark.parametrize("bus, key", [
    ([], "engine.bus"),
    (["amqp://a/", 5672], "engine.bus[1]"),
    (["amqp://a/", "embedded:///tmp/bus.sqlite"], "engine.bus[1]"),
    (["embedded:///tmp/bus.sqlite"], "engine.bus[0]"),
    (["amqp://a/", "amqps://b/"], "engine.bus[1]"),
    (["amqp://a/liaison", "amqp://b/other"], "engine.bus[1]"),
    (["amqp://a/?heartbeat=30", "amqp://b/"], "engine.bus[1]"),
])
def test_a_cluster_bus_has_nodes_of_one_cluster(bus, key):
    assert refused_key(engine_settings, {"bus": bus}, {}, None) == key


@pytest.mark.parametrize("table, key", [
    ({"schematrons": "some"}, "render.schematrons"),
    ({"letter_roles": ["boss"]}, "render.letter_roles"),
    ({"lab_roles": "prescriber"}, "render.lab_roles"),
    ({"patient_identity_statuses": ["SURE"]}, "render.patient_identity_statuses"),
    ({"patient_ins_kinds": ["nia"]}, "render.patient_ins_kinds"),
    ({"colour": "blue"}, "render.colour"),
])
def test_render_errors_name_the_key(table, key):
    assert refused_key(render_settings, table) == key


def test_render_reads_roles_and_the_patient_policy():
    assert render_settings({}).letter_roles == LETTER_ROLES
    render = render_settings({"lab_roles": ["prescriber"], "patient_identity_statuses": ["QUAL"],
                              "patient_ins_kinds": ["production", "test"]})
    assert render.lab_roles == ("prescriber",)
    assert render.patient_policy == PatientPolicy(("QUAL",), ("production", "test"))


def test_journal_key_comes_from_the_environment_not_the_toml():
    key = bytes(range(32))
    engine = engine_settings({}, {"LIAISON_JOURNAL_KEY": base64.b64encode(key).decode()}, None)
    assert engine.journal_key == key
    short = {"LIAISON_JOURNAL_KEY": base64.b64encode(b"short").decode()}
    assert refused_key(engine_settings, {}, short, None) == "LIAISON_JOURNAL_KEY"


def test_journal_key_file_is_relative_to_the_configuration(tmp_path):
    (tmp_path / "journal.key").write_text(base64.b64encode(b"k" * 32).decode())
    assert engine_settings({"journal_key_file": "journal.key"}, {}, tmp_path).journal_key == b"k" * 32
    assert refused_key(engine_settings, {"journal_key_file": "absent.key"}, {}, tmp_path) == "engine.journal_key_file"


@pytest.mark.parametrize("content, problem", [
    (b"\xff\xfe\x00 binary", "is not ASCII text (byte 0xff at offset 0)"),
    (None, "is a directory"),
])
def test_an_unreadable_journal_key_file_names_the_key_the_file_and_what_was_expected(tmp_path, content, problem):
    path = tmp_path / "journal.key"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        engine_settings({"journal_key_file": "journal.key"}, {}, tmp_path)
    assert caught.value.key == "engine.journal_key_file"
    assert f"{path} {problem}; expected a file holding the 32-byte key in base64" in str(caught.value)


def test_the_journal_may_be_postgresql_and_its_migrations_left_to_the_operator():
    engine = engine_settings({"journal": "postgresql://liaison@db.example/journal", "journal_migrate": False}, {}, None)
    assert (engine.journal, engine.journal_migrate) == ("postgresql://liaison@db.example/journal", False)
    assert engine_settings({}, {}, None).journal_migrate is True
    assert refused_key(engine_settings, {"journal_migrate": "no"}, {}, None) == "engine.journal_migrate"
