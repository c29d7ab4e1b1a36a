"""``IndexDirectory``: lookups by IdNat_PS and structure id, searches, red list, enrichment."""

from __future__ import annotations

import asyncio
import threading

import pytest

from channels.directory.importer import import_extraction
from channels.directory.index import IndexDirectory
from router.errors import PeerUnavailable
from tests.support import directory_files as files

FINESS = "750000001"
STRUCTURE = "1" + FINESS
ADELI = "759912345"


def mailbox_rows() -> list[dict[str, str]]:
    others = [files.per(n, family=f"AUTRE{n}") for n in range(100, 130)]
    return [
        files.per(1, family="LEFÈVRE", given="Étienne", address=f"etienne.lefevre@{files.DOMAIN}"),
        files.org(STRUCTURE, f"secretariat.cardio@{files.DOMAIN}", service="Cardiologie"),
        files.org(STRUCTURE, f"dpi@{files.DOMAIN}", kind="APP"),
        {**files.per(1, address=f"cabinet.lefevre@{files.DOMAIN}", family="LEFÈVRE", given="Étienne"),
         "Type de BAL": "CAB"},
        files.per(2, family="MARTIN", given="Sophie", postcode="69003", structure=STRUCTURE),
        files.per(3, family="MARTIN", given="Paul", postcode="13001", profession="Infirmier"),
        {"Type de BAL": "PER", "Adresse BAL": f"adeli@{files.DOMAIN}", "Type Identifiant PP": "0",
         "Identifiant PP": ADELI, "Identification nationale PP": "0" + ADELI, "Nom d'exercice": "KINE",
         "Libellé Profession": "Masseur-Kinésithérapeute"},
        *others,
    ]


@pytest.fixture
def index(tmp_path):
    path = tmp_path / "directory.sqlite"
    import_extraction(files.write_mssante(tmp_path, mailbox_rows()), path)
    import_extraction(files.write_people(tmp_path, [
        files.person(1, family="LEFÈVRE", given="Étienne", postcode="33000", profession="Médecin",
                     organisation="CABINET DES QUAIS"),
        files.person(3, family="MARTIN", given="Paul", postcode="13001", profession="Infirmier"),
    ]), path)
    return path


@pytest.fixture
async def directory(index):
    found = IndexDirectory(index)
    yield found
    await found.close()


async def test_idnat_and_raw_rpps_find_the_same_personal_mailboxes(directory):
    by_idnat = await directory.mailboxes("8" + files.rpps(1))
    assert [(m.kind, m.address) for m in by_idnat] == [("PER", f"etienne.lefevre@{files.DOMAIN}"),
                                                       ("CAB", f"cabinet.lefevre@{files.DOMAIN}")]
    assert await directory.mailboxes(files.rpps(1)) == by_idnat
    assert by_idnat[0].identifier == "8" + files.rpps(1) and by_idnat[0].name == "DR Étienne LEFÈVRE"


async def test_an_adeli_professional_is_found_by_0_plus_adeli(directory):
    found = await directory.mailboxes("0" + ADELI)
    assert [(m.address, m.profession) for m in found] == [(f"adeli@{files.DOMAIN}", "Masseur-Kinésithérapeute")]


async def test_a_structure_id_finds_its_org_and_app_mailboxes_not_its_staff(directory):
    found = await directory.mailboxes(STRUCTURE)
    assert [(m.kind, m.address, m.service) for m in found] == [
        ("ORG", f"secretariat.cardio@{files.DOMAIN}", "Cardiologie"), ("APP", f"dpi@{files.DOMAIN}", "")]
    assert found[0].organisation == "HOPITAL FICTIF" and found[0].structure_id == STRUCTURE
    assert await directory.mailboxes(FINESS) == found          # a raw FINESS is tried as 1+FINESS


async def test_an_unknown_identifier_has_no_mailbox(directory):
    assert await directory.mailboxes("8" + files.rpps(999)) == []
    assert await directory.mailboxes("  ") == []


async def test_every_mailbox_says_which_extraction_it_came_from(directory):
    found = await directory.mailboxes(STRUCTURE)
    assert {m.source for m in found} == {"annuaire extraction 2026-08-01 12:00"}


async def test_the_people_file_fills_what_the_mailbox_line_lacks(directory):
    per = (await directory.mailboxes(files.rpps(1)))[0]
    assert (per.postal_code, per.organisation, per.profession) == ("33000", "CABINET DES QUAIS", "Médecin")
    sophie = (await directory.mailboxes(files.rpps(2)))[0]
    assert (sophie.postal_code, sophie.organisation) == ("69003", "")     # no activity: as the mailbox line says


async def test_search_by_name_ignores_accents_case_and_word_order(directory):
    for name in ("lefevre", "Étienne Lefèvre", "LEFEVRE etienne"):
        found = await directory.search(name=name)
        assert [m.kind for m in found] == ["PER", "CAB"], name
    assert await directory.search(name="lefevre paul") == []


async def test_search_combines_name_profession_and_postcode(directory):
    martins = await directory.search(name="martin")
    assert {m.identifier for m in martins} == {"8" + files.rpps(2), "8" + files.rpps(3)}
    nurses = await directory.search(name="martin", profession="infirmier")
    assert [m.identifier for m in nurses] == ["8" + files.rpps(3)]
    by_code = await directory.search(name="martin", profession="10", postal_code="69003")
    assert [m.identifier for m in by_code] == ["8" + files.rpps(2)]
    assert [m.identifier for m in await directory.search(name="martin", postal_code="13")] == ["8" + files.rpps(3)]


async def test_search_finds_people_by_the_postcode_of_their_activity(directory):
    found = await directory.search(name="lefevre", postal_code="33000")     # only the PS_LibreAcces line has it
    assert [m.address for m in found] == [f"etienne.lefevre@{files.DOMAIN}", f"cabinet.lefevre@{files.DOMAIN}"]


async def test_search_without_criteria_is_refused(directory):
    with pytest.raises(ValueError):
        await directory.search()


async def test_a_red_listed_mailbox_is_returned_flagged_not_hidden(tmp_path):
    header = [*files.MSSANTE_HEADER, "Liste rouge"]
    rows = [{**files.per(n), "Liste rouge": "False"} for n in range(1, 30)]
    rows.append({**files.per(42, address=f"rouge@{files.DOMAIN}"), "Liste rouge": "True"})
    import_extraction(files.write_mssante(tmp_path, rows, header=header), tmp_path / "d.sqlite")
    directory = IndexDirectory(tmp_path / "d.sqlite")
    assert [(m.address, m.red_list) for m in await directory.mailboxes(files.rpps(42))] == [(f"rouge@{files.DOMAIN}", True)]
    assert [m.red_list for m in await directory.mailboxes(files.rpps(1))] == [False]
    await directory.close()


async def test_without_a_red_list_column_no_mailbox_is_red_listed(directory):
    found = [m for n in (1, 2, 3) for m in await directory.mailboxes(files.rpps(n))]
    assert found and not any(m.red_list for m in found)


async def test_a_missing_index_is_unavailable_not_empty(tmp_path):
    with pytest.raises(PeerUnavailable, match="liaison directory import"):
        await IndexDirectory(tmp_path / "none.sqlite").mailboxes(files.rpps(1))


async def test_lookups_run_off_the_event_loop_thread(directory, monkeypatch):
    threads = []
    original = directory._mailboxes

    def spy(identifier):
        threads.append(threading.get_ident())
        return original(identifier)

    monkeypatch.setattr(directory, "_mailboxes", spy)
    results = await asyncio.gather(*(directory.mailboxes(files.rpps(n)) for n in (1, 2, 3)))
    assert [len(r) for r in results] == [2, 1, 1]
    assert threading.get_ident() not in threads


async def test_a_closed_directory_opens_the_index_again_on_the_next_lookup(directory):
    first = await directory.mailboxes(files.rpps(2))
    await directory.close()
    assert await directory.mailboxes(files.rpps(2)) == first
