"""A small PDF writer for the simple documents Liaison draws itself: wrapped lines of text and ruled tables.

Why not fpdf2: a lab report drawn with it cost ~90 ms of CPU (font parsing and
subsetting per document, then its general layout engine), which capped CR-BIO
rendering at ~11 documents/s. The report only needs paragraphs, headings and a
bordered table repeated across pages, so this module writes the page content
streams directly, with fonts prepared once per process (:mod:`mappings.pdf_fonts`).

The page follows fpdf2's conventions the report used (A4, millimetres from the
top-left, 10 mm margins, automatic page break 15 mm above the bottom, a footer
12 mm from the bottom with ``page n/total``), so the drawing did not change.
Output is deterministic: the same content and ``created`` give the same bytes
(the file identifier is a digest of the content).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from mappings.pdf_fonts import PdfFont, stream

_K = 72 / 25.4                      # points per millimetre
_WIDTH, _HEIGHT = 210.0, 297.0      # A4
_MARGIN, _BOTTOM, _CELL_MARGIN = 10.0, 15.0, 1.0
_LINE_WIDTH = 0.2


class Canvas:
    """Pages being drawn, top to bottom; :meth:`output` writes the PDF."""

    def __init__(self, regular: PdfFont, bold: PdfFont, *, footer: str):
        self._fonts = (regular, bold)
        self._footer = footer
        self._pages: list[list[str]] = []
        self._y = 0.0
        #: Characters written that the fonts have no glyph for (drawn as the missing-glyph box).
        self.missing: set[str] = set()
        self._new_page()

    def clean(self, text: str) -> str:
        """``text`` as the fonts can write it (transliterated for the core fonts)."""
        font = self._fonts[0]
        if font.codes is not None and not text.isascii():
            self.missing.update(c for c in text if c not in font.codes and c >= " ")
        return font.clean(text)

    def space(self, height: float) -> None:
        self._y += height

    def paragraph(self, text: str, *, bold: bool = False, size: float = 9, line_height: float = 5) -> None:
        """``text`` across the page width, wrapped at spaces, one ``line_height`` (mm) a line."""
        font = self._fonts[bold]
        text = self.clean(text)
        for line in wrap(text, font, size, (_WIDTH - 2 * _MARGIN - 2 * _CELL_MARGIN) * _K):
            if self._y + line_height > _HEIGHT - _BOTTOM:
                self._new_page()
            self._text(_MARGIN + _CELL_MARGIN, self._y, line_height, line, font, int(bold), size)
            self._y += line_height

    def table(self, widths: Sequence[float], heading: Sequence[str], rows: Sequence[Sequence[str]], *,
              size: float = 8, line_height: float = 4.5) -> None:
        """A table with every cell ruled; ``heading`` in bold, repeated at the top of each new page."""
        head = self._lay_row(widths, heading, self._fonts[1], size)
        if self._y + _row_height(head, line_height) > _HEIGHT - _BOTTOM:
            self._new_page()
        self._draw_row(widths, head, 1, size, line_height)
        for row in rows:
            lines = self._lay_row(widths, row, self._fonts[0], size)
            if self._y + _row_height(lines, line_height) > _HEIGHT - _BOTTOM:
                self._new_page()
                self._draw_row(widths, head, 1, size, line_height)
            self._draw_row(widths, lines, 0, size, line_height)

    def output(self, *, title: str, author: str, created: datetime) -> bytes:
        """The PDF file: catalog, info, the fonts, then each page and its content stream."""
        total = len(self._pages)
        for number, ops in enumerate(self._pages, 1):
            text = self.clean(f"{self._footer} - page {number}/{total}")
            font = self._fonts[0]
            x = (_WIDTH - font.width(text, 7) / _K) / 2
            self._text_on(ops, x, _HEIGHT - 12, 5, text, font, 0, 7)
        objects: list[bytes] = [b"", b"",
                                _info(title, author, created).encode()]
        font_ids = []
        for font in self._fonts:
            first = len(objects) + 1
            font_ids.append(first)
            follow = [str(first + n) for n in range(1, len(font.objects))]
            objects += [body.format(*follow).encode() if isinstance(body, str) else body for body in font.objects]
        resources = f"<< /Font << /F0 {font_ids[0]} 0 R /F1 {font_ids[1]} 0 R >> >>"
        page_ids = []
        for ops in self._pages:
            page_ids.append(len(objects) + 1)
            objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_WIDTH * _K:.2f} {_HEIGHT * _K:.2f}] "
                           f"/Resources {resources} /Contents {len(objects) + 2} 0 R >>".encode())
            objects.append(stream("\n".join(ops).encode("latin-1")))
        objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
        objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] /Count {total} >>".encode()
        return _file(objects)

    def _new_page(self) -> None:
        self._pages.append([f"{_LINE_WIDTH * _K:.2f} w"])
        self._y = _MARGIN

    def _text(self, x: float, y: float, height: float, text: str, font: PdfFont, index: int, size: float) -> None:
        self._text_on(self._pages[-1], x, y, height, text, font, index, size)

    @staticmethod
    def _text_on(ops: list[str], x: float, y: float, height: float, text: str, font: PdfFont, index: int,
                 size: float) -> None:
        if not text:
            return
        baseline = y + 0.5 * height + 0.3 * size / _K
        ops.append(f"BT /F{index} {size:.2f} Tf {x * _K:.2f} {(_HEIGHT - baseline) * _K:.2f} Td "
                   f"{font.operand(text)} Tj ET")

    def _lay_row(self, widths: Sequence[float], row: Sequence[str], font: PdfFont, size: float) -> list[list[str]]:
        return [wrap(self.clean(value), font, size, (width - 2 * _CELL_MARGIN) * _K)
                for width, value in zip(widths, row)]

    def _draw_row(self, widths: Sequence[float], cells: list[list[str]], index: int, size: float,
                  line_height: float) -> None:
        ops, font, x = self._pages[-1], self._fonts[index], _MARGIN
        height = _row_height(cells, line_height)
        for width, lines in zip(widths, cells):
            ops.append(f"{x * _K:.2f} {(_HEIGHT - self._y - height) * _K:.2f} {width * _K:.2f} {height * _K:.2f} re S")
            for n, line in enumerate(lines):
                self._text_on(ops, x + _CELL_MARGIN, self._y + n * line_height, line_height, line, font, index, size)
            x += width
        self._y += height


def wrap(text: str, font: PdfFont, size: float, width: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` points: at its newlines, then at spaces,
    and inside a word only when the word alone is wider than the line."""
    lines: list[str] = []
    space = font.width(" ", size)
    for paragraph in text.split("\n"):
        if font.width(paragraph, size) <= width:
            lines.append(paragraph)
            continue
        current: str | None = None
        used = 0.0
        for word in paragraph.split(" "):
            word_width = font.width(word, size)
            if current is not None and used + space + word_width <= width:
                current, used = current + " " + word, used + space + word_width
                continue
            if current is not None:
                lines.append(current)
            while word_width > width:
                cut = _fit(word, font, size, width)
                lines.append(word[:cut])
                word = word[cut:]
                word_width = font.width(word, size)
            current, used = word, word_width
        lines.append(current or "")
    return lines


def _fit(word: str, font: PdfFont, size: float, width: float) -> int:
    used = 0.0
    for n, char in enumerate(word):
        used += font.width(char, size)
        if used > width:
            return max(n, 1)
    return len(word)


def _row_height(cells: list[list[str]], line_height: float) -> float:
    return max(len(lines) for lines in cells) * line_height


def _info(title: str, author: str, created: datetime) -> str:
    stamp = created.strftime("D:%Y%m%d%H%M%S")
    offset = created.utcoffset()
    if offset is not None:
        minutes = int(offset.total_seconds()) // 60
        sign = "+" if minutes >= 0 else "-"
        stamp += f"{sign}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}'"
    return (f"<< /Title {_text_string(title)} /Author {_text_string(author)} /Producer (Liaison) "
            f"/CreationDate ({stamp}) >>")


def _text_string(text: str) -> str:
    """A PDF text string: UTF-16BE with its byte-order mark, in hex, so any character is kept."""
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"


def _file(objects: list[bytes]) -> bytes:
    out = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"]
    offsets, position = [], len(out[0])
    for number, body in enumerate(objects, 1):
        chunk = b"%d 0 obj\n" % number + body + b"\nendobj\n"
        offsets.append(position)
        out.append(chunk)
        position += len(chunk)
    digest = hashlib.md5(b"".join(out), usedforsecurity=False).hexdigest().upper()
    xref = [b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)]
    xref += [b"%010d 00000 n \n" % offset for offset in offsets]
    trailer = (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 3 0 R /ID [<{digest}> <{digest}>] >>\n"
               f"startxref\n{position}\n%%EOF\n").encode()
    return b"".join(out + xref + [trailer])
