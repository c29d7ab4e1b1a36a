"""The PDF writer behind the lab report (mappings.pdf_canvas, mappings.pdf_fonts): wrapping, pages, fonts built once."""

from __future__ import annotations

import re
import zlib
from datetime import datetime, timezone

import pytest

from mappings.pdf_canvas import Canvas, wrap
from mappings.pdf_fonts import REPERTOIRE, core_font, embedded_font
from mappings.report_pdf import font_files

CREATED = datetime(2024, 3, 12, 11, 0, tzinfo=timezone.utc)


def streams(pdf: bytes) -> list[bytes]:
    out = []
    for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(raw))
        except zlib.error:
            continue
    return out


def test_wrap_breaks_at_spaces_keeps_indent_and_cuts_only_overlong_words():
    font = core_font(False)
    assert wrap("  Amoxicilline clavulanate", font, 8, 60) == ["  Amoxicilline", "clavulanate"]
    assert wrap("a\n\nb", font, 8, 100) == ["a", "", "b"]
    cut = wrap("x" * 40, font, 8, 50)
    assert "".join(cut) == "x" * 40 and len(cut) > 1
    assert all(font.width(line, 8) <= 50 for line in cut)


def test_a_long_table_runs_over_pages_with_its_heading_repeated_and_the_page_count_in_the_footer():
    pdf = Canvas(core_font(False), core_font(True), footer="Site")
    pdf.table((95, 95), ("Examen", "Résultat"), [(f"ligne {n}", "1") for n in range(120)])
    out = pdf.output(title="Titre", author="Site", created=CREATED)
    assert out.startswith(b"%PDF-1.4") and out.endswith(b"%%EOF\n")
    assert b"/Count 3" in out
    pages = [s.decode("latin-1") for s in streams(out)]
    assert len(pages) == 3
    assert all("(Examen) Tj" in page for page in pages)
    assert "(Site - page 3/3) Tj" in pages[2] and "(ligne 119) Tj" in pages[2]
    startxref = int(out.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert out[startxref:].startswith(b"xref\n")


def test_embedded_subset_is_built_once_and_a_character_outside_it_gets_its_own_glyph():
    files = font_files()
    if files is None:
        pytest.skip("DejaVu Sans is not installed (package fonts-dejavu-core)")
    assert embedded_font(files[0]) is embedded_font(files[0], "abc é")
    omega = "Ω"
    assert omega not in REPERTOIRE
    base, extended = embedded_font(files[0]), embedded_font(files[0], omega)
    assert omega not in base.codes and extended.codes[omega] != "0000"
    pdf = Canvas(base, embedded_font(files[1]), footer="Site")
    pdf.paragraph(f"Résistance {omega}")
    assert pdf.missing == {omega}
    pdf = Canvas(extended, embedded_font(files[1], omega), footer="Site")
    pdf.paragraph(f"Résistance {omega}")
    out = pdf.output(title="T", author="A", created=CREATED)
    assert not pdf.missing
    assert any(b"<03A9>" in s for s in streams(out))          # the ToUnicode map carries it
    assert extended.codes[omega].encode() in b"".join(streams(out))
