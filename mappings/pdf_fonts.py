"""The fonts of the PDFs Liaison draws (:mod:`mappings.pdf_canvas`), each built once per process.

Drawing a lab report with fpdf2 cost ~90 ms, more than half of it parsing the
DejaVu TTF (``add_font``) and subsetting it again for every document. Here a
TrueType font is parsed and subset **once** to :data:`REPERTOIRE` (Latin-1,
Latin Extended-A, the usual typographic punctuation and symbols: ~420 glyphs,
~15 KB deflated a face) and every PDF embeds those same ready-made bytes. A
document using a character outside the repertoire gets a subset with that
character added (cached too, a few at a time), so every character the font has
is still written as is.

The core-font fallback (Helvetica, WinAnsi) needs no embedding: its widths come
from fpdf2's metrics table, and text goes through :func:`latin1` first.
"""

from __future__ import annotations

import io
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont
from fpdf.fonts import CORE_FONTS_CHARWIDTHS

#: Characters every embedded subset holds, whatever the document says.
REPERTOIRE = frozenset(chr(c) for c in (*range(0x20, 0x7F), *range(0xA0, 0x180), *range(0x2010, 0x2045),
                                        0x20AC, 0x2122, 0x2212, 0x2264, 0x2265, 0x2260, 0x00B5, 0x03BC))
_ASCII = {"œ": "oe", "Œ": "OE", "’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...",
          "€": "EUR", "≤": "<=", "≥": ">=", "\u00a0": " ", "\u202f": " "}
_ESCAPES = str.maketrans({"\\": "\\\\", "(": "\\(", ")": "\\)", "\r": "\\r"})


def latin1(text: str) -> str:
    """``text`` reduced to Latin-1 for the core fonts: ``œ`` → ``oe``, typographic quotes → ASCII,
    other accented letters stripped of their accent, anything else → ``?``."""
    if text.isascii():
        return text
    out = []
    for char in text:
        char = _ASCII.get(char, char)
        if all(ord(c) < 256 for c in char):
            out.append(char)
            continue
        stripped = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        out.append(stripped if stripped and all(ord(c) < 256 for c in stripped) else "?")
    return "".join(out)


@dataclass(frozen=True)
class PdfFont:
    """One face as a PDF needs it: advance widths (1/1000 em), how text becomes a string operand,
    and the PDF objects that declare it, font dictionary first: dictionaries are ``str`` where ``{0}``,
    ``{1}``... stand for the ids of the objects that follow the font dictionary, streams are ready ``bytes``."""

    name: str
    widths: dict[str, int]
    default_width: int
    codes: dict[str, str] | None        # char → 4 hex digits (glyph id), None for a core font
    objects: tuple[str | bytes, ...]

    def width(self, text: str, size: float) -> float:
        """The width of ``text`` at ``size`` points, in points."""
        get, default = self.widths.get, self.default_width
        return sum(get(c, default) for c in text) * size / 1000

    def clean(self, text: str) -> str:
        return text if self.codes is not None else latin1(text)

    def operand(self, text: str) -> str:
        """``text`` (already :meth:`clean`) as a PDF string operand for ``Tj``."""
        if self.codes is None:
            return "(" + text.translate(_ESCAPES) + ")"
        get = self.codes.get
        return "<" + "".join(get(c, "0000") for c in text) + ">"


def core_font(bold: bool) -> PdfFont:
    """Helvetica (or Helvetica-Bold), one of the 14 standard fonts, WinAnsi-encoded."""
    return _core_font(bold)


@lru_cache(maxsize=2)
def _core_font(bold: bool) -> PdfFont:
    name = "Helvetica-Bold" if bold else "Helvetica"
    widths = dict(CORE_FONTS_CHARWIDTHS["helveticaB" if bold else "helvetica"])
    body = f"<< /Type /Font /Subtype /Type1 /BaseFont /{name} /Encoding /WinAnsiEncoding >>"
    return PdfFont(name, widths, 556, None, (body,))


def embedded_font(path: Path, text_chars: Iterable[str] = ()) -> PdfFont:
    """The TrueType font at ``path`` subset to :data:`REPERTOIRE` plus whatever of ``text_chars`` it
    lacks; built once per (font, extra characters)."""
    extra = frozenset(c for c in text_chars if c not in REPERTOIRE and c >= " ")
    return _embedded_font(str(path), extra)


@lru_cache(maxsize=16)
def _embedded_font(path: str, extra: frozenset[str]) -> PdfFont:
    font = TTFont(path, recalcTimestamp=False, lazy=False)
    options = subset.Options()
    options.name_IDs, options.layout_features, options.hinting, options.notdef_outline = [], [], False, True
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "FFTM", "MATH"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(ord(c) for c in REPERTOIRE | extra))
    subsetter.subset(font)
    buffer = io.BytesIO()
    font.save(buffer)
    program = buffer.getvalue()

    scale = 1000 / font["head"].unitsPerEm
    order = font.getGlyphOrder()
    gid = {name: index for index, name in enumerate(order)}
    advances = [round(font["hmtx"][name][0] * scale) for name in order]
    cmap = font.getBestCmap()
    codes, widths, unicode_of = {}, {}, {}
    for code, glyph in sorted(cmap.items()):
        char, index = chr(code), gid[glyph]
        codes[char], widths[char] = f"{index:04X}", advances[index]
        unicode_of.setdefault(index, code)
    base = Path(path).stem.replace(" ", "")
    tag = "".join(chr(65 + (b % 26)) for b in zlib.crc32(program).to_bytes(4, "big")) + "LI"
    name = f"{tag}+{base}"
    head, hhea, os2 = font["head"], font["hhea"], font["OS/2"]
    bbox = " ".join(str(round(v * scale)) for v in (head.xMin, head.yMin, head.xMax, head.yMax))
    stem = round(50 + (os2.usWeightClass / 65) ** 2)
    cap = round(getattr(os2, "sCapHeight", hhea.ascent) * scale)
    objects = (
        f"<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H "
        f"/DescendantFonts [{{0}} 0 R] /ToUnicode {{3}} 0 R >>",
        f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} "
        f"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor {{1}} 0 R "
        f"/DW {advances[0]} /W [0 [{' '.join(map(str, advances))}]] /CIDToGIDMap /Identity >>",
        f"<< /Type /FontDescriptor /FontName /{name} /Flags 32 /FontBBox [{bbox}] /ItalicAngle 0 "
        f"/Ascent {round(hhea.ascent * scale)} /Descent {round(hhea.descent * scale)} /CapHeight {cap} "
        f"/StemV {stem} /MissingWidth {advances[0]} /FontFile2 {{2}} 0 R >>",
        stream(program, f"/Length1 {len(program)}"),
        stream(_to_unicode(unicode_of).encode()),
    )
    return PdfFont(name, widths, advances[0], codes, objects)


def stream(data: bytes, entries: str = "") -> bytes:
    """A deflated PDF stream object body."""
    packed = zlib.compress(data, 6)
    return (f"<< /Filter /FlateDecode /Length {len(packed)} {entries}>>\nstream\n".encode() + packed
            + b"\nendstream")


def _to_unicode(unicode_of: dict[int, int]) -> str:
    """The ToUnicode CMap (glyph id → character) that lets readers copy and search the text."""
    pairs = sorted(unicode_of.items())
    lines = ["/CIDInit /ProcSet findresource begin", "12 dict begin", "begincmap",
             "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
             "/CMapName /Adobe-Identity-UCS def", "/CMapType 2 def",
             "1 begincodespacerange", "<0000> <FFFF>", "endcodespacerange"]
    for start in range(0, len(pairs), 100):
        chunk = pairs[start:start + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines += [f"<{g:04X}> <{_utf16(u)}>" for g, u in chunk]
        lines.append("endbfchar")
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return "\n".join(lines)


def _utf16(code: int) -> str:
    return chr(code).encode("utf-16-be").hex().upper()
