"""Importing extractions into the index: report, bad input, atomic swap, incremental refresh."""

from __future__ import annotations

import sqlite3
import zipfile

import pytest
from structlog.testing import capture_logs

from channels.directory.extraction import MAILBOXES, PEOPLE, ExtractionError
from channels.directory.importer import ImportRefused, import_extraction
from channels.directory.index import IndexDirectory
from tests.support import directory_files as files

GOOD = [files.per(n, family=f"FAMILLE{n}") for n in range(1, 41)]


def addresses(index) -> set[str]:
    with sqlite3.connect(index) as db:
        return {address for (address,) in db.execute("SELECT address FROM mailbox")}


def test_every_good_line_is_kept_across_batches(tmp_path):
    report = import_extraction(files.write_mssante(tmp_path, GOOD), tmp_path / "d.sqlite", batch_size=7)
    assert (report.kind, report.rows_read, report.rows_kept, report.rows_rejected) == (MAILBOXES, 40, 40, 0)
    assert len(addresses(tmp_path / "d.sqlite")) == 40


def test_a_truncated_line_is_rejected_with_its_line_number_and_the_import_goes_on(tmp_path):
    short = files.line(files.MSSANTE_HEADER, files.per(99)).rsplit("|", 5)[0]
    source = files.write_mssante(tmp_path, [*GOOD[:10], short, *GOOD[10:]])
    report = import_extraction(source, tmp_path / "d.sqlite")
    assert report.rejected == {"too_few_fields": 1}
    assert report.rejected_lines["too_few_fields"] == [12]           # header is line 1
    assert report.rows_kept == 40


def test_a_line_with_latin1_bytes_is_rejected_as_not_utf8(tmp_path):
    latin = files.line(files.MSSANTE_HEADER, files.per(99, family="LEFÈVRE")).encode("latin-1")
    report = import_extraction(files.write_mssante(tmp_path, [*GOOD, latin]), tmp_path / "d.sqlite")
    assert report.rejected == {"not_utf8": 1} and report.rejected_lines["not_utf8"] == [42]
    assert report.rows_kept == 40


def test_a_file_encoded_in_latin1_throughout_is_refused_and_the_index_is_kept(tmp_path):
    index = tmp_path / "d.sqlite"
    import_extraction(files.write_mssante(tmp_path, GOOD), index)
    rows = [files.line(files.MSSANTE_HEADER, files.per(n, family="DUPRÉ")).encode("latin-1") for n in range(50, 80)]
    latin = files.write_mssante(tmp_path, [*GOOD, *rows], stamp="202609011200")
    with pytest.raises(ImportRefused, match="not_utf8 30") as caught:
        import_extraction(latin, index)
    assert caught.value.report.rejected["not_utf8"] == 30
    assert len(addresses(index)) == 40
    assert not list(tmp_path.glob(".d.sqlite.*.build"))


def test_exact_duplicates_are_dropped_and_shared_addresses_kept_and_counted(tmp_path):
    shared = files.per(77, family="PARTAGE", address=GOOD[0]["Adresse BAL"])
    source = files.write_mssante(tmp_path, [*GOOD, GOOD[3], shared])
    report = import_extraction(source, tmp_path / "d.sqlite")
    assert report.rejected == {"duplicate": 1} and report.rejected_lines["duplicate"] == [42]
    assert report.warnings["shared_address"] == 1 and report.warning_lines["shared_address"] == [43]
    assert report.rows_kept == 41
    with sqlite3.connect(tmp_path / "d.sqlite") as db:
        holders = db.execute("SELECT identifier FROM mailbox WHERE address = ?", (GOOD[0]["Adresse BAL"],)).fetchall()
    assert sorted(h for (h,) in holders) == sorted(["8" + files.rpps(1), "8" + files.rpps(77)])


async def test_an_rpps_with_a_wrong_luhn_key_is_kept_and_flagged(tmp_path):
    wrong = files.rpps(5)[:-1] + str((int(files.rpps(5)[-1]) + 1) % 10)
    source = files.write_mssante(tmp_path, [*GOOD, files.per(500, rpps=wrong, address=f"wrong@{files.DOMAIN}")])
    report = import_extraction(source, tmp_path / "d.sqlite")
    assert report.warnings["rpps_key_invalid"] == 1 and report.warning_lines["rpps_key_invalid"] == [42]
    assert report.rows_kept == 41
    with sqlite3.connect(tmp_path / "d.sqlite") as db:
        assert db.execute("SELECT rpps_key_ok FROM mailbox WHERE idnat = ?", ("8" + wrong,)).fetchone() == (0,)
    found = await IndexDirectory(tmp_path / "d.sqlite").mailboxes("8" + wrong)
    assert [m.address for m in found] == [f"wrong@{files.DOMAIN}"]


def test_an_empty_file_is_refused_and_the_index_is_kept(tmp_path):
    index = tmp_path / "d.sqlite"
    import_extraction(files.write_mssante(tmp_path, GOOD), index)
    empty = tmp_path / "Extraction_Correspondance_MSSante_202609011200.txt"
    empty.write_bytes(b"")
    with pytest.raises(ExtractionError, match="empty file"):
        import_extraction(empty, index)
    assert len(addresses(index)) == 40


def test_a_header_without_rows_is_refused_rather_than_emptying_the_index(tmp_path):
    index = tmp_path / "d.sqlite"
    import_extraction(files.write_mssante(tmp_path, GOOD), index)
    with pytest.raises(ImportRefused, match="no row kept"):
        import_extraction(files.write_mssante(tmp_path, [], stamp="202609011200"), index)
    assert len(addresses(index)) == 40


def test_a_wrong_header_is_refused_before_touching_the_index(tmp_path):
    index = tmp_path / "d.sqlite"
    import_extraction(files.write_mssante(tmp_path, GOOD), index)
    header = [h for h in files.MSSANTE_HEADER if h != "Type de BAL"]
    bad = files.write_mssante(tmp_path, [{k: v for k, v in r.items() if k != "Type de BAL"} for r in GOOD],
                              stamp="202609011200", header=header)
    with pytest.raises(ExtractionError, match="'Type de BAL'"):
        import_extraction(bad, index)
    assert len(addresses(index)) == 40


def test_an_unchanged_file_is_skipped(tmp_path):
    source, index = files.write_mssante(tmp_path, GOOD), tmp_path / "d.sqlite"
    import_extraction(source, index)
    before = index.stat().st_ino
    again = import_extraction(source, index)
    assert again.skipped and again.previous_import
    assert index.stat().st_ino == before
    assert import_extraction(source, index, force=True).rows_kept == 40


async def test_a_newer_file_replaces_the_content_and_a_serving_reader_sees_it(tmp_path):
    index = tmp_path / "d.sqlite"
    import_extraction(files.write_mssante(tmp_path, GOOD), index)
    directory = IndexDirectory(index)
    assert [m.address for m in await directory.mailboxes(files.rpps(1))] == [GOOD[0]["Adresse BAL"]]
    moved = {**GOOD[0], "Adresse BAL": f"nouvelle@{files.DOMAIN}"}
    report = import_extraction(files.write_mssante(tmp_path, [moved, *GOOD[1:]], stamp="202609011200"), index)
    assert report.rows_kept == 40
    found = await directory.mailboxes(files.rpps(1))
    assert [(m.address, m.source) for m in found] == [(f"nouvelle@{files.DOMAIN}", "annuaire extraction 2026-09-01 12:00")]
    await directory.close()


def test_an_older_file_is_refused_unless_forced(tmp_path):
    index = tmp_path / "d.sqlite"
    import_extraction(files.write_mssante(tmp_path, GOOD, stamp="202609011200"), index)
    older = files.write_mssante(tmp_path, GOOD[:20], stamp="202608011200")
    with pytest.raises(ExtractionError, match="older"):
        import_extraction(older, index)
    assert import_extraction(older, index, force=True).rows_kept == 20


def test_the_published_zip_imports_like_the_text(tmp_path):
    report = import_extraction(files.zipped(files.write_mssante(tmp_path, GOOD)), tmp_path / "d.sqlite")
    assert report.member == "Extraction_Correspondance_MSSante_202608011200.txt"
    assert report.file_name.endswith(".zip") and report.rows_kept == 40


def test_the_people_file_is_chosen_among_the_members_of_the_ps_libreacces_zip(tmp_path):
    people = files.write_people(tmp_path, [files.person(1), files.person(2)])
    archive = tmp_path / "PS_LibreAcces_202608010800.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("PS_LibreAcces_Dipl_AutExerc_202608010800.txt", "a|b|\n1|2|\n")
        out.write(people, people.name)
        out.writestr("PS_LibreAcces_SavoirFaire_202608010800.txt", "a|b|\n1|2|\n")
    report = import_extraction(archive, tmp_path / "d.sqlite")
    assert (report.kind, report.member, report.rows_kept) == (PEOPLE, people.name, 2)


def test_importing_one_kind_keeps_the_other(tmp_path):
    index = tmp_path / "d.sqlite"
    import_extraction(files.write_mssante(tmp_path, GOOD), index)
    import_extraction(files.write_people(tmp_path, [files.person(n) for n in range(1, 6)]), index)
    import_extraction(files.write_mssante(tmp_path, GOOD[:30], stamp="202609011200"), index)
    with sqlite3.connect(index) as db:
        assert db.execute("SELECT COUNT(*) FROM person").fetchone() == (5,)
        assert db.execute("SELECT COUNT(*) FROM mailbox").fetchone() == (30,)
        assert dict(db.execute("SELECT kind, rows_kept FROM source")) == {MAILBOXES: 30, PEOPLE: 5}


def test_the_report_and_the_log_carry_counts_not_names(tmp_path):
    short = files.line(files.MSSANTE_HEADER, files.per(99, family="SECRETNAME")).rsplit("|", 5)[0]
    source = files.write_mssante(tmp_path, [*GOOD, short])
    with capture_logs() as logs:
        report = import_extraction(source, tmp_path / "d.sqlite")
    text = "\n".join(report.describe()) + repr(logs)
    assert "rejected too_few_fields" in text and "first lines 42" in text
    assert [e["event"] for e in logs] == ["directory.import"] and logs[0]["rejected"] == {"too_few_fields": 1}
    assert "SECRETNAME" not in text and "FAMILLE" not in text and files.DOMAIN not in text


def test_a_damaged_index_file_is_replaced_by_the_import(tmp_path):
    index = tmp_path / "d.sqlite"
    index.write_bytes(b"not a database" * 100)
    report = import_extraction(files.write_mssante(tmp_path, GOOD), index)
    assert report.rows_kept == 40 and len(addresses(index)) == 40
