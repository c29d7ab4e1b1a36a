"""HL7 v2 escape sequences, done right for French text.

python-hl7's helpers turn accents into ``\\XE9\\``, decode ``\\Xhh\\`` byte by byte
(UTF-8 becomes mojibake), map ``.br`` to a raw ``\\r`` and swallow an unterminated
escape (spec/hl7-libraries.md P8–P10). Here:

* :func:`unescape` — ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` (and ``\\P\\``, the 2.7 truncation
  char) to the delimiters; ``\\Xhh..\\`` decoded as *bytes* in the message codec;
  ``\\.br\\`` and ``\\.sp\\`` to ``"\\n"``; highlighting ``\\H\\``/``\\N\\`` and the
  other formatting commands dropped; anything else (``\\Zxx\\``, ``\\C..\\``,
  ``\\M..\\``, malformed hex) and an unterminated escape kept literally.
* :func:`escape` — only the delimiters, ``\\r`` (as ``\\X0D\\``) and ``\\n`` (as
  ``\\.br\\``); never accents. ``unescape(escape(s)) == s`` for every ``s``.

``encoding_chars`` is MSH-2 (``^~\\&`` or ``^~\\&#``); the field separator (MSH-1) is
a keyword argument because it is not one of the encoding characters.
"""

from __future__ import annotations

import re

DEFAULT_ENCODING_CHARS = "^~\\&"

_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_DROPPED_FORMATTING = re.compile(r"\.(?:fi|nf|in[+-]?\d*|ti[+-]?\d*|sk[+-]?\d*)")
_SPACES = re.compile(r"\.sp\s*[+]?(\d*)")


def _delimiters(encoding_chars: str, field_sep: str) -> dict[str, str]:
    component, repetition, esc, subcomponent = encoding_chars[:4]
    table = {"F": field_sep, "S": component, "T": subcomponent, "R": repetition, "E": esc}
    if len(encoding_chars) > 4:
        table["P"] = encoding_chars[4]
    return table


def unescape(value: str, encoding_chars: str = DEFAULT_ENCODING_CHARS, *,
             field_sep: str = "|", codec: str = "utf-8") -> str:
    """Replace escape sequences in one field/component value; see the module docstring."""
    esc = encoding_chars[2]
    if esc not in value:
        return value
    table = _delimiters(encoding_chars, field_sep)
    out: list[str] = []
    pos = 0
    length = len(value)
    while pos < length:
        start = value.find(esc, pos)
        if start < 0:
            out.append(value[pos:])
            break
        out.append(value[pos:start])
        end = value.find(esc, start + 1)
        if end < 0:                                  # unterminated: keep as is
            out.append(value[start:])
            break
        out.append(_expand(value[start + 1:end], value[start:end + 1], table, codec))
        pos = end + 1
    return "".join(out)


def _expand(body: str, literal: str, table: dict[str, str], codec: str) -> str:
    """One escape sequence body (between the escape chars) to its text."""
    if body in table:
        return table[body]
    if body in ("H", "N"):
        return ""
    if body.startswith("X") and _HEX.fullmatch(body, 1):
        try:
            return bytes.fromhex(body[1:]).decode(codec)
        except (UnicodeDecodeError, LookupError):
            return literal
    if body == ".br" or body == ".ce":
        return "\n"
    spaces = _SPACES.fullmatch(body)
    if spaces:
        return "\n" * int(spaces.group(1) or 1)
    if _DROPPED_FORMATTING.fullmatch(body):
        return ""
    return literal


def escape(value: str, encoding_chars: str = DEFAULT_ENCODING_CHARS, *, field_sep: str = "|") -> str:
    """Escape delimiters, CR and LF in a value so it can be written into one field."""
    special = {field_sep, "\r", "\n", *encoding_chars}
    if not any(ch in value for ch in special):
        return value
    esc = encoding_chars[2]
    table = {v: f"{esc}{k}{esc}" for k, v in _delimiters(encoding_chars, field_sep).items()}
    table["\r"] = f"{esc}X0D{esc}"
    table["\n"] = f"{esc}.br{esc}"
    return "".join(table.get(ch, ch) for ch in value)
