"""``[mss]``: parsed beside the SMTP channel, every error naming its key."""

import pytest

from channels.smtp.settings import mss_settings
from tests.support.config import refused_key


def test_without_a_relay_nothing_else_is_required():
    mss = mss_settings({})
    assert (mss.relay, mss.sender, mss.nil) == ("", "", "")
    assert mss.default_body.startswith("Bonjour") and mss.timeout == 30.0


def test_a_relay_with_its_sender_and_nil():
    mss = mss_settings({"relay": "smtps://relay.test:465", "sender": "pfi@ch.mssante.fr", "nil": "0000",
                        "timeout": 5})
    assert (mss.relay, mss.sender, mss.nil, mss.timeout) == ("smtps://relay.test:465", "pfi@ch.mssante.fr", "0000", 5.0)


@pytest.mark.parametrize("table, key", [
    ({"relay": "http://relay"}, "mss.relay"),
    ({"relay": "smtp://relay:587"}, "mss.sender"),
    ({"relay": "smtp://relay:587", "sender": "pfi@ch.mssante.fr"}, "mss.nil"),
    ({"timeout": -1}, "mss.timeout"),
    ({"realy": "smtp://relay:587"}, "mss.realy"),
    ({"mdn": "sometimes"}, "mss.mdn"),
    ({"mdn_to": "nobody"}, "mss.mdn_to"),
    ({"dsn": "yes"}, "mss.dsn"),
])
def test_errors_name_the_key(table, key):
    assert refused_key(mss_settings, table) == key


def test_notices_are_asked_by_default_and_go_to_the_sender_unless_told():
    mss = mss_settings({"sender": "pfi@ch.mssante.fr"})
    assert (mss.dsn, mss.mdn, mss.notices_to) == (True, "asked", "pfi@ch.mssante.fr")
    other = mss_settings({"sender": "pfi@ch.mssante.fr", "dsn": False, "mdn": "always",
                          "mdn_to": "ar@ch.mssante.fr"})
    assert (other.dsn, other.mdn, other.notices_to) == (False, "always", "ar@ch.mssante.fr")
