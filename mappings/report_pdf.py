"""A readable PDF of a laboratory report, for the CR-BIO FR-Document-PDF-copie section.

CR-BIO 2024.01 requires a PDF copy of the report in every document. When the
laboratory sent its own PDF (an OBX of type ED) that one is carried; otherwise
:func:`render_report_pdf` draws one from the discrete results with fpdf2:
laboratory, patient, prescriber and collection, then per chapter and battery a
table (examen, résultat, unité, valeurs de référence, interprétation), the
isolates of microbiology, the comments and who validated.

**Characters.** fpdf2's core fonts (Helvetica) only encode Latin-1 (no ``œ``,
``’``, ``€``...). When the DejaVu Sans TTF is installed (Debian/Ubuntu package
``fonts-dejavu-core``, :data:`FONT_DIRS`), it is embedded and every character is
written as is; otherwise Helvetica is used and text outside Latin-1 is
transliterated (``œ`` → ``oe``, typographic quotes → ASCII, other accented
letters stripped of their accent, anything else → ``?``) so the PDF never fails
to render. The font in use is :func:`font_family`.

**Determinism.** The creation date is set from ``created`` and fpdf2 derives the
file identifier from the content, so the same report and date give the same bytes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from mappings.lab_codes import Tables, chapter_for, interpretation
from mappings.site import Site
from router.adt import AdtEvent
from router.lab_model import Battery, Isolate, LabReport, LabResult

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
             Path("/usr/local/share/fonts/dejavu"))
_FAMILY = "DejaVu"
_ASCII = {"œ": "oe", "Œ": "OE", "’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...",
          "€": "EUR", "≤": "<=", "≥": ">=", "\u00a0": " ", "\u202f": " "}
#: The results table's columns, in the PDF and in the CR-BIO narrative alike.
COLUMNS = ("Examen", "Résultat", "Unité", "Valeurs de référence", "Interprétation")
_STATUS_NOTES = {"C": " (corrigé)", "D": " (annulé)", "P": " (provisoire)"}
WIDTHS = (62, 34, 24, 36, 34)


def font_files(font_dirs: Sequence[Path] = FONT_DIRS) -> tuple[Path, Path] | None:
    """DejaVu Sans regular and bold when installed in one of ``font_dirs``, else None."""
    for folder in font_dirs:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


def font_family(font_dirs: Sequence[Path] = FONT_DIRS) -> str:
    """The font the PDF is written in: ``DejaVu`` (Unicode) or ``Helvetica`` (Latin-1, transliterated)."""
    return _FAMILY if font_files(font_dirs) else "Helvetica"


def latin1(text: str) -> str:
    """``text`` reduced to Latin-1 for the core fonts (see the module docstring)."""
    out = []
    for char in text:
        char = _ASCII.get(char, char)
        if all(ord(c) < 256 for c in char):
            out.append(char)
            continue
        stripped = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        out.append(stripped if stripped and all(ord(c) < 256 for c in stripped) else "?")
    return "".join(out)


def render_report_pdf(report: LabReport, patient: AdtEvent, *, site: Site, created: datetime,
                      tables: Tables = None, font_dirs: Sequence[Path] = FONT_DIRS) -> bytes:
    """The PDF (bytes) of a lab report; ``created`` is its creation date (reproducible output).

    ``font_dirs`` are searched for DejaVu Sans; with none found the core font is used.
    """
    pdf = _Pdf(site, font_files(font_dirs))
    pdf.set_creation_date(created)
    pdf.set_title("Compte rendu d'examens biologiques")
    pdf.set_author(site.name)
    pdf.add_page()
    pdf.heading("Compte rendu d'examens biologiques", size=15)
    pdf.line_text(f"{site.name} - {site.house_number} {site.street_name}, {site.postal_code} {site.city}".strip())
    pdf.ln(2)
    pdf.line_text(f"Patient : {_patient_name(patient)}", bold=True)
    details = [f"né(e) le {display_time(patient.ins.birth_date)}" if patient.ins and patient.ins.birth_date else "",
               f"IPP {patient.ipp}" if patient.ipp else "",
               f"INS {patient.ins.matricule}" if patient.ins else ""]
    pdf.line_text(" - ".join(d for d in details if d))
    prescriber = report.prescriber
    if prescriber is not None:
        pdf.line_text(f"Prescripteur : {_person(prescriber)}")
    if report.collected:
        pdf.line_text(f"Prélèvement : {display_time(report.collected)}")
    if report.placer_order or report.filler_order:
        pdf.line_text(f"Demande : {report.placer_order or report.filler_order}")
    for (code, name), batteries in _by_chapter(report, tables).items():
        pdf.ln(3)
        pdf.heading(name.upper(), size=12)
        for battery in batteries:
            _battery(pdf, battery, tables)
    validator, when = report.validation
    if validator is not None:
        pdf.ln(4)
        pdf.line_text(f"Validé par {_person(validator)}" + (f" le {display_time(when)}" if when else ""), bold=True)
    return bytes(pdf.output())


class _Pdf(FPDF):
    def __init__(self, site: Site, files: tuple[Path, Path] | None):
        super().__init__(format="A4")
        self._site = site
        self.unicode = files is not None
        if files is not None:
            self.add_font(_FAMILY, "", str(files[0]))
            self.add_font(_FAMILY, "B", str(files[1]))
            self.family_name = _FAMILY
        else:
            self.family_name = "Helvetica"
        self.set_auto_page_break(auto=True, margin=15)
        self.set_font(self.family_name, size=9)

    def clean(self, text: str) -> str:
        return text if self.unicode else latin1(text)

    def heading(self, text: str, *, size: int) -> None:
        self.set_font(self.family_name, "B", size)
        self.multi_cell(0, size * 0.5, self.clean(text), new_x="LMARGIN", new_y="NEXT")
        self.set_font(self.family_name, "", 9)

    def line_text(self, text: str, *, bold: bool = False) -> None:
        self.set_font(self.family_name, "B" if bold else "", 9)
        self.multi_cell(0, 5, self.clean(text), new_x="LMARGIN", new_y="NEXT")
        self.set_font(self.family_name, "", 9)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family_name, "", 7)
        self.cell(0, 5, self.clean(f"{self._site.name} - page {self.page_no()}/{{nb}}"), align="C")


def _by_chapter(report: LabReport, tables: Tables) -> dict[tuple[str, str], list[Battery]]:
    chapters: dict[tuple[str, str], list[Battery]] = {}
    for battery in report.batteries:
        chapters.setdefault(chapter_for(battery, tables), []).append(battery)
    return chapters


def _battery(pdf: _Pdf, battery: Battery, tables: Tables) -> None:
    pdf.ln(1)
    pdf.line_text(battery.code.label or "Examens", bold=True)
    if battery.specimen is not None and (battery.specimen.type or battery.specimen.collected):
        what = battery.specimen.type.label
        pdf.line_text("Échantillon : " + " - ".join(p for p in (what, display_time(battery.specimen.collected)) if p))
    rows = [_row(r, tables) for r in battery.results]
    for isolate in battery.isolates:
        rows.extend(_isolate_rows(isolate, tables))
    if rows:
        _table(pdf, rows)
    for comment in battery.comments:
        pdf.line_text(f"Commentaire : {comment}")


def _isolate_rows(isolate: Isolate, tables: Tables) -> list[tuple[str, ...]]:
    rows = [(f"Isolat {isolate.sub_id} : {isolate.organism.label}", "", "", "", "")]
    rows += [_row(r, tables, indent="  ") for r in isolate.results]
    for child in isolate.batteries:
        rows.append((f"  {child.code.label or 'Antibiogramme'}", "", "", "", ""))
        rows += [_row(r, tables, indent="    ") for r in child.results]
    rows += [(f"  Commentaire : {c}", "", "", "", "") for c in isolate.comments]
    return rows


def _row(result: LabResult, tables: Tables, indent: str = "") -> tuple[str, ...]:
    label = result.code.label or result.code.code
    if result.comments:
        label += "\n" + "\n".join(f"({c})" for c in result.comments)
    return (indent + label, display_with_status(result), result.units.code or result.units.display,
            result.reference_range, display_interpretation(result, tables))


def display_value(result: LabResult) -> str:
    """The value as a reader expects it (comparator and decimal comma kept French)."""
    if result.kind == "range" and result.low and result.high and not result.comparator:
        return f"{result.low} - {result.high}".replace(".", ",")
    if result.kind in ("numeric", "range"):
        return f"{result.comparator}{result.value}".replace(".", ",")
    return result.value


def display_with_status(result: LabResult) -> str:
    """:func:`display_value` followed by what a corrected, cancelled or provisional result is (OBX-11)."""
    return display_value(result) + _STATUS_NOTES.get(result.status, "")


def display_interpretation(result: LabResult, tables: Tables = None) -> str:
    """The interpretation flags (OBX-8) in words from the ``lab_interpretation`` table, else as the lab sent them."""
    words = [found[1] for found in (interpretation(flag, tables) for flag in result.flags) if found]
    return ", ".join(words) or ", ".join(result.flags)


def _table(pdf: _Pdf, rows: list[tuple[str, ...]]) -> None:
    pdf.set_font(pdf.family_name, "", 8)
    with pdf.table(col_widths=WIDTHS, headings_style=FontFace(emphasis="BOLD"), line_height=4.5,
                   text_align="LEFT", first_row_as_headings=True) as table:
        for row in (COLUMNS, *rows):
            cells = table.row()
            for value in row:
                cells.cell(pdf.clean(value))
    pdf.set_font(pdf.family_name, "", 9)


def _patient_name(patient: AdtEvent) -> str:
    if patient.ins is not None and patient.ins.birth_name:
        return f"{patient.ins.birth_name} {patient.ins.given_names or patient.ins.first_given}".strip()
    return f"{patient.family} {patient.given}".strip() or "Inconnu"


def _person(who) -> str:
    return " ".join(p for p in ("Dr", who.given, who.family) if p)


def display_time(ts: str) -> str:
    """An HL7 TS as a French reader expects it: ``20240312081500+0100`` → ``12/03/2024 08:15``.

    The CR-BIO narrative uses it too, so the PDF copy and the CDA text show the same
    dates; a value too short to hold a day is shown as sent.
    """
    digits = ts[:12]
    if len(digits) < 8:
        return ts
    day = f"{digits[6:8]}/{digits[4:6]}/{digits[:4]}"
    return f"{day} {digits[8:10]}:{digits[10:12]}" if len(digits) >= 12 else day
