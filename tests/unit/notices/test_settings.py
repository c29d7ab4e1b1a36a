"""``[imap]``: parsed beside the notice reader, the password never from the TOML, every error naming its key."""

import pytest

from channels.notices.imap import imap_utf7
from channels.notices.settings import imap_settings
from tests.support.config import refused_key

ENV = {"LIAISON_IMAP_PASSWORD": "secret"}
TABLE = {"url": "imaps://imap.operateur.test:1993", "user": "pfi@ch.mssante.fr"}


def test_without_a_url_notices_are_not_read():
    assert imap_settings({}, {}) is None


def test_a_mailbox_with_its_password_from_the_environment_and_the_default_folders():
    imap = imap_settings(TABLE, ENV)
    assert (imap.host, imap.port, imap.user, imap.password) == ("imap.operateur.test", 1993, "pfi@ch.mssante.fr",
                                                                "secret")
    assert (imap.mailbox, imap.done_folder, imap.unrecognised_folder) == ("INBOX", "Liaison/Traités",
                                                                          "Liaison/Non reconnus")
    assert "secret" not in repr(imap)


def test_the_password_can_come_from_a_file(tmp_path):
    (tmp_path / "imap-password").write_text("from-file\n")
    assert imap_settings({**TABLE, "password_file": "imap-password"}, {}, tmp_path).password == "from-file"


@pytest.mark.parametrize("table, key", [
    ({"url": "imap://imap.test:143", "user": "u"}, "imap.url"),
    ({"url": "imaps://imap.test"}, "imap.user"),
    ({**TABLE, "batch": 0}, "imap.batch"),
    ({**TABLE, "poll_interval": -1}, "imap.poll_interval"),
    ({**TABLE, "pasword": "x"}, "imap.pasword"),
])
def test_errors_name_the_key(table, key):
    assert refused_key(lambda t: imap_settings(t, ENV), table) == key


def test_no_password_anywhere_is_refused_naming_where_it_may_come_from():
    assert refused_key(lambda t: imap_settings(t, {}), TABLE) == "imap.password_file"


@pytest.mark.parametrize("name, encoded", [
    ("INBOX", "INBOX"), ("Liaison/Traités", "Liaison/Trait&AOk-s"), ("Non reconnus", "Non reconnus"),
    ("A&B", "A&-B"), ("Reçus été", "Re&AOc-us &AOk-t&AOk-"),
])
def test_mailbox_names_are_written_in_modified_utf7(name, encoded):
    assert imap_utf7(name) == encoded
