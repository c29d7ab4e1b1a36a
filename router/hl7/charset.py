"""HL7 v2 character sets: MSH-18 to a Python codec, and decoding that never loses a message.

python-hl7's MLLP reader decodes as ASCII/strict and raises *after* the frame is
consumed, so French data (é, è, à) could not even be NACKed. Here the raw bytes
are sniffed for MSH-18 first (the MSH is ASCII-safe), decoded strictly with the
codec it names, and, when the bytes do not match, decoded again with
``errors="replace"``.

Contract for that fallback: :func:`decode` raises :class:`CharsetError`, a
:class:`~router.errors.ParseError` that *carries the lossy decoding*
(``exc.text``, ``exc.codec``). A caller that wants to go on anyway (answer,
journal, parse) catches it and uses those; a caller that does not care lets it
propagate as an ordinary parse failure. :func:`decode_lenient` does the
catching for you and returns a ``lossy`` flag.
"""

from __future__ import annotations

import codecs

from router.errors import ParseError

#: HL7 table 0211 values (MSH-18) we map, upper-cased. ``None`` = "use the channel default".
CHARSETS: dict[str, str | None] = {
    "": None,
    "ASCII": None,
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UNICODE": "utf-8",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    "GB 18030-2000": "gb18030",
    "BIG-5": "big5",
}

#: MSH-18 value to write for a codec (reverse of :data:`CHARSETS`), for messages we originate.
HL7_NAMES: dict[str, str] = {
    "utf-8": "UNICODE UTF-8",
    "latin-1": "8859/1",
    "iso8859-15": "8859/15",
}

_BOM = b"\xef\xbb\xbf"


class CharsetError(ParseError):
    """The bytes do not match the charset: ``text`` holds them decoded with replacement chars."""

    hl7_code = "207"
    hl7_text = "Application internal error"

    def __init__(self, message: str, *, text: str, codec: str):
        super().__init__(message)
        self.text = text
        self.codec = codec


def codec_for(msh18: str, default: str = "utf-8") -> str:
    """The Python codec for an MSH-18 value; ASCII, empty or unknown values give ``default``.

    ASCII maps to the default on purpose: senders that declare ASCII often send
    Latin-1 or UTF-8 anyway, and the channel default is what the site knows.
    Only the first repetition counts (it is the message's default charset).
    """
    name = msh18.split("~", 1)[0].strip().upper()
    codec = CHARSETS.get(name)
    return _normal(codec or default)


def hl7_name(codec: str) -> str:
    """The MSH-18 value for a codec (``""`` when HL7 has no name we use for it)."""
    return HL7_NAMES.get(_normal(codec), "")


def sniff_msh18(raw: bytes) -> str:
    """MSH-18 read straight from the bytes, ``""`` when absent or when there is no MSH."""
    start = raw.find(b"MSH")
    if start < 0 or start > 8 or len(raw) < start + 8:
        return ""
    sep = raw[start + 3:start + 4]
    end = len(raw)
    for term in (b"\r", b"\n"):
        i = raw.find(term, start, end)
        if i >= 0:
            end = i
    fields = raw[start:end].split(sep)
    if len(fields) < 18:
        return ""
    enc = fields[1]
    value = fields[17]
    if len(enc) > 1:
        value = value.split(enc[1:2], 1)[0]
    return value.decode("ascii", "replace").strip()


def decode(raw: bytes, default: str = "utf-8") -> tuple[str, str]:
    """Decode a message with the codec its MSH-18 names; return (text, codec).

    Raises :class:`CharsetError` (carrying the replacement-decoded text) when
    the bytes are not valid in that codec. A UTF-8 BOM is dropped.
    """
    if raw.startswith(_BOM):
        raw = raw[3:]
    codec = codec_for(sniff_msh18(raw), default)
    try:
        return raw.decode(codec), codec
    except UnicodeDecodeError as exc:
        text = raw.decode(codec, errors="replace")
        raise CharsetError(
            f"message bytes are not valid {codec} (first bad byte at offset {exc.start})",
            text=text, codec=codec,
        ) from exc


def decode_lenient(raw: bytes, default: str = "utf-8") -> tuple[str, str, bool]:
    """Like :func:`decode` but never raises: (text, codec, lossy)."""
    try:
        text, codec = decode(raw, default)
    except CharsetError as exc:
        return exc.text, exc.codec, True
    return text, codec, False


def encode(text: str, codec: str, errors: str = "replace") -> bytes:
    """Encode an outgoing message; characters the codec lacks become ``?`` rather than failing an ACK."""
    return text.encode(codec, errors=errors)


def encode_message(text: str, default: str = "utf-8") -> bytes:
    """Encode a message we built with the codec its own MSH-18 names (``default`` when none)."""
    head = text[:text.find("\r")] if "\r" in text else text[:512]
    return encode(text, codec_for(sniff_msh18(head.encode("ascii", "replace")), default))


def _normal(codec: str) -> str:
    """Canonical codec name so ``latin1``/``ISO-8859-1`` compare equal to ``latin-1``."""
    try:
        name = codecs.lookup(codec).name
    except LookupError:
        return codec
    return {"iso8859-1": "latin-1"}.get(name, name)
