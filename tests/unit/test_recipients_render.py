"""Render-mode recipients: configured roles, the static directory, and a reason for every candidate."""

from __future__ import annotations

import pytest

from channels.directory.static import StaticDirectory
from router.errors import ConfigError
from router.model import Participant
from router.ports import Mailbox
from router.recipients_render import Candidate, candidates_for, choose_recipients

DURAND = Participant(identifier="812345678903", family="DURAND", given="Chloé")
LEFEVRE = Participant(identifier="801234567897", family="LEFÈVRE", given="Étienne")
UNKNOWN = Participant(identifier="810000023084", family="INCONNU")
LOCAL = Participant(identifier="MED0042", family="INTERNE")


def directory() -> StaticDirectory:
    return StaticDirectory([
        Mailbox("secretariat@clinique-test.mssante.fr", kind="ORG", identifier="812345678903", source="static"),
        Mailbox("chloe.durand@medecin-test.mssante.fr", kind="PER", identifier="812345678903", source="static"),
        Mailbox("etienne.lefevre@medecin-test.mssante.fr", kind="PER", identifier="801234567897", source="static"),
    ])


async def test_each_candidate_is_kept_or_dropped_with_its_reason():
    candidates = [Candidate("medecin_traitant", DURAND), Candidate("referring", LEFEVRE),
                  Candidate("copies", UNKNOWN), Candidate("attending", LOCAL), Candidate("copies", DURAND)]
    recipients, choices = await choose_recipients(candidates, directory())

    assert [r.address for r in recipients] == ["chloe.durand@medecin-test.mssante.fr",
                                               "etienne.lefevre@medecin-test.mssante.fr"]
    assert recipients[0].identifier == "812345678903" and recipients[0].name == "Chloé DURAND"
    assert [c.kept for c in choices] == [True, True, False, False, False]
    assert "2 mailboxes (ORG, PER)" in choices[0].reason and "chose the PER mailbox" in choices[0].reason
    assert choices[2].reason == "copy recipient 810000023084: no MSSanté mailbox in the directory"
    assert "not an RPPS/ADELI identifier" in choices[3].reason
    assert "already chosen as médecin traitant" in choices[4].reason


def test_candidates_follow_the_configured_roles_in_order_and_skip_absent_people():
    people = {"medecin_traitant": [DURAND], "referring": [None], "attending": [LOCAL], "copies": [LEFEVRE]}
    assert [(c.role, c.participant) for c in candidates_for(("copies", "medecin_traitant", "referring"), people)] \
        == [("copies", LEFEVRE), ("medecin_traitant", DURAND)]


async def test_static_directory_from_configuration():
    found = StaticDirectory.from_config([{"rpps": "12345678903", "address": "a@b-test.mssante.fr"},
                                         {"idnat": "1999000017", "address": "sec@b-test.mssante.fr", "kind": "org"}])
    assert len(found) == 2
    assert [m.address for m in await found.mailboxes("812345678903")] == ["a@b-test.mssante.fr"]
    assert (await found.mailboxes("1999000017"))[0].kind == "ORG"
    assert await found.mailboxes("899999999999") == []


@pytest.mark.parametrize("entry, key", [
    ({"rpps": "12345678903", "address": "not-an-address"}, "correspondents[0].address"),
    ({"rpps": "1234", "address": "a@b.fr"}, "correspondents[0].rpps"),
    ({"address": "a@b.fr"}, "correspondents[0]"),
    ({"rpps": "12345678903", "idnat": "812345678903", "address": "a@b.fr"}, "correspondents[0]"),
    ({"rpps": "12345678903", "address": "a@b.fr", "kind": "XYZ"}, "correspondents[0].kind"),
])
def test_bad_correspondents_are_refused_naming_the_key(entry, key):
    with pytest.raises(ConfigError) as caught:
        StaticDirectory.from_config([entry])
    assert caught.value.key == key


async def test_a_red_listed_mailbox_is_never_chosen():
    directory = StaticDirectory([
        Mailbox("rouge@medecin-test.mssante.fr", kind="PER", identifier="812345678903", red_list=True),
        Mailbox("cabinet@medecin-test.mssante.fr", kind="CAB", identifier="812345678903"),
        Mailbox("cache@medecin-test.mssante.fr", kind="PER", identifier="801234567897", red_list=True),
    ])
    recipients, choices = await choose_recipients([Candidate("medecin_traitant", DURAND),
                                                   Candidate("referring", LEFEVRE)], directory)
    assert [r.address for r in recipients] == ["cabinet@medecin-test.mssante.fr"]
    assert choices[1].reason == ("referring doctor (PV1-8) 801234567897: 1 mailbox (PER) in the directory, "
                                 "all on the red list (liste rouge)")


async def test_a_wrong_rpps_key_or_a_malformed_directory_address_is_dropped_with_its_reason():
    directory = StaticDirectory([Mailbox("pas une adresse", identifier="801234567897")])
    bad_key = Participant(identifier="812345678901", family="FAUXCLE")
    recipients, choices = await choose_recipients([Candidate("copies", bad_key), Candidate("referring", LEFEVRE)],
                                                  directory)
    assert recipients == ()
    assert choices[0].reason == "copy recipient 812345678901: the RPPS check digit (Luhn) is wrong; not looked up"
    assert choices[1].reason == ("referring doctor (PV1-8) 801234567897: the directory's address is malformed "
                                 "(1 mailbox(es))")
