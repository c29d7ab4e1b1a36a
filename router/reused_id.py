"""The door's early look at a CDA id already sent with other content.

A CDA id names one document for ever (see :class:`router.ports.ContentBinding`):
once a document went out under an id, other content under the same id is a HIS
fault (a bug, or a correction sent as F instead of C), and the corrected letter
would be lost if it were taken for the earlier one. The worker refuses such a
message whatever the door says; this module lets the door answer **AE** with
ERR-3 205 at once, so that the HIS sees the refusal on the message itself and
not only in the per-recipient ZAM^Z02 N the worker sends afterwards.

The look is cheap on purpose, as it runs before the ACK: the first ED OBX
outside the MetaDMPMSS rows (the one :func:`router.pfi.read_pfi` takes), its
base64 decoded only as far as ``ClinicalDocument/id`` (a few kilobytes, whatever
the document's size), and one primary-key read of the journal; the whole content
is decoded and hashed only when the id is bound already. Anything unreadable is left to the
worker, which refuses it with the full reason: the door judges only the reuse.
A first message and a reuse racing each other both get AA here; the worker,
which binds the id in one statement, still refuses the second.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator, Sequence

from lxml import etree

from router.errors import ValidationError
from router.flags import is_meta_row
from router.hl7.msh import Segment
from router.hl7.runs import Runs, Span
from router.ports import Journal
from router.recipients_pfi import value

_V3 = "{urn:hl7-org:v3}"
_CHUNK = 1024                      # base64 characters decoded and parsed at a time: 768 bytes of CDA
_DELETE = "D"                      # OBX-11: a deletion names the document it withdraws and is not bound


async def reused_id_refusal(segments: Sequence[Segment], journal: Journal,
                            runs: Runs | None = None) -> ValidationError | None:
    """The refusal for a PFI document whose id is already bound to other content, else None.

    ``runs``: the long base64 runs the door set aside (:func:`router.hl7.runs.set_runs_aside`), by the
    marker that stands for each in ``segments``.
    """
    document = next((s for s in segments if s.id == "OBX" and value(s, 2).upper() == "ED" and not is_meta_row(s)),
                    None)
    if document is None or value(document, 11).upper() == _DELETE:
        return None
    data = value(document, 5, 5)
    data = runs.get(data, data) if runs else data
    document_id = _document_id_from_base64(data)
    if not document_id:
        return None
    bound = await journal.content_binding(document_id)
    if bound is None:
        return None
    try:
        digest = hashlib.sha256(base64.b64decode("".join(str(data).split()), validate=True)).hexdigest()
    except (binascii.Error, ValueError):
        return None
    if bound.digest == digest:
        return None
    earlier = await journal.message(bound.message_key)
    named = f"MSH-10 {earlier.control_id}" if earlier is not None else bound.message_key
    return ValidationError(
        f"document id {document_id} was already sent with other content by message {named} "
        f"on {bound.at:%Y-%m-%d %H:%M:%S} UTC; a corrected document is a replacement with a new id "
        "(OBX-11=C, or MDM^T10 with TXA-13 naming the parent)",
        hl7_code="205", hl7_text="Duplicate key identifier", hl7_location=f"OBX^{value(document, 1) or 1}^5")


def cda_document_id(cda: bytes) -> str:
    """``ClinicalDocument/id`` as ``root`` or ``root^extension``, reading no further than that element; "" if none."""
    return _document_id(iter((cda,)))


def _document_id_from_base64(data: str | Span) -> str:
    """The CDA id of a base64 OBX-5, decoding and parsing only as far as the id (the header's first kilobytes).

    Small steps on purpose: the parser's cost is the bytes it is fed, and the id
    comes after a few hundred bytes of realmCode, typeId and templateIds.
    """
    def chunks():
        carry = ""
        for start in range(0, len(data), _CHUNK):
            piece = carry + "".join(data[start:start + _CHUNK].split())      # line-wrapped base64 is common
            cut = len(piece) - len(piece) % 4
            carry = piece[cut:]
            yield base64.b64decode(piece[:cut], validate=True)
        if carry:
            yield base64.b64decode(carry, validate=True)
    try:
        return _document_id(chunks())
    except (binascii.Error, ValueError):
        return ""


def _document_id(chunks: Iterator[bytes]) -> str:
    parser = etree.XMLPullParser(events=("start", "end"), resolve_entities=False, no_network=True,
                                 load_dtd=False, huge_tree=True)
    depth = 0
    try:
        for chunk in chunks:
            parser.feed(chunk)
            for event, element in parser.read_events():
                if event == "end":
                    depth -= 1
                    if depth == 0:
                        return ""
                    continue
                depth += 1
                if depth == 1 and element.tag != f"{_V3}ClinicalDocument":
                    return ""
                if depth == 2 and element.tag == f"{_V3}id":
                    root, extension = element.get("root", ""), element.get("extension", "")
                    if not root:
                        return ""
                    return f"{root}^{extension}" if extension else root
    except etree.XMLSyntaxError:
        return ""
    return ""
