"""A readable PDF of a laboratory report, for the CR-BIO FR-Document-PDF-copie section.

CR-BIO 2024.01 requires a PDF copy of the report in every document. When the
laboratory sent its own PDF (an OBX of type ED) that one is carried; otherwise
:func:`render_report_pdf` draws one from the discrete results (:mod:`mappings.pdf_canvas`):
laboratory, patient, prescriber and collection, then per chapter and battery a
table (examen, résultat, unité, valeurs de référence, interprétation), the
isolates of microbiology, the comments and who validated.

**Characters.** The PDF core fonts (Helvetica) only encode Latin-1 (no ``œ``,
``’``, ``€``...). When the DejaVu Sans TTF is installed (Debian/Ubuntu package
``fonts-dejavu-core``, :data:`FONT_DIRS`), a subset of it is embedded (built once
per process, :mod:`mappings.pdf_fonts`) and every character is written as is; otherwise Helvetica is used and text outside Latin-1 is
transliterated (``œ`` → ``oe``, typographic quotes → ASCII, other accented
letters stripped of their accent, anything else → ``?``) so the PDF never fails
to render. The font in use is :func:`font_family`.

**Determinism.** The creation date is set from ``created`` and the file
identifier is a digest of the content, so the same report and date give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from mappings.lab_codes import Tables, chapter_for, interpretation
from mappings.pdf_canvas import Canvas
from mappings.pdf_fonts import core_font, embedded_font, latin1
from mappings.site import Site
from router.adt import AdtEvent
from router.lab_model import Battery, Isolate, LabReport, LabResult

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
             Path("/usr/local/share/fonts/dejavu"))
_FAMILY = "DejaVu"
#: The results table's columns, in the PDF and in the CR-BIO narrative alike.
COLUMNS = ("Examen", "Résultat", "Unité", "Valeurs de référence", "Interprétation")
_STATUS_NOTES = {"C": " (corrigé)", "D": " (annulé)", "P": " (provisoire)"}
WIDTHS = (62, 34, 24, 36, 34)
__all__ = ["COLUMNS", "FONT_DIRS", "WIDTHS", "font_family", "font_files", "latin1", "render_report_pdf"]


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


def render_report_pdf(report: LabReport, patient: AdtEvent, *, site: Site, created: datetime,
                      tables: Tables = None, font_dirs: Sequence[Path] = FONT_DIRS) -> bytes:
    """The PDF (bytes) of a lab report; ``created`` is its creation date (reproducible output).

    ``font_dirs`` are searched for DejaVu Sans; with none found the core font is used. A report
    with characters outside the fonts' ready-made subset is drawn a second time with them added.
    """
    files = font_files(font_dirs)
    canvas = _draw(report, patient, site, tables, _fonts(files))
    if canvas.missing and files is not None:
        canvas = _draw(report, patient, site, tables, _fonts(files, canvas.missing))
    return canvas.output(title="Compte rendu d'examens biologiques", author=site.name, created=created)


def _fonts(files: tuple[Path, Path] | None, extra: set[str] = frozenset()):
    if files is None:
        return core_font(False), core_font(True)
    return embedded_font(files[0], extra), embedded_font(files[1], extra)


def _draw(report: LabReport, patient: AdtEvent, site: Site, tables: Tables, fonts) -> Canvas:
    pdf = Canvas(*fonts, footer=site.name)
    pdf.paragraph("Compte rendu d'examens biologiques", bold=True, size=15, line_height=7.5)
    pdf.paragraph(f"{site.name} - {site.house_number} {site.street_name}, {site.postal_code} {site.city}".strip())
    pdf.space(2)
    pdf.paragraph(f"Patient : {_patient_name(patient)}", bold=True)
    details = [f"né(e) le {display_time(patient.ins.birth_date)}" if patient.ins and patient.ins.birth_date else "",
               f"IPP {patient.ipp}" if patient.ipp else "",
               f"INS {patient.ins.matricule}" if patient.ins else ""]
    pdf.paragraph(" - ".join(d for d in details if d))
    prescriber = report.prescriber
    if prescriber is not None:
        pdf.paragraph(f"Prescripteur : {_person(prescriber)}")
    if report.collected:
        pdf.paragraph(f"Prélèvement : {display_time(report.collected)}")
    if report.placer_order or report.filler_order:
        pdf.paragraph(f"Demande : {report.placer_order or report.filler_order}")
    for (code, name), batteries in _by_chapter(report, tables).items():
        pdf.space(3)
        pdf.paragraph(name.upper(), bold=True, size=12, line_height=6)
        for battery in batteries:
            _battery(pdf, battery, tables)
    validator, when = report.validation
    if validator is not None:
        pdf.space(4)
        pdf.paragraph(f"Validé par {_person(validator)}" + (f" le {display_time(when)}" if when else ""), bold=True)
    return pdf


def _by_chapter(report: LabReport, tables: Tables) -> dict[tuple[str, str], list[Battery]]:
    chapters: dict[tuple[str, str], list[Battery]] = {}
    for battery in report.batteries:
        chapters.setdefault(chapter_for(battery, tables), []).append(battery)
    return chapters


def _battery(pdf: Canvas, battery: Battery, tables: Tables) -> None:
    pdf.space(1)
    pdf.paragraph(battery.code.label or "Examens", bold=True)
    if battery.specimen is not None and (battery.specimen.type or battery.specimen.collected):
        what = battery.specimen.type.label
        pdf.paragraph("Échantillon : " + " - ".join(p for p in (what, display_time(battery.specimen.collected)) if p))
    rows = [_row(r, tables) for r in battery.results]
    for isolate in battery.isolates:
        rows.extend(_isolate_rows(isolate, tables))
    if rows:
        pdf.table(WIDTHS, COLUMNS, rows)
    for comment in battery.comments:
        pdf.paragraph(f"Commentaire : {comment}")


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
