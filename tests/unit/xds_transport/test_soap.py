"""channels.xds.soap: the ITI-41 and ITI-57 envelopes."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from channels.xds import soap
from mappings.xds_metadata import LCM, RIM, SS_NODE
from router.errors import MappingError
from tests.unit.xds_transport.conftest import make_assertion, submission_for

SOAP = f"{{{soap.SOAP12}}}"
WSA = f"{{{soap.WSA}}}"
MUST = f"{SOAP}mustUnderstand"
TO = "https://dmp.test/si-dmp-server/v2/services/repository"


@pytest.fixture
def iti41(cda):
    _, request, documents = submission_for(cda)
    content_ids = {document_id: "doc-1@liaison" for document_id in documents}
    return soap.provide_and_register_envelope(request, content_ids, make_assertion(), to=TO), request, documents


def test_iti41_addressing_headers(iti41):
    envelope, _, _ = iti41
    header = envelope.find(f"{SOAP}Header")
    action = header.find(f"{WSA}Action")
    assert action.text == "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    assert action.get(MUST) == "true"
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", header.findtext(f"{WSA}MessageID"))
    assert header.findtext(f"{WSA}To") == TO
    assert header.findtext(f"{WSA}ReplyTo/{WSA}Address") == "http://www.w3.org/2005/08/addressing/anonymous"


def test_message_ids_are_fresh_unless_given(cda):
    _, request, documents = submission_for(cda)
    ids = {soap.read_envelope(soap.provide_and_register_envelope(request, {}, make_assertion(), to=TO)).message_id
           for _ in range(3)}
    assert len(ids) == 3
    given = soap.provide_and_register_envelope(request, {}, make_assertion(), to=TO, message_id="urn:uuid:x")
    assert soap.read_envelope(given).message_id == "urn:uuid:x"


def test_security_header_holds_the_assertion_unchanged(iti41):
    envelope, _, _ = iti41
    security = envelope.find(f"{SOAP}Header/{{{soap.WSSE}}}Security")
    assert security.get(MUST) == "true"
    [assertion] = security
    original = make_assertion()
    # exclusive c14n is what the XML signature covers: it must be byte-identical after the move
    assert etree.tostring(assertion, method="c14n", exclusive=True) == \
        etree.tostring(original, method="c14n", exclusive=True)


def test_assertion_given_as_bytes_keeps_its_whitespace(cda):
    _, request, _ = submission_for(cda)
    raw = etree.tostring(make_assertion())
    envelope = soap.provide_and_register_envelope(request, {}, raw, to=TO)
    assertion = soap.read_envelope(etree.fromstring(soap.envelope_bytes(envelope))).assertion
    assert etree.tostring(assertion, method="c14n", exclusive=True) == \
        etree.tostring(etree.fromstring(raw), method="c14n", exclusive=True)


def test_something_else_than_an_assertion_is_refused(cda):
    _, request, _ = submission_for(cda)
    with pytest.raises(MappingError, match="SAML 2.0 Assertion"):
        soap.provide_and_register_envelope(request, {}, b"<Token/>", to=TO)


def test_iti41_body_carries_metadata_and_one_xop_include_per_document(iti41):
    envelope, request, documents = iti41
    [body_request] = envelope.find(f"{SOAP}Body")
    assert body_request.tag == "{urn:ihe:iti:xds-b:2007}ProvideAndRegisterDocumentSetRequest"
    submit, *docs = body_request
    assert submit.tag == f"{{{LCM}}}SubmitObjectsRequest"
    assert etree.tostring(submit, method="c14n", exclusive=True) == \
        etree.tostring(request, method="c14n", exclusive=True)
    assert [d.get("id") for d in docs] == list(documents)
    [include] = docs[0]
    assert include.tag == "{http://www.w3.org/2004/08/xop/include}Include"
    assert include.get("href") == "cid:doc-1@liaison"


def test_header_order_follows_appendix_v(iti41):
    envelope, _, _ = iti41
    names = [etree.QName(child).localname for child in envelope.find(f"{SOAP}Header")]
    assert names == ["Action", "MessageID", "ReplyTo", "To", "Security"]


def test_iti57_envelope_has_the_update_action_and_the_request_as_body(cda):
    _, request, _ = submission_for(cda)
    update = soap.availability_status_update(request, entry_uuid="urn:uuid:1", new_status=soap.DELETED)
    envelope = soap.update_document_set_envelope(update, make_assertion(), to=TO)
    read = soap.read_envelope(envelope)
    assert read.action == "urn:ihe:iti:2010:UpdateDocumentSet"
    assert read.body.tag == f"{{{LCM}}}SubmitObjectsRequest"
    assert read.assertion is not None


def test_availability_update_keeps_the_submission_set_and_drops_the_entry(cda):
    _, request, _ = submission_for(cda)
    update = soap.availability_status_update(request, entry_uuid="urn:uuid:old", new_status=soap.ARCHIVED)
    objects = update.find(f"{{{RIM}}}RegistryObjectList")
    kinds = [etree.QName(o).localname for o in objects]
    assert kinds == ["RegistryPackage", "Classification", "Association"]
    package, node, association = objects
    assert node.get("classificationNode") == SS_NODE
    assert association.get("associationType") == "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
    assert association.get("sourceObject") == package.get("id")
    assert association.get("targetObject") == "urn:uuid:old"
    slots = {s.get("name"): s.findtext(f"{{{RIM}}}ValueList/{{{RIM}}}Value") for s in association}
    assert slots == {"OriginalStatus": soap.APPROVED, "NewStatus": "urn:asip:ci-sis:2010:StatusType:Archived"}
    # the builder's request is left as it was
    assert len(list(request.iter(f"{{{RIM}}}ExtrinsicObject"))) == 1


def test_availability_update_needs_a_submission_set():
    with pytest.raises(MappingError, match="submission set"):
        soap.availability_status_update(etree.Element(f"{{{LCM}}}SubmitObjectsRequest"), entry_uuid="urn:uuid:1",
                                        new_status=soap.DELETED)


def test_read_envelope_refuses_soap_11():
    envelope = etree.fromstring(b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><x/>'
                                b'</e:Body></e:Envelope>')
    with pytest.raises(ValueError, match="SOAP 1.2"):
        soap.read_envelope(envelope)
