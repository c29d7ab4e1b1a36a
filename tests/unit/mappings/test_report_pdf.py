"""The lab report PDF (mappings.report_pdf): every corpus report draws, reproducibly, with its text."""

from __future__ import annotations

import re
import zlib
from datetime import datetime, timezone

import pytest

from mappings.report_pdf import font_family, font_files, latin1, render_report_pdf
from mappings.site import Site
from router.adt import read_patient_visit
from router.lab import read_lab_report
from channels.testing.adt_messages import CORSICA_2B
from channels.testing.lab_messages import BIOLOGIST_ACCENTS, CORPUS

SITE = Site()
CREATED = datetime(2024, 3, 12, 11, 0, tzinfo=timezone.utc)


def draw(name: str, **options) -> bytes:
    text = CORPUS[name]()
    return render_report_pdf(read_lab_report(text), read_patient_visit(text), site=SITE,
                             created=options.pop("created", CREATED), **options)


def page_text(pdf: bytes) -> str:
    """The content streams of a core-font PDF, inflated and decoded as Latin-1."""
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
    out = []
    for raw in streams:
        try:
            out.append(zlib.decompress(raw).decode("latin-1"))
        except zlib.error:
            continue
    return "".join(out)


@pytest.mark.parametrize("name", CORPUS)
def test_every_corpus_report_draws_a_pdf(name):
    pdf = draw(name)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")


def test_same_report_and_date_give_the_same_bytes():
    assert draw("microbiology_isolates") == draw("microbiology_isolates")
    assert draw("microbiology_isolates") != draw("microbiology_isolates",
                                                 created=datetime(2024, 3, 13, tzinfo=timezone.utc))


def test_unicode_font_is_embedded_when_installed():
    if font_files() is None:
        pytest.skip("DejaVu Sans is not installed (package fonts-dejavu-core): the core-font path is tested below")
    assert font_family() == "DejaVu"
    assert b"DejaVu" in draw("accents_utf8")


def test_core_font_fallback_writes_the_report_text_in_latin1():
    pdf = draw("microbiology_isolates", font_dirs=())
    text = page_text(pdf)
    assert b"/Helvetica" in pdf and b"DejaVu" not in pdf
    for expected in ("TESTLIAISON", "Escherichia coli", "Antibiogramme", "Amoxicilline", "Résistant",
                     "Commentaire : Prélèvement reçu dans les délais.", "Dr Anne BIOLOGISTE"):
        assert expected in text, expected


def test_core_font_fallback_transliterates_what_latin1_cannot_hold():
    text = page_text(draw("accents_utf8", font_dirs=()))
    assert CORSICA_2B.family in text                          # É is Latin-1: kept
    assert "GÉRARD-LOEUVRE" in text and BIOLOGIST_ACCENTS.family not in text     # Œ is not: OE
    assert "OEdème signalé ; contrôle à jeun conseillé - « urgent »." in text


def test_latin1_transliteration():
    assert latin1("Œdème — « urgent » ’ ≥ 5 € ĉ 中") == "OEdème - « urgent » ' >= 5 EUR c ?"
    assert latin1("Hélène µmol/l") == "Hélène µmol/l"


def test_a_character_outside_the_ready_made_subset_is_embedded_not_dropped():
    if font_files() is None:
        pytest.skip("DejaVu Sans is not installed (package fonts-dejavu-core)")
    text = CORPUS["accents_utf8"]().replace("Œdème", "Ωdème")
    pdf = render_report_pdf(read_lab_report(text), read_patient_visit(text), site=SITE, created=CREATED)
    inflated = b"".join(zlib.decompress(raw) for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S))
    assert b"<03A9>" in inflated
