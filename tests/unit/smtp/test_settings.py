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
])
def test_errors_name_the_key(table, key):
    assert refused_key(mss_settings, table) == key
