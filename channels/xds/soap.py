"""SOAP 1.2 envelopes for the DMP: ITI-41 deposit and ITI-57 status update (delete / archive).

The envelope follows IHE ITI TF-2x Appendix V (Web Services for IHE transactions) and the
XDS.b WSDL: WS-Addressing 1.0 headers (``Action`` with ``mustUnderstand``, ``MessageID`` as
``urn:uuid:``, ``To``, ``ReplyTo`` anonymous), then ``wsse:Security`` holding the signed VIHF
assertion as it was given (never re-serialised through a pretty printer: that would break the
signature), then the body.

- ITI-41 body: ``xdsb:ProvideAndRegisterDocumentSetRequest`` = the ``lcm:SubmitObjectsRequest``
  of :func:`mappings.xds_metadata.build_submission` + one ``xdsb:Document id=<entryUUID>`` per
  document, holding an ``xop:Include href="cid:..."`` to its MTOM part (:mod:`channels.xds.mtom`).
- Deleting or archiving a document in the DMP (TD3.3c "supprimer", TD3.3d "archiver") is **not**
  ITI-62 Remove Metadata: the ANS mapping table of the DMP transactions
  (IG-FHIR-PDSM4DMP-EEDS, index page, sources "DMPi v2.10.0 (XDS.b)") gives ITI-57 *Update
  Document Set* changing ``availabilityStatus`` to ``urn:asip:ci-sis:2010:StatusType:Deleted``
  (logical deletion; "RMD (ITI-62/86) non utilisé par le DMP") or
  ``urn:asip:ci-sis:2010:StatusType:Archived``. Per the IHE XDS Metadata Update supplement such a
  request is a ``SubmitObjectsRequest`` holding a submission set and one
  ``UpdateAvailabilityStatus`` association (submission set → the document's entryUUID) with the
  ``OriginalStatus`` and ``NewStatus`` slots; :func:`availability_status_update` derives it from
  the metadata builder's output, so the submission set stays the builder's.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from mappings.xds_metadata import RIM, SS_NODE
from router.errors import MappingError

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
XDSB = "urn:ihe:iti:xds-b:2007"
XOP = "http://www.w3.org/2004/08/xop/include"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"

ITI41_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI41_RESPONSE_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
ITI57_ACTION = "urn:ihe:iti:2010:UpdateDocumentSet"
ITI57_RESPONSE_ACTION = "urn:ihe:iti:2010:UpdateDocumentSetResponse"
ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"

APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
ARCHIVED = "urn:asip:ci-sis:2010:StatusType:Archived"
DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"
UPDATE_AVAILABILITY_STATUS = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
_OT = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:"

_NSMAP = {"soap": SOAP12, "wsa": WSA}


def provide_and_register_envelope(submit_objects_request: etree._Element, documents: Mapping[str, str],
                                  assertion: etree._Element | bytes, *, to: str,
                                  message_id: str | None = None) -> etree._Element:
    """The ITI-41 envelope; ``documents`` maps each ExtrinsicObject id to the Content-ID of its part."""
    body_request = etree.Element(f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xdsb": XDSB})
    body_request.append(copy.deepcopy(submit_objects_request))
    for document_id, content_id in documents.items():
        document = etree.SubElement(body_request, f"{{{XDSB}}}Document", id=document_id)
        etree.SubElement(document, f"{{{XOP}}}Include", nsmap={"xop": XOP}, href=f"cid:{content_id}")
    return _envelope(ITI41_ACTION, body_request, assertion, to=to, message_id=message_id)


def update_document_set_envelope(submit_objects_request: etree._Element, assertion: etree._Element | bytes,
                                 *, to: str, message_id: str | None = None) -> etree._Element:
    """The ITI-57 envelope: the body is the ``lcm:SubmitObjectsRequest`` itself."""
    return _envelope(ITI57_ACTION, copy.deepcopy(submit_objects_request), assertion, to=to,
                     message_id=message_id)


def availability_status_update(submission: etree._Element, *, entry_uuid: str, new_status: str,
                               original_status: str = APPROVED) -> etree._Element:
    """An ITI-57 ``SubmitObjectsRequest`` moving ``entry_uuid`` from ``original_status`` to ``new_status``.

    ``submission`` is a :func:`~mappings.xds_metadata.build_submission` result for the job (its
    submission set — patientId, sourceId, uniqueId, author, contentTypeCode — is kept; the
    DocumentEntry and its associations are dropped).
    """
    request = copy.deepcopy(submission)
    objects = request.find(f"{{{RIM}}}RegistryObjectList")
    package = objects.find(f"{{{RIM}}}RegistryPackage") if objects is not None else None
    if package is None:
        raise MappingError("status update: the submission has no submission set (RegistryPackage)")
    ss_id = package.get("id")
    for obj in list(objects):
        keep = obj is package or (obj.tag == f"{{{RIM}}}Classification"
                                  and obj.get("classificationNode") == SS_NODE)
        if not keep:
            objects.remove(obj)
    association = etree.SubElement(objects, f"{{{RIM}}}Association", {
        "id": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{ss_id}|{entry_uuid}|{new_status}')}",
        "associationType": UPDATE_AVAILABILITY_STATUS, "sourceObject": ss_id, "targetObject": entry_uuid,
        "objectType": f"{_OT}Association"})
    for name, value in (("OriginalStatus", original_status), ("NewStatus", new_status)):
        slot = etree.SubElement(association, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = value
    return request


def envelope_bytes(envelope: etree._Element) -> bytes:
    """Serialise an envelope as UTF-8 with its declaration (no pretty printing: the assertion is signed)."""
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


@dataclass(frozen=True)
class SoapRequest:
    """What a receiver reads from an envelope's headers (the DMP double uses it)."""

    action: str
    message_id: str
    to: str
    assertion: etree._Element | None
    body: etree._Element


def read_envelope(envelope: etree._Element) -> SoapRequest:
    """The addressing headers, the assertion and the body's first element; ValueError when not SOAP 1.2."""
    if envelope.tag != f"{{{SOAP12}}}Envelope":
        raise ValueError(f"not a SOAP 1.2 envelope: {envelope.tag}")
    header = envelope.find(f"{{{SOAP12}}}Header")
    body = envelope.find(f"{{{SOAP12}}}Body")
    if body is None or len(body) == 0:
        raise ValueError("SOAP envelope without a body element")

    def text(tag: str) -> str:
        el = header.find(tag) if header is not None else None
        return (el.text or "").strip() if el is not None else ""

    assertion = None
    if header is not None:
        security = header.find(f"{{{WSSE}}}Security")
        if security is not None:
            assertion = security.find(f"{{{SAML2}}}Assertion")
    return SoapRequest(action=text(f"{{{WSA}}}Action"), message_id=text(f"{{{WSA}}}MessageID"),
                       to=text(f"{{{WSA}}}To"), assertion=assertion, body=body[0])


def response_envelope(action: str, body: etree._Element, *, relates_to: str = "") -> etree._Element:
    """A response envelope (Action, RelatesTo) around ``body``; used by the DMP double."""
    envelope = etree.Element(f"{{{SOAP12}}}Envelope", nsmap=_NSMAP)
    header = etree.SubElement(envelope, f"{{{SOAP12}}}Header")
    _action(header, action)
    if relates_to:
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = relates_to
    etree.SubElement(envelope, f"{{{SOAP12}}}Body").append(body)
    return envelope


def new_message_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _envelope(action: str, body_element: etree._Element, assertion: etree._Element | bytes, *, to: str,
              message_id: str | None) -> etree._Element:
    envelope = etree.Element(f"{{{SOAP12}}}Envelope", nsmap=_NSMAP)
    header = etree.SubElement(envelope, f"{{{SOAP12}}}Header")
    _action(header, action)
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = message_id or new_message_id()
    reply_to = etree.SubElement(header, f"{{{WSA}}}ReplyTo")
    etree.SubElement(reply_to, f"{{{WSA}}}Address").text = ANONYMOUS
    etree.SubElement(header, f"{{{WSA}}}To").text = to
    security = etree.SubElement(header, f"{{{WSSE}}}Security", {f"{{{SOAP12}}}mustUnderstand": "true"},
                                nsmap={"wsse": WSSE})
    security.append(_assertion_element(assertion))
    etree.SubElement(envelope, f"{{{SOAP12}}}Body").append(body_element)
    return envelope


def _action(header: etree._Element, action: str) -> None:
    etree.SubElement(header, f"{{{WSA}}}Action", {f"{{{SOAP12}}}mustUnderstand": "true"}).text = action


def _assertion_element(assertion: etree._Element | bytes) -> etree._Element:
    """A copy of the signed assertion; bytes are parsed without dropping whitespace (the signature covers it)."""
    if isinstance(assertion, (bytes, bytearray)):
        parser = etree.XMLParser(remove_blank_text=False, resolve_entities=False, no_network=True)
        element = etree.fromstring(bytes(assertion), parser)
    else:
        element = copy.deepcopy(assertion)
    if element.tag != f"{{{SAML2}}}Assertion":
        raise MappingError(f"the WS-Security header takes a SAML 2.0 Assertion, got {element.tag}")
    return element
