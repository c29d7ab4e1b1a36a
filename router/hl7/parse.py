"""Raw HL7 v2 bytes to a parsed message: charset, segment terminators, header, python-hl7 tree.

This is the one entry for code that needs the full field tree (the router
stages). The door (MLLP listener) needs only :func:`router.hl7.msh.read_header`.
Every failure is a :class:`~router.errors.ParseError` with a readable reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import hl7
import structlog

from router.errors import ParseError
from router.hl7.charset import CharsetError, decode
from router.hl7.msh import MshHeader, read_header
from router.hl7.runs import MARKER, set_runs_aside
from router.hl7.segments import normalise_segments

log = structlog.get_logger(__name__)

@dataclass
class ParsedMessage:
    """A decoded, normalised message with its header and python-hl7 tree."""

    short_text: str            # the text with each long base64 run a marker (``runs``): what the PFI path reads
    codec: str                 # the Python codec used (answer in the same one)
    header: MshHeader
    message: hl7.Message
    lossy: bool = False        # some bytes did not match the charset and were replaced (U+FFFD)
    runs: dict[str, str] = field(default_factory=dict)     # marker -> the run (the same str as the tree's leaf)

    @cached_property
    def text(self) -> str:
        """Decoded, ``\\r``-separated, no blank segments; rebuilt with its runs only for a reader that asks."""
        if not self.runs:
            return self.short_text
        return MARKER.sub(lambda found: self.runs.get(found.group(), found.group()), self.short_text)


def parse_message(raw: bytes, default_charset: str = "utf-8", *, strict_charset: bool = False) -> ParsedMessage:
    """Decode (MSH-18, else ``default_charset``), normalise, read the MSH and parse.

    Bytes invalid in the codec are replaced and flagged ``lossy`` (logged with the
    control id); with ``strict_charset=True`` they raise :class:`CharsetError` instead.
    """
    lossy = False
    try:
        text, codec = decode(raw, default_charset)
    except CharsetError as exc:
        if strict_charset:
            raise
        text, codec, lossy = exc.text, exc.codec, True
    text = normalise_segments(text)
    if not text:
        raise ParseError("empty message")
    header = read_header(text)
    if lossy:
        log.warning("hl7.charset_replaced", control_id=header.control_id, codec=codec)
    text, runs = set_runs_aside(text)          # the full text is not kept
    try:
        message = hl7.parse(text)
    except Exception as exc:  # python-hl7 raises ParseException, ValueError, IndexError...
        raise ParseError(f"HL7 parse failed: {exc}") from exc
    if runs:
        _put_back(message, dict(runs))
    return ParsedMessage(short_text=text, codec=codec, header=header, message=message, lossy=lossy, runs=runs)


def _put_back(node: list, runs: dict[str, str]) -> None:
    """Each marker leaf of the tree becomes its run again."""
    for index, item in enumerate(node):
        if isinstance(item, str):
            if item in runs:
                node[index] = runs.pop(item)
        elif isinstance(item, list):
            _put_back(item, runs)
