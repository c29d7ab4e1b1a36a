"""MTOM/XOP packaging of SOAP 1.2 messages (W3C SOAP MTOM, XOP 1.0), both ways.

ITI-41 carries its documents as binary MIME parts of a ``multipart/related`` message whose
root part is the SOAP envelope (``application/xop+xml; type="application/soap+xml"``); the
envelope points at each part with ``xop:Include href="cid:<Content-ID>"``. Parts are sent
with ``Content-Transfer-Encoding: binary``: bytes are framed, never re-encoded, so a document
comes out byte-for-byte as it went in (the XDS hash and size depend on it).

Headers are written and read with the stdlib ``email`` machinery (``email.message`` for the
HTTP Content-Type parameters, ``email.parser.BytesHeaderParser`` for the part headers); the
body is split on the boundary by hand, because the line-oriented ``email`` body parser is not
made for megabytes of binary. A response may also be plain SOAP (``application/soap+xml``):
:func:`parse` accepts both.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import HTTP
from urllib.parse import unquote

from lxml import etree

XOP_INCLUDE = "{http://www.w3.org/2004/08/xop/include}Include"
XDSB_DOCUMENT = "{urn:ihe:iti:xds-b:2007}Document"
_CRLF = b"\r\n"


class MtomFormatError(ValueError):
    """A message that is not well-formed MTOM (or plain SOAP)."""


@dataclass(frozen=True)
class MtomMessage:
    """A parsed message: the root (SOAP envelope) bytes and the binary parts by Content-ID (no brackets)."""

    root: bytes
    parts: dict[str, bytes] = field(default_factory=dict)
    root_content_type: str = "application/soap+xml"


def new_content_id(label: str = "part") -> str:
    """A globally unique Content-ID (without angle brackets), safe in a ``cid:`` URL as is."""
    return f"{label}-{uuid.uuid4().hex}@liaison"


def serialize(root: bytes, attachments: Mapping[str, bytes], *, action: str,
              root_content_id: str | None = None, boundary: str | None = None) -> tuple[bytes, str]:
    """(body, HTTP Content-Type) of an MTOM message: ``root`` first, then one binary part per attachment."""
    root_content_id = root_content_id or new_content_id("root")
    boundary = boundary or _boundary_for(root, attachments.values())
    delimiter = b"--" + boundary.encode("ascii")
    chunks = [delimiter, _CRLF,
              _headers({"Content-Type": 'application/xop+xml; charset=UTF-8; type="application/soap+xml"',
                        "Content-Transfer-Encoding": "binary",
                        "Content-ID": f"<{root_content_id}>"}),
              root]
    for content_id, data in attachments.items():
        chunks += [_CRLF, delimiter, _CRLF,
                   _headers({"Content-Type": "application/octet-stream",
                             "Content-Transfer-Encoding": "binary",
                             "Content-ID": f"<{content_id}>"}),
                   data]
    chunks += [_CRLF, delimiter, b"--", _CRLF]
    content_type = (f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
                    f'start="<{root_content_id}>"; start-info="application/soap+xml"; action="{action}"')
    return b"".join(chunks), content_type


def soap_content_type(action: str) -> str:
    """The Content-Type of a plain (non-MTOM) SOAP 1.2 message."""
    return f'application/soap+xml; charset=UTF-8; action="{action}"'


def parse(body: bytes, content_type: str) -> MtomMessage:
    """Read an MTOM ``multipart/related`` message, or a plain SOAP 1.2 one, into its root and parts."""
    header = _content_type(content_type)
    if header.get_content_maintype() != "multipart":
        if header.get_content_type() not in ("application/soap+xml", "text/xml", "application/xml"):
            raise MtomFormatError(f"unexpected content type {header.get_content_type()}")
        return MtomMessage(root=body, root_content_type=header.get_content_type())
    boundary = header.get_param("boundary")
    if not boundary:
        raise MtomFormatError("multipart message without a boundary parameter")
    start = _strip_brackets(str(header.get_param("start") or ""))
    parts = _split(body, boundary.encode("ascii"))
    if not parts:
        raise MtomFormatError("multipart message without parts")
    by_id: dict[str, tuple[str, bytes]] = {}
    order: list[str] = []
    for raw in parts:
        headers_end = -2 if raw.startswith(_CRLF) else raw.find(_CRLF + _CRLF)   # a part may have no headers
        if headers_end == -1:
            raise MtomFormatError("MIME part without a blank line after its headers")
        headers = BytesHeaderParser(policy=HTTP).parsebytes(raw[:headers_end + 4])
        content_id = _strip_brackets(str(headers.get("Content-ID", "")))
        encoding = str(headers.get("Content-Transfer-Encoding", "binary")).strip().lower()
        data = raw[headers_end + 4:]
        if encoding == "base64":
            data = base64.b64decode(data)
        elif encoding not in ("binary", "8bit", "7bit"):
            raise MtomFormatError(f"unsupported Content-Transfer-Encoding {encoding}")
        by_id[content_id] = (headers.get_content_type(), data)
        order.append(content_id)
    root_id = start if start in by_id else order[0]
    root_type, root = by_id.pop(root_id)
    return MtomMessage(root=root, parts={cid: data for cid, (_, data) in by_id.items()},
                       root_content_type=root_type)


def documents_of(request: etree._Element, parts: Mapping[str, bytes]) -> dict[str, bytes]:
    """The bytes of every ``xdsb:Document`` under ``request``, by its id: from its MTOM part or inline base64."""
    documents: dict[str, bytes] = {}
    for document in request.iter(XDSB_DOCUMENT):
        include = document.find(XOP_INCLUDE)
        if include is not None:
            href = include.get("href", "")
            if not href.startswith("cid:"):
                raise MtomFormatError(f"xop:Include with a non-cid href {href!r}")
            content_id = unquote(href[4:])
            if content_id not in parts:
                raise MtomFormatError(f"xop:Include refers to a missing part {content_id}")
            documents[document.get("id", "")] = parts[content_id]
        else:
            documents[document.get("id", "")] = base64.b64decode("".join(document.itertext()))
    return documents


def _headers(values: Mapping[str, str]) -> bytes:
    return b"".join(f"{name}: {value}".encode("ascii") + _CRLF for name, value in values.items()) + _CRLF


def _boundary_for(root: bytes, attachments) -> str:
    """A random boundary that occurs in no part (RFC 2046 §5.1.1 requires it)."""
    while True:
        boundary = f"MIMEBoundary_{secrets.token_hex(16)}"
        needle = boundary.encode("ascii")
        if needle not in root and not any(needle in data for data in attachments):
            return boundary


def _content_type(value: str) -> EmailMessage:
    message = EmailMessage(policy=HTTP)
    message["Content-Type"] = value or "application/octet-stream"
    return message


def _split(body: bytes, boundary: bytes) -> list[bytes]:
    """The parts between ``--boundary`` delimiters (RFC 2046: a delimiter is CRLF--boundary)."""
    delimiter = b"--" + boundary
    if body.startswith(delimiter):
        position = 0
    else:
        position = body.find(_CRLF + delimiter)
        if position < 0:
            raise MtomFormatError("boundary not found in the body")
        position += 2
    parts: list[bytes] = []
    while True:
        after = position + len(delimiter)
        if body[after:after + 2] == b"--":
            return parts
        line_end = body.find(_CRLF, after)              # transport padding may follow the boundary
        if line_end < 0:
            raise MtomFormatError("truncated multipart body")
        start = line_end + 2
        following = body.find(_CRLF + delimiter, start)
        if following < 0:
            raise MtomFormatError("multipart body without a closing boundary")
        parts.append(body[start:following])
        position = following + 2


def _strip_brackets(value: str) -> str:
    value = value.strip()
    return value[1:-1] if value.startswith("<") and value.endswith(">") else value
