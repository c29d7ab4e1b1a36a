"""``[[listeners]]`` and ``[acks]``: parsed beside the MLLP channel, every error naming its key."""

import pytest

from channels.mllp.settings import ack_settings, listeners_settings
from tests.support.config import refused_key


def test_a_listener_takes_the_defaults_of_the_keys_it_does_not_give():
    (listener,) = listeners_settings([{"name": "labo", "port": 2600}])
    assert (listener.name, listener.host, listener.port) == ("labo", "127.0.0.1", 2600)
    assert listener.max_frame_bytes == 16 * 1024 * 1024 and listener.default_charset == "utf-8"


@pytest.mark.parametrize("items, key", [
    ([{"port": 70000}], "listeners[0].port"),
    ([{"tls_cert": "a.pem"}], "listeners[0].tls_key"),
    ([{"default_charset": "klingon"}], "listeners[0].default_charset"),
    ([{}, {"tls_client_ca": "ca.pem"}], "listeners[1].tls_client_ca"),
    ([{}, "his"], "listeners[1]"),
    ([{"colour": "blue"}], "listeners[0].colour"),
])
def test_listener_errors_name_the_key(items, key):
    assert refused_key(listeners_settings, items) == key


@pytest.mark.parametrize("table, key", [
    ({"port": "2576"}, "acks.port"),
    ({"timeout": 0}, "acks.timeout"),
    ({"hots": "his"}, "acks.hots"),
])
def test_ack_errors_name_the_key(table, key):
    assert refused_key(ack_settings, table) == key


def test_acks_are_sent_only_with_a_host_and_a_port():
    assert not ack_settings({}).enabled
    assert not ack_settings({"host": "his.example"}).enabled
    assert ack_settings({"host": "his.example", "port": 2576}).enabled
