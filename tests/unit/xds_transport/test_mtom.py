"""channels.xds.mtom: MTOM/XOP serialisation and parsing, byte-exact both ways."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from lxml import etree

from channels.xds import mtom, soap
from tests.unit.xds_transport.conftest import make_assertion, submission_for

ACTION = soap.ITI41_ACTION


def roundtrip(root: bytes, parts: dict[str, bytes]) -> mtom.MtomMessage:
    body, content_type = mtom.serialize(root, parts, action=ACTION)
    return mtom.parse(body, content_type)


def test_content_type_announces_xop_root_and_action():
    _, content_type = mtom.serialize(b"<e/>", {}, action=ACTION, root_content_id="root@x")
    header = mtom._content_type(content_type)
    assert header.get_content_type() == "multipart/related"
    assert header.get_param("type") == "application/xop+xml"
    assert header.get_param("start") == "<root@x>"
    assert header.get_param("start-info") == "application/soap+xml"
    assert header.get_param("action") == ACTION


def test_parts_carry_content_id_and_binary_encoding():
    body, _ = mtom.serialize(b"<e/>", {"doc-1@x": b"\x00\x01"}, action=ACTION, root_content_id="root@x")
    assert b"Content-ID: <root@x>\r\n" in body
    assert b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n' in body
    assert (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
            b"Content-ID: <doc-1@x>\r\n\r\n\x00\x01\r\n") in body
    assert body.count(b"Content-Transfer-Encoding: binary\r\n") == 2


def test_roundtrip_keeps_root_and_parts():
    message = roundtrip(b"<root>\xc3\xa9</root>", {"a@x": b"first", "b@x": b"second"})
    assert message.root == b"<root>\xc3\xa9</root>"
    assert message.parts == {"a@x": b"first", "b@x": b"second"}
    assert message.root_content_type == "application/xop+xml"


def test_one_megabyte_of_random_bytes_survives_exactly():
    data = os.urandom(1024 * 1024) + b"\r\n--\r\n\r\n\r"
    message = roundtrip(b"<e/>", {"big@x": data})
    assert hashlib.sha1(message.parts["big@x"]).digest() == hashlib.sha1(data).digest()
    assert len(message.parts["big@x"]) == len(data)


def test_a_document_holding_a_delimiter_lookalike_is_not_cut():
    tricky = b"line\r\n--MIMEBoundary_fake\r\nContent-ID: <no@x>\r\n\r\nstill the document\r\n"
    assert roundtrip(b"<e/>", {"d@x": tricky}).parts == {"d@x": tricky}


def test_empty_document_survives():
    assert roundtrip(b"<e/>", {"empty@x": b""}).parts == {"empty@x": b""}


def test_boundary_never_occurs_in_the_content():
    body, content_type = mtom.serialize(b"<e/>", {"d@x": b"abc"}, action=ACTION)
    boundary = mtom._content_type(content_type).get_param("boundary")
    assert body.count(boundary.encode()) == 3            # two delimiters and the closing one


def test_plain_soap_is_read_as_a_root_without_parts():
    message = mtom.parse(b"<e/>", 'application/soap+xml; charset=UTF-8; action="x"')
    assert message == mtom.MtomMessage(root=b"<e/>", parts={}, root_content_type="application/soap+xml")


def test_unknown_content_type_is_refused():
    with pytest.raises(mtom.MtomFormatError, match="text/html"):
        mtom.parse(b"<html/>", "text/html")


def test_truncated_multipart_is_refused():
    body, content_type = mtom.serialize(b"<e/>", {"d@x": b"abc"}, action=ACTION)
    with pytest.raises(mtom.MtomFormatError):
        mtom.parse(body[: len(body) // 2], content_type)


def test_documents_are_resolved_from_xop_includes(cda):
    _, request, documents = submission_for(cda)
    [(document_id, data)] = documents.items()
    envelope = soap.provide_and_register_envelope(request, {document_id: "doc%401"}, make_assertion(), to="x")
    body_request = envelope.find(f"{{{soap.SOAP12}}}Body")[0]
    assert mtom.documents_of(body_request, {"doc@1": data}) == {document_id: data}   # cid: URLs are %-decoded


def test_inline_base64_documents_are_accepted():
    request = etree.fromstring(b'<x:P xmlns:x="urn:ihe:iti:xds-b:2007"><x:Document id="d1">'
                               + base64.b64encode(b"\x00hello") + b"</x:Document></x:P>")
    assert mtom.documents_of(request, {}) == {"d1": b"\x00hello"}


def test_include_to_a_missing_part_is_an_error():
    request = etree.fromstring(b'<x:P xmlns:x="urn:ihe:iti:xds-b:2007"><x:Document id="d1">'
                               b'<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:gone@x"/>'
                               b"</x:Document></x:P>")
    with pytest.raises(mtom.MtomFormatError, match="gone@x"):
        mtom.documents_of(request, {})


def test_foreign_mtom_with_preamble_and_base64_part_is_read():
    body = (b"preamble\r\n--b1\r\nContent-Type: application/xop+xml\r\nContent-ID: <r@x>\r\n\r\n<e/>"
            b"\r\n--b1\r\nContent-ID: <d@x>\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8="
            b"\r\n--b1--\r\n")
    message = mtom.parse(body, 'multipart/related; boundary=b1; type="application/xop+xml"; start="<r@x>"')
    assert message.root == b"<e/>" and message.parts == {"d@x": b"hello"}
