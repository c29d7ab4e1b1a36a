"""Reading the extraction files: header mapping by name, line splitting, record building."""

from __future__ import annotations

import random

import pytest

from channels.directory.extraction import (MAILBOX_COLUMNS, MAILBOXES, PEOPLE, PEOPLE_COLUMNS, ExtractionError,
                                           Rejected, fields, file_date, mailbox_record, name_key, read_header)
from tests.support.fixtures import require_fixture
from tests.support import directory_files as files


def test_the_synthetic_fixture_header_maps_every_mailbox_column():
    path = require_fixture("annuaire-synthetic", "Extraction_Correspondance_MSSante_SYNTHETIC_header_and_2_fake_rows.txt")
    with open(path, "rb") as stream:
        layout = read_header(stream.readline(), path.name)
    assert layout.kind == MAILBOXES
    assert layout.width == 31 and not layout.trailing
    assert set(layout.positions) == set(MAILBOX_COLUMNS) - {"red_list"}


def test_the_synthetic_people_header_maps_every_people_column_and_its_trailing_separator():
    path = require_fixture("annuaire-synthetic", "PS_LibreAcces_Personne_activite_SYNTHETIC_header_only.txt")
    with open(path, "rb") as stream:
        layout = read_header(stream.readline(), path.name)
    assert layout.kind == PEOPLE
    assert layout.width == 56 and layout.trailing
    assert set(layout.positions) == set(PEOPLE_COLUMNS)


def test_columns_are_found_by_name_whatever_their_order():
    header = files.MSSANTE_HEADER[:]
    random.Random(3).shuffle(header)
    layout = read_header("|".join(header).encode(), "x.txt")
    row = files.per(1, family="DURAND", postcode="69003")
    record = mailbox_record(2, fields(files.line(header, row).encode(), layout), layout)
    assert record[1] == row["Adresse BAL"]
    assert record[4] == "8" + files.rpps(1)
    assert record[16] == "69003"


def test_labels_compare_without_case_accents_or_punctuation():
    header = [label.upper().replace(" ", "_").replace("É", "E") for label in files.MSSANTE_HEADER]
    layout = read_header("|".join(header).encode(), "x.txt")
    assert layout.positions["given"] == files.MSSANTE_HEADER.index("Prénom d'exercice")


def test_a_header_without_required_columns_is_refused_naming_them():
    header = [h for h in files.MSSANTE_HEADER if h not in ("Adresse BAL", "Identification Structure")]
    with pytest.raises(ExtractionError) as caught:
        read_header("|".join(header).encode(), "Extraction_Correspondance_MSSante_x.txt")
    assert "'Adresse BAL'" in str(caught.value) and "'Identification Structure'" in str(caught.value)


def test_a_people_file_without_names_is_refused_naming_the_column():
    header = [h for h in files.PERSON_HEADER if h != "Nom d'exercice"]
    with pytest.raises(ExtractionError, match="'Nom d'exercice'"):
        read_header(("|".join(header) + "|").encode(), "PS_LibreAcces_Personne_activite_x.txt")


def test_a_header_that_is_not_utf8_is_refused():
    header = "|".join(files.MSSANTE_HEADER).encode("latin-1")
    with pytest.raises(ExtractionError, match="not UTF-8"):
        read_header(header, "x.txt")


def test_a_utf8_byte_order_mark_is_ignored():
    layout = read_header(b"\xef\xbb\xbf" + "|".join(files.MSSANTE_HEADER).encode(), "x.txt")
    assert layout.positions["kind"] == 0


def test_line_splitting_rejects_short_and_long_lines_and_tolerates_empty_extra_fields():
    layout = read_header("|".join(files.MSSANTE_HEADER).encode(), "x.txt")
    good = files.line(files.MSSANTE_HEADER, files.per(1))
    assert fields(good.encode(), layout) != Rejected("too_few_fields")
    assert fields(good.rsplit("|", 3)[0].encode(), layout) == Rejected("too_few_fields")
    assert fields((good + "|extra").encode(), layout) == Rejected("too_many_fields")
    assert len(fields((good + "||\r\n").encode(), layout)) == 31 + 1     # + the "" absent columns read
    assert fields(good.replace("Sophie", "Sophie\xe9").encode("latin-1"), layout) == Rejected("not_utf8")


def test_records_refuse_lines_that_cannot_be_a_mailbox():
    layout = read_header("|".join(files.MSSANTE_HEADER).encode(), "x.txt")

    def record(**changes):
        row = {**files.per(1), **changes}
        return mailbox_record(2, fields(files.line(files.MSSANTE_HEADER, row).encode(), layout), layout)

    assert record(**{"Adresse BAL": ""}) == Rejected("no_address")
    assert record(**{"Adresse BAL": "not an address"}) == Rejected("bad_address")
    assert record(**{"Type de BAL": "XYZ"}) == Rejected("unknown_kind")
    assert record(**{"Identification nationale PP": "", "Identifiant PP": ""}) == Rejected("no_identifier")


def test_the_idnat_is_rebuilt_from_type_and_identifier_when_absent():
    layout = read_header("|".join(files.MSSANTE_HEADER).encode(), "x.txt")
    row = {**files.per(1), "Identification nationale PP": ""}
    record = mailbox_record(2, fields(files.line(files.MSSANTE_HEADER, row).encode(), layout), layout)
    assert record[4] == "8" + files.rpps(1)


def test_names_are_keyed_without_accents_or_case():
    assert name_key("  Lefèvre-Dupré ") == "LEFEVRE DUPRE"


def test_the_file_date_comes_from_the_name():
    assert file_date("Extraction_Correspondance_MSSante_202608011230.txt") == "2026-08-01 12:30"
    assert file_date("PS_LibreAcces_Personne_activite_20260801.txt") == "2026-08-01"
    assert file_date("annuaire.txt") == ""
