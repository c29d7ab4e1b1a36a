"""A DMP test double: an XDS.b repository + registry on 127.0.0.1 over mutual TLS.

It does what the tests need the real DMP to do, with the same checks a real registry makes:

- TLS that **requires** a client certificate chained to the test CA (``CERT_REQUIRED``);
- parses the MTOM (or plain SOAP) request, reads WS-Addressing and the ``wsse:Security``
  assertion, and calls ``verify_assertion(element)`` (the lead passes the real VIHF verifier;
  it refuses by raising or by returning ``False``) → Sender fault ``wsse:FailedAuthentication``;
- ITI-41: checks the metadata (required slots / classifications / external identifiers of the
  DocumentEntry and the SubmissionSet per IHE ITI TF-3 §4.2.3 and the French mapping, the
  HasMember association, SHA-1 hash and size against the bytes, ``patientId`` = the INS of the
  CDA ``recordTarget``, ``uniqueId`` = the CDA ``id``, uniqueId not already stored), stores the
  submission, and on an RPLC association deprecates the replaced entry;
- ITI-57: ``UpdateAvailabilityStatus`` (delete / archive / restore) of a stored entry, and
  *Update DocumentEntry Metadata* (IHE metadata versioning): a new DocumentEntry whose ``lid``
  names the logicalID of a stored entry, with the same uniqueId, hash and size, and a HasMember
  association carrying ``SubmissionSetStatus=Original`` and ``PreviousVersion`` = the current
  version; the double assigns the next version and deprecates the one it replaces;
- answers Success, or what the test scripted for the next request(s) with :meth:`DmpDouble.fail_next`:
  :class:`RegistryFailure`, :class:`Fault`, :class:`HttpError`, :class:`Hang`, :class:`AnswerLost`.

Usage::

    double = DmpDouble.from_pki(pki, verify_assertion=check)
    await double.start()
    client = XdsClient(double.url("/repository"), registry_url=double.url("/registry"), ssl_context=...)
    ...
    double.by_unique_id("1.2.3^DOC-1").status
    await double.stop()
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from lxml import etree

from channels.xds import mtom, soap
from mappings.xds_metadata import (DE_AUTHOR, DE_CLASS_CODE, DE_CONFIDENTIALITY_CODE, DE_FACILITY_TYPE_CODE,
                                   DE_FORMAT_CODE, DE_OBJECT_TYPE, DE_PATIENT_ID, DE_PRACTICE_SETTING_CODE,
                                   DE_TYPE_CODE, DE_UNIQUE_ID, HAS_MEMBER, LCM, RIM, RPLC, SS_AUTHOR,
                                   SS_CONTENT_TYPE_CODE, SS_NODE, SS_PATIENT_ID, SS_SOURCE_ID, SS_UNIQUE_ID)

HL7 = "urn:hl7-org:v3"
#: INS OIDs (NIR, NIA, test NIR, demo NIR), written out again so the double does not share the producer's table.
INS_ROOTS = frozenset({"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10",
                       "1.2.250.1.213.1.4.11"})

#: DocumentEntry: slots, classification schemes, external identifiers a DMP deposit must carry
#: (IHE ITI TF-3 Table 4.3.1-3 "R" for ITI-41, plus what the French mapping fills: hash, size,
#: author, practice setting, facility type).
DE_SLOTS = ("creationTime", "hash", "languageCode", "size", "sourcePatientId")
DE_SCHEMES = {DE_AUTHOR: "author", DE_CLASS_CODE: "classCode", DE_CONFIDENTIALITY_CODE: "confidentialityCode",
              DE_FORMAT_CODE: "formatCode", DE_FACILITY_TYPE_CODE: "healthcareFacilityTypeCode",
              DE_PRACTICE_SETTING_CODE: "practiceSettingCode", DE_TYPE_CODE: "typeCode"}
DE_IDS = {DE_PATIENT_ID: "patientId", DE_UNIQUE_ID: "uniqueId"}
#: SubmissionSet: same idea (IHE Table 4.3.1-4; author is required by the DMP).
SS_SLOTS = ("submissionTime",)
SS_SCHEMES = {SS_AUTHOR: "author", SS_CONTENT_TYPE_CODE: "contentTypeCode"}
SS_IDS = {SS_PATIENT_ID: "patientId", SS_SOURCE_ID: "sourceId", SS_UNIQUE_ID: "uniqueId"}
STATUSES = frozenset({soap.APPROVED, soap.DEPRECATED, soap.ARCHIVED, soap.DELETED})


# --- scripted behaviours -------------------------------------------------------------------

@dataclass(frozen=True)
class RegistryFailure:
    """Answer ``RegistryResponse`` with this status and one RegistryError."""

    code: str
    context: str = "scripted failure"
    status: str = "Failure"


@dataclass(frozen=True)
class Fault:
    """Answer a SOAP 1.2 fault (HTTP 400 for Sender, 500 otherwise)."""

    code: str = "Receiver"
    subcode: str = ""
    reason: str = "scripted fault"


@dataclass(frozen=True)
class HttpError:
    """Answer a bare HTTP status, no SOAP."""

    status: int = 503


@dataclass(frozen=True)
class Hang:
    """Say nothing for ``seconds`` (or until the double stops), then answer 503."""

    seconds: float = 30.0


@dataclass(frozen=True)
class AnswerLost:
    """Do what the request asks, then say nothing for ``seconds`` (or until the double stops).

    The client times out although the registry did the work: the case of an answer lost on the way.
    """

    seconds: float = 30.0


Behaviour = RegistryFailure | Fault | HttpError | Hang | AnswerLost


# --- what the double keeps -----------------------------------------------------------------

@dataclass
class StoredDocument:
    """One DocumentEntry the double accepted, with its bytes."""

    entry_uuid: str
    unique_id: str
    patient_id: str
    content: bytes = field(repr=False)
    entry: etree._Element = field(repr=False)
    submission_set: etree._Element = field(repr=False)
    status: str = soap.APPROVED
    replaces: str | None = None
    replaced_by: str | None = None
    logical_id: str = ""               # the first version's entryUUID, shared by its metadata updates
    version: str = "1"                 # assigned by the registry, as versionName

    def __post_init__(self) -> None:
        self.logical_id = self.logical_id or self.entry_uuid

    @property
    def confidentiality_codes(self) -> list[str]:
        """The entry's confidentialityCode list, in order (the CDA's, then the masking codes)."""
        return [c.get("nodeRepresentation", "") for c in self.entry.findall(f"{{{RIM}}}Classification")
                if c.get("classificationScheme") == DE_CONFIDENTIALITY_CODE]


@dataclass(frozen=True)
class Received:
    """One request as it arrived (before any check)."""

    action: str
    message_id: str
    path: str
    mtom: bool
    envelope: etree._Element | None
    assertion: etree._Element | None


@dataclass
class _Issue:
    code: str
    context: str


class _Refused(Exception):
    """Internal: stop processing and answer with these RegistryErrors."""

    def __init__(self, *issues: _Issue):
        super().__init__(issues[0].context if issues else "")
        self.issues = list(issues)


class DmpDouble:
    """An in-memory DMP (XDS.b ITI-41 + ITI-57) behind mutual TLS on 127.0.0.1."""

    def __init__(self, *, server_cert: Path, server_key: Path, ca_cert: Path,
                 verify_assertion: Callable[[etree._Element], object], host: str = "127.0.0.1",
                 known_patients: set[str] | None = None, mtom_responses: bool = True, port: int = 0):
        self.host = host
        self.verify_assertion = verify_assertion
        self.known_patients = known_patients
        self.mtom_responses = mtom_responses
        self.documents: dict[str, StoredDocument] = {}
        self.received: list[Received] = []
        self._script: deque[Behaviour] = deque()
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca_cert))
        self._ssl.load_cert_chain(str(server_cert), str(server_key))
        self._ssl.verify_mode = ssl.CERT_REQUIRED
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.port = port                # 0: a free port, chosen at start

    @classmethod
    def from_pki(cls, pki, **options) -> DmpDouble:
        return cls(server_cert=pki.server_cert, server_key=pki.server_key, ca_cert=pki.ca_cert, **options)

    # lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, ssl_context=self._ssl).start()

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DmpDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    def url(self, path: str = "/repository") -> str:
        return f"https://localhost:{self.port}{path}"

    # scripting and queries

    def fail_next(self, *behaviours: Behaviour) -> None:
        """The next requests get these answers, one each, in order (then normal service resumes)."""
        self._script.extend(behaviours)

    def by_unique_id(self, unique_id: str) -> StoredDocument | None:
        matches = [d for d in self.documents.values() if d.unique_id == unique_id]
        return matches[-1] if matches else None

    def by_entry_uuid(self, entry_uuid: str) -> StoredDocument | None:
        return self.documents.get(entry_uuid)

    def versions(self, logical_id: str) -> list[StoredDocument]:
        """Every version of a logical DocumentEntry, oldest first."""
        found = [d for d in self.documents.values() if d.logical_id == logical_id]
        return sorted(found, key=lambda d: int(d.version))

    # HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        try:
            message = mtom.parse(body, content_type)
            envelope = etree.fromstring(message.root, etree.XMLParser(resolve_entities=False, no_network=True))
            parsed = soap.read_envelope(envelope)
        except (ValueError, etree.XMLSyntaxError) as exc:
            self.received.append(Received("", "", request.path, False, None, None))
            return self._fault("Sender", "", f"unreadable request: {exc}", relates_to="", mtom_request=False)
        is_mtom = content_type.lower().startswith("multipart/")
        self.received.append(Received(parsed.action, parsed.message_id, request.path, is_mtom, envelope,
                                      parsed.assertion))
        reply = _Reply(self, parsed, is_mtom)
        if self._script and isinstance(self._script[0], AnswerLost):
            lost = self._script.popleft()
            answer = self._serve(parsed, message, reply)
            await self._quiet(lost.seconds)
            return answer
        if self._script:
            scripted = await self._play(self._script.popleft(), reply)
            if scripted is not None:
                return scripted
        return self._serve(parsed, message, reply)

    def _serve(self, parsed: soap.SoapRequest, message: mtom.MtomMessage, reply: _Reply) -> web.StreamResponse:
        """Check the assertion, then do what the request asks; the answer to send."""
        if parsed.assertion is None:
            return reply.fault("Sender", "wsse:InvalidSecurity", "no SAML assertion in wsse:Security")
        try:
            verdict = self.verify_assertion(parsed.assertion)
        except Exception as exc:                      # the verifier says no by raising
            return reply.fault("Sender", "wsse:FailedAuthentication", f"assertion refused: {exc}")
        if verdict is False:
            return reply.fault("Sender", "wsse:FailedAuthentication", "assertion refused")
        try:
            if parsed.action == soap.ITI41_ACTION:
                self._provide_and_register(parsed.body, message.parts)
                return reply.registry_response(soap.ITI41_RESPONSE_ACTION, [])
            if parsed.action == soap.ITI57_ACTION:
                self._update_document_set(parsed.body)
                return reply.registry_response(soap.ITI57_RESPONSE_ACTION, [])
        except _Refused as refused:
            action = soap.ITI41_RESPONSE_ACTION if parsed.action == soap.ITI41_ACTION else soap.ITI57_RESPONSE_ACTION
            return reply.registry_response(action, refused.issues)
        except mtom.MtomFormatError as exc:
            return reply.fault("Sender", "", str(exc))
        return reply.fault("Sender", "wsa:ActionNotSupported", f"action {parsed.action!r} not supported")

    async def _quiet(self, seconds: float) -> None:
        """Say nothing for ``seconds``, or until the double stops."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _play(self, behaviour: Behaviour, reply: _Reply) -> web.StreamResponse | None:
        if isinstance(behaviour, Hang):
            await self._quiet(behaviour.seconds)
            return web.Response(status=503, text="hung")
        if isinstance(behaviour, HttpError):
            return web.Response(status=behaviour.status, text=f"scripted HTTP {behaviour.status}",
                                content_type="text/plain")
        if isinstance(behaviour, Fault):
            return reply.fault(behaviour.code, behaviour.subcode, behaviour.reason)
        action = (soap.ITI41_RESPONSE_ACTION if reply.request.action == soap.ITI41_ACTION
                  else soap.ITI57_RESPONSE_ACTION)
        return reply.registry_response(action, [_Issue(behaviour.code, behaviour.context)], status=behaviour.status)

    def _fault(self, code: str, subcode: str, reason: str, *, relates_to: str, mtom_request: bool) -> web.Response:
        return _Reply(self, soap.SoapRequest("", relates_to, "", None, etree.Element("x")), mtom_request).fault(
            code, subcode, reason)

    # ITI-41

    def _provide_and_register(self, body: etree._Element, parts: dict[str, bytes]) -> None:
        if body.tag != f"{{{soap.XDSB}}}ProvideAndRegisterDocumentSetRequest":
            raise _Refused(_Issue("XDSRegistryMetadataError", f"unexpected body {body.tag}"))
        submit = body.find(f"{{{LCM}}}SubmitObjectsRequest")
        if submit is None:
            raise _Refused(_Issue("XDSRegistryMetadataError", "no SubmitObjectsRequest"))
        documents = mtom.documents_of(body, parts)
        package = _submission_set(submit)
        entries = list(submit.iter(f"{{{RIM}}}ExtrinsicObject"))
        issues: list[_Issue] = []
        issues += [_Issue("XDSMissingDocument", f"no document for entry {e.get('id')}")
                   for e in entries if e.get("id") not in documents]
        issues += [_Issue("XDSMissingDocumentMetadata", f"no entry for document {d}")
                   for d in documents if d not in {e.get("id") for e in entries}]
        issues += _required(package, "SubmissionSet", SS_SLOTS, SS_SCHEMES, SS_IDS)
        if issues:
            raise _Refused(*issues)
        ss_id = package.get("id")
        ss_patient = _external_id(package, SS_PATIENT_ID)
        associations = list(submit.iter(f"{{{RIM}}}Association"))
        accepted: list[StoredDocument] = []
        for entry in entries:
            issues += self._check_entry(entry, documents[entry.get("id")], ss_id, ss_patient, associations)
            if not issues:
                accepted.append(StoredDocument(
                    entry_uuid=_registry_uuid(entry.get("id")), unique_id=_external_id(entry, DE_UNIQUE_ID),
                    patient_id=_external_id(entry, DE_PATIENT_ID), content=documents[entry.get("id")],
                    entry=entry, submission_set=package))
        if issues:
            raise _Refused(*issues)
        for stored, entry in zip(accepted, entries):
            for association in associations:
                if association.get("associationType") == RPLC and association.get("sourceObject") == entry.get("id"):
                    previous = self.documents[association.get("targetObject")]
                    previous.status = soap.DEPRECATED
                    previous.replaced_by = stored.entry_uuid
                    stored.replaces = previous.entry_uuid
            self.documents[stored.entry_uuid] = stored

    def _check_entry(self, entry: etree._Element, content: bytes, ss_id: str, ss_patient: str,
                     associations: list[etree._Element]) -> list[_Issue]:
        entry_id = entry.get("id")
        issues = _required(entry, f"DocumentEntry {entry_id}", DE_SLOTS, DE_SCHEMES, DE_IDS)
        if not entry.get("mimeType"):
            issues.append(_Issue("XDSRegistryMetadataError", f"{entry_id}: no mimeType"))
        if entry.get("objectType") != DE_OBJECT_TYPE:
            issues.append(_Issue("XDSRegistryMetadataError", f"{entry_id}: objectType is not a stable DocumentEntry"))
        if not any(a.get("associationType") == HAS_MEMBER and a.get("sourceObject") == ss_id
                   and a.get("targetObject") == entry_id for a in associations):
            issues.append(_Issue("XDSRegistryMetadataError", f"{entry_id}: no HasMember from the submission set"))
        if issues:
            return issues
        digest, size = _slot(entry, "hash"), _slot(entry, "size")
        if digest.lower() != hashlib.sha1(content).hexdigest():
            issues.append(_Issue("XDSRepositoryMetadataError", f"{entry_id}: hash does not match the document"))
        if size != str(len(content)):
            issues.append(_Issue("XDSRepositoryMetadataError", f"{entry_id}: size does not match the document"))
        patient_id, unique_id = _external_id(entry, DE_PATIENT_ID), _external_id(entry, DE_UNIQUE_ID)
        if patient_id != ss_patient:
            issues.append(_Issue("XDSPatientIdDoesNotMatch", f"{entry_id}: patientId differs from the submission set"))
        cda = _cda_identity(content)
        if cda is None:
            issues.append(_Issue("XDSRegistryMetadataError", f"{entry_id}: the document is not a CDA"))
            return issues
        cda_ins, cda_id = cda
        if patient_id != cda_ins:
            issues.append(_Issue("XDSPatientIdDoesNotMatch", f"{entry_id}: patientId is not the CDA's INS"))
        elif self.known_patients is not None and patient_id.split("^")[0] not in self.known_patients:
            issues.append(_Issue("XDSUnknownPatientId", f"{entry_id}: no DMP for this patient"))
        if unique_id != cda_id:
            issues.append(_Issue("XDSRegistryMetadataError", f"{entry_id}: uniqueId is not the CDA id"))
        existing = self.by_unique_id(unique_id)
        if existing is not None:
            code = ("XDSDuplicateUniqueIdInRegistry" if existing.content == content else "XDSNonIdenticalHash")
            issues.append(_Issue(code, f"{entry_id}: uniqueId already in the registry"))
        if _registry_uuid(entry_id) in self.documents:
            issues.append(_Issue("XDSRegistryMetadataError", f"{entry_id}: entryUUID already in the registry"))
        for association in associations:
            if association.get("associationType") == RPLC and association.get("sourceObject") == entry_id:
                issues += self._check_replacement(association.get("targetObject"), patient_id)
        return issues

    def _check_replacement(self, target: str, patient_id: str) -> list[_Issue]:
        previous = self.documents.get(target)
        if previous is None:
            return [_Issue("UnresolvedReferenceException", f"RPLC target {target} is not in the registry")]
        if previous.status != soap.APPROVED:
            return [_Issue("XDSRegistryMetadataError", f"RPLC target {target} is not Approved")]
        if previous.patient_id != patient_id:
            return [_Issue("XDSPatientIdDoesNotMatch", f"RPLC target {target} belongs to another patient")]
        return []

    # ITI-57

    def _update_document_set(self, body: etree._Element) -> None:
        if body.tag != f"{{{LCM}}}SubmitObjectsRequest":
            raise _Refused(_Issue("XDSMetadataUpdateError", f"unexpected body {body.tag}"))
        package = _submission_set(body)
        issues = _required(package, "SubmissionSet", SS_SLOTS, SS_SCHEMES, SS_IDS)
        associations = list(body.iter(f"{{{RIM}}}Association"))
        updates = [a for a in associations if a.get("associationType") == soap.UPDATE_AVAILABILITY_STATUS]
        entries = list(body.iter(f"{{{RIM}}}ExtrinsicObject"))
        if not updates and not entries:
            issues.append(_Issue("XDSMetadataUpdateOperationError",
                                 "neither a DocumentEntry to update nor an UpdateAvailabilityStatus association"))
        if issues:
            raise _Refused(*issues)
        ss_patient = _external_id(package, SS_PATIENT_ID)
        new_versions: list[tuple[StoredDocument, StoredDocument]] = []
        for entry in entries:
            issues += self._check_new_version(entry, package, ss_patient, associations, new_versions)
        changes: list[tuple[StoredDocument, str]] = []
        for association in updates:
            target = self.documents.get(association.get("targetObject"))
            original, new = _slot(association, "OriginalStatus"), _slot(association, "NewStatus")
            if association.get("sourceObject") != package.get("id"):
                issues.append(_Issue("XDSMetadataUpdateError", "the association does not start at the submission set"))
            elif target is None:
                issues.append(_Issue("UnresolvedReferenceException",
                                     f"{association.get('targetObject')} is not in the registry"))
            elif target.patient_id != ss_patient:
                issues.append(_Issue("XDSPatientIdDoesNotMatch", f"{target.entry_uuid} belongs to another patient"))
            elif original != target.status:
                issues.append(_Issue("XDSMetadataUpdateError",
                                     f"{target.entry_uuid}: OriginalStatus {original} but the entry is {target.status}"))
            elif new not in STATUSES:
                issues.append(_Issue("XDSMetadataUpdateError", f"unknown NewStatus {new}"))
            else:
                changes.append((target, new))
        if issues:
            raise _Refused(*issues)
        for previous, stored in new_versions:
            previous.status = soap.DEPRECATED
            self.documents[stored.entry_uuid] = stored
        for target, new in changes:
            target.status = new

    def _check_new_version(self, entry: etree._Element, package: etree._Element, ss_patient: str,
                           associations: list[etree._Element],
                           accepted: list[tuple[StoredDocument, StoredDocument]]) -> list[_Issue]:
        """Update DocumentEntry Metadata: ``entry`` is the next version of the stored entry its ``lid`` names."""
        entry_id, lid = entry.get("id", ""), entry.get("lid", "")
        issues = _required(entry, f"DocumentEntry {entry_id}", DE_SLOTS, DE_SCHEMES, DE_IDS)
        if entry.get("objectType") != DE_OBJECT_TYPE:
            issues.append(_Issue("XDSRegistryMetadataError", f"{entry_id}: objectType is not a stable DocumentEntry"))
        if not lid or lid == entry_id:
            issues.append(_Issue("XDSMetadataUpdateError",
                                 f"{entry_id}: a new version needs its own entryUUID and a lid naming "
                                 "the entry it updates"))
        member = [a for a in associations if a.get("associationType") == HAS_MEMBER
                  and a.get("sourceObject") == package.get("id") and a.get("targetObject") == entry_id]
        if len(member) != 1 or _slot(member[0], "SubmissionSetStatus") != "Original":
            issues.append(_Issue("XDSMetadataUpdateError",
                                 f"{entry_id}: no HasMember (SubmissionSetStatus=Original) from the submission set"))
        if issues:
            return issues
        if entry_id in self.documents:
            issues.append(_Issue("XDSMetadataUpdateError", f"{entry_id}: entryUUID already in the registry"))
        current = [d for d in self.versions(lid) if d.status == soap.APPROVED]
        if not current:
            known = bool(self.versions(lid))
            return issues + [_Issue("XDSMetadataUpdateError" if known else "UnresolvedReferenceException",
                           f"{entry_id}: no Approved DocumentEntry with logicalID {lid}" if known
                           else f"{entry_id}: logicalID {lid} is not in the registry")]
        previous = current[-1]
        patient_id, unique_id = _external_id(entry, DE_PATIENT_ID), _external_id(entry, DE_UNIQUE_ID)
        if patient_id != ss_patient or patient_id != previous.patient_id:
            issues.append(_Issue("XDSPatientIdDoesNotMatch", f"{entry_id}: patientId differs from the entry updated"))
        if unique_id != previous.unique_id:
            issues.append(_Issue("XDSMetadataIdentifierError",
                                 f"{entry_id}: uniqueId {unique_id} is not the uniqueId of {lid}"))
        if (_slot(entry, "hash").lower() != hashlib.sha1(previous.content).hexdigest()
                or _slot(entry, "size") != str(len(previous.content))):
            issues.append(_Issue("XDSMetadataUpdateError",
                                 f"{entry_id}: hash or size differs from the stored document"))
        if _slot(member[0], "PreviousVersion") != previous.version:
            issues.append(_Issue("XDSMetadataVersionError",
                                 f"{entry_id}: PreviousVersion {_slot(member[0], 'PreviousVersion')!r} but "
                                 f"{lid} is at version {previous.version}"))
        if not issues:
            accepted.append((previous, StoredDocument(
                entry_uuid=entry_id, unique_id=unique_id, patient_id=patient_id, content=previous.content,
                entry=entry, submission_set=package, logical_id=lid, version=str(int(previous.version) + 1))))
        return issues


class _Reply:
    """Builds the double's answers in the request's style (MTOM or plain SOAP)."""

    def __init__(self, double: DmpDouble, request: soap.SoapRequest, mtom_request: bool):
        self.double, self.request, self.mtom_request = double, request, mtom_request

    def registry_response(self, action: str, issues: list[_Issue], *, status: str | None = None) -> web.Response:
        status = status or ("Failure" if issues else "Success")
        response = etree.Element(f"{{{soap.RS}}}RegistryResponse", nsmap={"rs": soap.RS},
                                 status=f"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:{status}")
        if issues:
            errors = etree.SubElement(response, f"{{{soap.RS}}}RegistryErrorList")
            for issue in issues:
                etree.SubElement(errors, f"{{{soap.RS}}}RegistryError", errorCode=issue.code,
                                 codeContext=issue.context, location="DmpDouble",
                                 severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error")
        return self._send(action, response, 200)

    def fault(self, code: str, subcode: str, reason: str) -> web.Response:
        fault = etree.Element(f"{{{soap.SOAP12}}}Fault")
        code_el = etree.SubElement(fault, f"{{{soap.SOAP12}}}Code")
        etree.SubElement(code_el, f"{{{soap.SOAP12}}}Value").text = f"soap:{code}"
        if subcode:
            prefix, _, local = subcode.rpartition(":")
            namespace = {"wsse": soap.WSSE, "wsa": soap.WSA}.get(prefix, "urn:liaison:dmp-double")
            sub = etree.SubElement(etree.SubElement(code_el, f"{{{soap.SOAP12}}}Subcode"),
                                   f"{{{soap.SOAP12}}}Value", nsmap={prefix or "d": namespace})
            sub.text = f"{prefix or 'd'}:{local}"
        reason_el = etree.SubElement(fault, f"{{{soap.SOAP12}}}Reason")
        etree.SubElement(reason_el, f"{{{soap.SOAP12}}}Text",
                         {"{http://www.w3.org/XML/1998/namespace}lang": "en"}).text = reason
        return self._send("http://www.w3.org/2005/08/addressing/soap/fault", fault, 400 if code == "Sender" else 500)

    def _send(self, action: str, body: etree._Element, http_status: int) -> web.Response:
        envelope = soap.envelope_bytes(soap.response_envelope(action, body, relates_to=self.request.message_id))
        if self.mtom_request and self.double.mtom_responses:
            payload, content_type = mtom.serialize(envelope, {}, action=action)
        else:
            payload, content_type = envelope, mtom.soap_content_type(action)
        response = web.Response(status=http_status, body=payload)
        response.headers["Content-Type"] = content_type
        return response


# --- metadata helpers ----------------------------------------------------------------------

def _submission_set(submit: etree._Element) -> etree._Element:
    node_ids = {c.get("classifiedObject") for c in submit.iter(f"{{{RIM}}}Classification")
                if c.get("classificationNode") == SS_NODE}
    packages = [p for p in submit.iter(f"{{{RIM}}}RegistryPackage") if p.get("id") in node_ids]
    if len(packages) != 1:
        raise _Refused(_Issue("XDSRegistryMetadataError",
                              f"expected one submission set (RegistryPackage classified as such), got {len(packages)}"))
    return packages[0]


def _required(obj: etree._Element, what: str, slots, schemes: dict[str, str], ids: dict[str, str]) -> list[_Issue]:
    present_slots = {s.get("name") for s in obj.findall(f"{{{RIM}}}Slot") if "".join(s.itertext()).strip()}
    present_schemes = {c.get("classificationScheme") for c in obj.findall(f"{{{RIM}}}Classification")}
    present_ids = {e.get("identificationScheme") for e in obj.findall(f"{{{RIM}}}ExternalIdentifier")
                   if e.get("value")}
    missing = [name for name in slots if name not in present_slots]
    missing += [name for scheme, name in schemes.items() if scheme not in present_schemes]
    missing += [name for scheme, name in ids.items() if scheme not in present_ids]
    return [_Issue("XDSRegistryMetadataError", f"{what}: missing {name}") for name in missing]


def _slot(obj: etree._Element, name: str) -> str:
    for slot in obj.findall(f"{{{RIM}}}Slot"):
        if slot.get("name") == name:
            value = slot.find(f"{{{RIM}}}ValueList/{{{RIM}}}Value")
            return (value.text or "").strip() if value is not None else ""
    return ""


def _external_id(obj: etree._Element, scheme: str) -> str:
    for ext in obj.findall(f"{{{RIM}}}ExternalIdentifier"):
        if ext.get("identificationScheme") == scheme:
            return ext.get("value", "")
    return ""


def _registry_uuid(entry_id: str) -> str:
    """Keep a ``urn:uuid:`` id as given; a symbolic id gets a fresh UUID, as a registry would assign."""
    return entry_id if entry_id.startswith("urn:uuid:") else f"urn:uuid:{uuid.uuid4()}"


def _cda_identity(content: bytes) -> tuple[str, str] | None:
    """(INS as an XDS patientId CX, ClinicalDocument/id as ``root^extension``) read from the CDA itself."""
    try:
        doc = etree.fromstring(content, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None
    if doc.tag != f"{{{HL7}}}ClinicalDocument":
        return None
    ns = {"h": HL7}
    ins = ""
    for ident in doc.xpath("h:recordTarget/h:patientRole/h:id", namespaces=ns):
        if ident.get("root") in INS_ROOTS and ident.get("extension"):
            ins = f"{ident.get('extension')}^^^&{ident.get('root')}&ISO^NH"
            break
    [doc_id] = doc.xpath("h:id", namespaces=ns) or [None]
    if doc_id is None:
        return None
    unique_id = doc_id.get("root", "")
    if doc_id.get("extension"):
        unique_id += f"^{doc_id.get('extension')}"
    return ins, unique_id
