"""The CDA as the structural checks see it: embedded files (base64 payloads) stood in by a few bytes.

Why: a CDA carrying a 20 MB PDF holds ~27 MB of base64 text in one ``value`` (or
``nonXMLBody/text``) element with ``representation="B64"``. The XSD and the CI-SIS
schematrons check the element, its attributes and that it has content, never
what the file says; but Saxon copies the whole text into its own tree (UTF-16),
so one such document grew a worker by ~60 MB of heap for a 9 MB message and cost
~290 ms of schematron time. :func:`without_payloads` returns the document with each
large base64 payload replaced by a short valid base64 stand-in; the checks run on
that, the document sent stays byte for byte the one received.

What this cannot hide: the replaced span holds only base64 characters and
whitespace (the pattern matches nothing else), so no markup is removed and the
document is well-formed exactly when the original is. The payload is checked to
be base64 in length (a multiple of 4 once whitespace is left out).
"""

from __future__ import annotations

import re

from router.errors import ValidationError

#: Payloads up to this size are left in place (an ORU's report PDF, a small letter): not worth it.
THRESHOLD = 64 * 1024
#: The stand-in: base64 of "%PDF-1.4\n" (a non-empty, valid base64 text).
STAND_IN = b"JVBERi0xLjQK"
_PAYLOAD = re.compile(rb'(<(?:[\w.-]+:)?(?:value|text)\b[^<>]*\brepresentation="B64"[^<>]*>)'
                      rb"([A-Za-z0-9+/=\s]{%d,})(?=<)" % THRESHOLD)


def without_payloads(cda: bytes) -> bytes:
    """``cda`` with every base64 payload over :data:`THRESHOLD` bytes replaced by :data:`STAND_IN`.

    Returns ``cda`` itself when there is none. Raises ValidationError when a payload's
    length is not that of base64 text.
    """
    if len(cda) <= THRESHOLD:
        return cda
    parts, last = [], 0
    for match in _PAYLOAD.finditer(cda):
        start, end = match.span(2)
        spaces = sum(cda.count(c, start, end) for c in (b" ", b"\n", b"\r", b"\t", b"\f", b"\v"))
        if (end - start - spaces) % 4:
            raise ValidationError("CDA carries an embedded file (representation=\"B64\") whose text is not "
                                  "base64: its length is not a multiple of 4")
        parts += [cda[last:start], STAND_IN]
        last = end
    if not parts:
        return cda
    parts.append(cda[last:])
    return b"".join(parts)

