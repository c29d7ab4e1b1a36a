"""XDS.b metadata (ebRIM 3.0 ``lcm:SubmitObjectsRequest``) for one CDA, from a DocumentJob.

One builder for both ways out: the ``METADATA.XML`` of the IHE_XDM.ZIP mailed over MSSanté
(``document_filename`` gives the URI slot; the French extra-metadata ``action`` says C =
replaces the parent document, D = delete) and the ITI-41 deposit to the DMP
(``document_filename=None, xdm_action=False``, plus ``replaced_entry_uuid`` for an RPLC).
Values follow the CDA → XDS mapping of spec/french-interop.md §4; ids are UUID v5 of the
document id and action, so the same job always gives the same bytes.

:func:`build_metadata_update` reuses the same builder for an ITI-57 *Update DocumentEntry
Metadata* (the masking change MODIF_CONF_CODE=Y asks for): a new version of the entry the
registry already holds, under a new entryUUID, with ``lid`` = its logicalID.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import structlog
from lxml import etree

from mappings.cda_header import FINESS_OID, INS_OIDS, RPPS_OID, patient_cx
from mappings.codes import (Coded, class_code_for, confidentiality_code, content_type_for_patient_class,
                            format_code)
from router.errors import MappingError
from router.dmp_rules import confidentiality_codes as dmp_confidentiality_codes
from router.model import Action, DocumentJob, Participant, addressed

log = structlog.get_logger(__name__)

LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"

# Standard XDS UUIDs (IHE ITI TF-3 §4.2.5).
DE_OBJECT_TYPE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY_CODE = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_EVENT_CODE = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
DE_FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_FACILITY_TYPE_CODE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING_CODE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE_CODE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
_OT = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:"

FACILITY_TYPE_SCHEME = "1.2.250.1.71.4.2.4"        # TRE_R02-SecteurActivite
PRACTICE_SETTING_SCHEME = "1.2.250.1.213.1.1.4.9"  # TRE_A01 practiceSettingCode
#: French XDM extra metadata (IG transmission CDA-R2 en HL7v2, exemples 2 and 3).
ACTION_SLOT = "action"
_XDM_ACTION = {Action.REPLACE: "C", Action.DELETE: "D"}

_NS_LIAISON = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/liaison/xds-metadata")

#: Submission-set contentTypeCode when the caller gives none ("type d'activité indifférencié").
DEFAULT_CONTENT_TYPE: Coded = content_type_for_patient_class("")


def confidentiality_codes(job: DocumentJob) -> list[Coded]:
    """The DocumentEntry confidentialityCode list (:func:`router.dmp_rules.confidentiality_codes`), labelled."""
    return [confidentiality_code(code) for code in dmp_confidentiality_codes(job)]


def entry_uuid(document_id: str) -> str:
    """The deterministic entryUUID of the DocumentEntry for a document id."""
    return _urn_uuid("document-entry", document_id)


def version_entry_uuid(document_id: str, version: int) -> str:
    """The entryUUID of version ``version`` (2 and up) of a document's entry, made by a metadata update.

    Version 1 is the deposit's :func:`entry_uuid` (which is also the logicalID of every version).
    Deterministic, so a retried update sends the same bytes.
    """
    return entry_uuid(document_id) if version <= 1 else _urn_uuid("document-entry", document_id, f"v{version}")


def build_submission(job: DocumentJob, *, submission_time: datetime, source_id: str,
                     document_filename: str | None = "DOC0001.XML",
                     content_type_code: Coded = DEFAULT_CONTENT_TYPE,
                     xdm_action: bool = True,
                     replaced_entry_uuid: str | None = None) -> etree._Element:
    """The ``lcm:SubmitObjectsRequest`` for the job's single document.

    - ``document_filename``: URI slot (XDM); None for ITI-41.
    - ``xdm_action``: add the French ``action`` slot (C/D) for REPLACE/DELETE jobs (XDM only).
    - ``replaced_entry_uuid``: registry entryUUID of the document being replaced; when given
      with a REPLACE job, an RPLC association is added (ITI-41 hook: the caller finds the
      entryUUID by querying the registry for ``job.header.parent_document_id``).
    """
    return _submission(job, submission_time=submission_time, source_id=source_id,
                       document_filename=document_filename, content_type_code=content_type_code,
                       xdm_action=xdm_action, replaced_entry_uuid=replaced_entry_uuid)


def build_metadata_update(job: DocumentJob, *, submission_time: datetime, source_id: str,
                          previous_version: str = "1",
                          content_type_code: Coded = DEFAULT_CONTENT_TYPE) -> etree._Element:
    """The ITI-57 ``SubmitObjectsRequest`` replacing the metadata of the job's document already in the registry.

    Built for MODIF_CONF_CODE=Y: the entry's confidentialityCode list becomes
    :func:`confidentiality_codes` of the job, without a new document. No French source in our
    material says how the DMP takes a masking change, so this follows the IHE standard,
    *Update DocumentEntry Metadata* (ITI TF-2b §3.57, metadata versioning of TF-3 §4.2.3.1.7
    / XDS Metadata Update supplement):

    - a complete new DocumentEntry (every attribute rebuilt from the job, as for the deposit,
      so hash, size and ``uniqueId`` are the stored document's) under a new entryUUID
      (:func:`version_entry_uuid`), its ``lid`` = the logicalID = the deposit's
      :func:`entry_uuid`, and ``rim:VersionInfo`` naming the version we expect it to become
      (the registry assigns the version; ours is informative);
    - a submission set of its own (ids derived from the new version and the codes), whose
      HasMember association to the entry carries ``SubmissionSetStatus=Original`` and
      ``PreviousVersion`` = the versionName of the entry being updated.

    ``previous_version`` is that versionName. Without a registry query (ITI-18) the engine
    cannot read it; the default ``"1"`` means "deposited once, never updated since". A
    registry holding another version refuses the update (XDSMetadataVersionError).
    """
    try:
        new_version = int(previous_version) + 1
    except ValueError as exc:
        raise MappingError(f"metadata update: PreviousVersion {previous_version!r} is not a version number") from exc
    codes = "+".join(code for code, _display, _scheme in confidentiality_codes(job))
    return _submission(job, submission_time=submission_time, source_id=source_id, document_filename=None,
                       content_type_code=content_type_code, xdm_action=False, replaced_entry_uuid=None,
                       versioning=_Versioning(
                           entry_uuid=version_entry_uuid(job.header.document_id, new_version),
                           logical_id=entry_uuid(job.header.document_id), version_name=str(new_version),
                           previous_version=previous_version, submission_key=f"update|v{new_version}|{codes}"))


@dataclass(frozen=True)
class _Versioning:
    """What makes a submission a metadata update rather than a first deposit."""

    entry_uuid: str
    logical_id: str
    version_name: str
    previous_version: str
    submission_key: str


def _submission(job: DocumentJob, *, submission_time: datetime, source_id: str, document_filename: str | None,
                content_type_code: Coded, xdm_action: bool, replaced_entry_uuid: str | None,
                versioning: _Versioning | None = None) -> etree._Element:
    """The one metadata builder behind :func:`build_submission` and :func:`build_metadata_update`."""
    header = job.header
    if not source_id:
        raise MappingError("XDS sourceId is not configured")
    patient_id = _patient_id(job)
    de_id = versioning.entry_uuid if versioning else entry_uuid(header.document_id)
    ss_key = f"{job.action.value}|{versioning.submission_key}" if versioning else job.action.value
    ss_id = _urn_uuid("submission-set", header.document_id, ss_key)
    ss_unique_id = f"2.25.{uuid.uuid5(_NS_LIAISON, f'ss-unique-id|{header.document_id}|{ss_key}').int}"

    request = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    objects = _sub(request, "RegistryObjectList")

    package = _sub(objects, "RegistryPackage", id=ss_id, objectType=f"{_OT}RegistryPackage")
    _slot(package, "submissionTime", _xds_time_of(submission_time))
    _slot(package, "intendedRecipient", *[f"||^^Internet^{r.address}" for r in addressed(job.recipients)])
    _name(package, header.title)
    sender = _submission_author(job)
    _author(package, ss_id, SS_AUTHOR, sender, "ss-author")
    _classification(package, ss_id, SS_CONTENT_TYPE_CODE, *content_type_code, key="ss-content-type")
    _external_id(package, ss_id, SS_PATIENT_ID, patient_id, "XDSSubmissionSet.patientId")
    _external_id(package, ss_id, SS_SOURCE_ID, source_id, "XDSSubmissionSet.sourceId")
    _external_id(package, ss_id, SS_UNIQUE_ID, ss_unique_id, "XDSSubmissionSet.uniqueId")

    entry = _sub(objects, "ExtrinsicObject", id=de_id, mimeType="text/xml", objectType=DE_OBJECT_TYPE,
                 **({"lid": versioning.logical_id} if versioning else {}))
    _slot(entry, "creationTime", xds_time(header.effective_time))
    _slot(entry, "hash", hashlib.sha1(job.cda).hexdigest())
    _slot(entry, "languageCode", header.language)
    if header.legal_authenticator is not None:
        _slot(entry, "legalAuthenticator", _xcn(header.legal_authenticator))
    _slot(entry, "serviceStartTime", xds_time(header.service_start))
    _slot(entry, "serviceStopTime", xds_time(header.service_stop))
    _slot(entry, "size", str(len(job.cda)))
    _slot(entry, "sourcePatientId", _source_patient_id(job))
    _slot(entry, "sourcePatientInfo", *_source_patient_info(job))
    if document_filename:
        _slot(entry, "URI", document_filename)
    if xdm_action and job.action in _XDM_ACTION:
        _slot(entry, ACTION_SLOT, _XDM_ACTION[job.action])
    _name(entry, header.title)
    if versioning:
        _sub(entry, "VersionInfo", versionName=versioning.version_name)    # ebRIM order: after Name
    for index, author in enumerate(header.authors or (sender,)):
        _author(entry, de_id, DE_AUTHOR, author, f"de-author-{index}")
    _classification(entry, de_id, DE_CLASS_CODE, *class_code_for(header.type_code), key="class")
    for index, (code, display, scheme) in enumerate(confidentiality_codes(job)):
        _classification(entry, de_id, DE_CONFIDENTIALITY_CODE, code, display, scheme, key=f"conf-{index}")
    _classification(entry, de_id, DE_FORMAT_CODE, *format_code(header.format_code), key="format")
    _classification(entry, de_id, DE_FACILITY_TYPE_CODE, header.facility_type_code,
                    header.facility_type_display, FACILITY_TYPE_SCHEME, key="facility")
    _classification(entry, de_id, DE_PRACTICE_SETTING_CODE, header.practice_setting_code,
                    header.practice_setting_display, PRACTICE_SETTING_SCHEME, key="practice")
    _classification(entry, de_id, DE_TYPE_CODE, header.type_code, header.type_display, header.type_system,
                    key="type")
    _external_id(entry, de_id, DE_PATIENT_ID, patient_id, "XDSDocumentEntry.patientId")
    _external_id(entry, de_id, DE_UNIQUE_ID, header.document_id, "XDSDocumentEntry.uniqueId")

    _sub(objects, "Classification", id=_urn_uuid(ss_id, "ss-node"), classifiedObject=ss_id,
         classificationNode=SS_NODE, objectType=f"{_OT}Classification")
    member = _sub(objects, "Association", id=_urn_uuid(ss_id, "has-member"), associationType=HAS_MEMBER,
                  sourceObject=ss_id, targetObject=de_id, objectType=f"{_OT}Association")
    _slot(member, "SubmissionSetStatus", "Original")
    if versioning:
        _slot(member, "PreviousVersion", versioning.previous_version)
    if replaced_entry_uuid and job.action is Action.REPLACE:
        _sub(objects, "Association", id=_urn_uuid(ss_id, "rplc"), associationType=RPLC,
             sourceObject=de_id, targetObject=replaced_entry_uuid, objectType=f"{_OT}Association")
    if not (header.facility_type_code and header.practice_setting_code):
        log.warning("xds_metadata_incomplete", document_id=header.document_id)
    return request


def metadata_bytes(request: etree._Element) -> bytes:
    """Serialise a SubmitObjectsRequest as UTF-8 XML with its declaration."""
    return etree.tostring(request, xml_declaration=True, encoding="UTF-8")


_TS = re.compile(r"(\d{4,14})(?:\.\d*)?([+-]\d{2,4})?$")


def xds_time(hl7_ts: str) -> str:
    """An HL7 TS (``YYYYMMDDHHMMSS[.f][+ZZZZ]``) as an XDS DTM: UTC, same precision, no fraction.

    Without an offset the digits are kept as written (the CDA gives no way to know the zone).
    """
    match = _TS.match((hl7_ts or "").strip())
    if not match:
        return ""
    digits, offset = match.groups()
    if not offset or len(offset) != 5 or len(digits) < 10:
        return digits
    local = datetime.strptime(digits.ljust(14, "0"), "%Y%m%d%H%M%S")
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    return (local - delta if offset[0] == "+" else local + delta).strftime("%Y%m%d%H%M%S")[:len(digits)]


# --- element helpers ------------------------------------------------------------------------

def _urn_uuid(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS_LIAISON, '|'.join(parts))}"


def _sub(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{RIM}}}{tag}", attrs)


def _slot(parent: etree._Element, name: str, *values: str) -> None:
    values = tuple(v for v in values if v)
    if values:
        value_list = _sub(_sub(parent, "Slot", name=name), "ValueList")
        for value in values:
            _sub(value_list, "Value").text = value


def _name(parent: etree._Element, text: str) -> None:
    if text:
        _sub(_sub(parent, "Name"), "LocalizedString", charset="UTF-8", value=text,
             **{"{http://www.w3.org/XML/1998/namespace}lang": "fr-FR"})


def _classification(parent: etree._Element, object_id: str, scheme: str, code: str, display: str,
                    coding_scheme: str, *, key: str) -> None:
    if not code:
        return
    cl = _sub(parent, "Classification", id=_urn_uuid(object_id, key), classificationScheme=scheme,
              classifiedObject=object_id, nodeRepresentation=code, objectType=f"{_OT}Classification")
    _slot(cl, "codingScheme", coding_scheme)
    _name(cl, display or code)


def _external_id(parent: etree._Element, object_id: str, scheme: str, value: str, name: str) -> None:
    ext = _sub(parent, "ExternalIdentifier", id=_urn_uuid(object_id, name), identificationScheme=scheme,
               registryObject=object_id, value=value, objectType=f"{_OT}ExternalIdentifier")
    _name(ext, name)


def _author(parent: etree._Element, object_id: str, scheme: str, who: Participant, key: str) -> None:
    cl = _sub(parent, "Classification", id=_urn_uuid(object_id, key), classificationScheme=scheme,
              classifiedObject=object_id, nodeRepresentation="", objectType=f"{_OT}Classification")
    _slot(cl, "authorPerson", _xcn(who))
    _slot(cl, "authorInstitution", _xon(who))


def _esc(value: str) -> str:
    """HL7 v2 escaping (slot values are HL7 v2 data types) of the delimiters that may appear in names."""
    return (value.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
            .replace("&", "\\T\\").replace("~", "\\R\\"))


def _xcn(who: Participant) -> str:
    """A person as XCN: ``id^FAMILY^Given^^^^^^&<IdNat_PS OID>&ISO^D^^^IDNPS``."""
    if not (who.identifier or who.family or who.given):
        return ""
    value = f"{_esc(who.identifier)}^{_esc(who.family)}^{_esc(who.given)}"
    if who.identifier:
        value += f"^^^^^^&{RPPS_OID}&ISO^D^^^IDNPS"
    return value


def _xon(who: Participant) -> str:
    """An organisation as XON: ``Name^^^^^&<IdNat_Struct OID>&ISO^IDNST^^^<id>``."""
    if not (who.organisation_id or who.organisation_name):
        return ""
    value = _esc(who.organisation_name)
    if who.organisation_id:
        value += f"^^^^^&{FINESS_OID}&ISO^IDNST^^^{_esc(who.organisation_id)}"
    return value


def _patient_id(job: DocumentJob) -> str:
    """XDS patientId: the INS as ``<INS>^^^&<oid>&ISO^NH``; without an INS, the source id."""
    header = job.header
    if header.ins:
        return f"{header.ins}^^^&{header.ins_oid}&ISO^NH"
    fallback = _source_patient_id(job)
    if not fallback:
        raise MappingError(f"document {header.document_id} has no patient identifier")
    log.warning("xds_patient_id_without_ins", document_id=header.document_id)
    return fallback


def _source_patient_id(job: DocumentJob) -> str:
    """The local IPP (the job's, or the first non-INS recordTarget id), else the INS."""
    local = [(root, ext) for root, ext in job.header.patient_ids if root not in INS_OIDS and ext]
    local.sort(key=lambda pid: pid[1] != job.patient_ipp)          # the job's IPP first, if listed
    if local:
        return patient_cx(*local[0])
    return patient_cx(job.header.ins_oid, job.header.ins) if job.header.ins else ""


def _source_patient_info(job: DocumentJob) -> list[str]:
    header = job.header
    info = [f"PID-3|{patient_cx(root, ext)}" for root, ext in header.patient_ids if ext]
    if header.patient_family or header.patient_given:
        info.append(f"PID-5|{_esc(header.patient_family)}^{_esc(header.patient_given)}^^^^^L")
    if header.patient_birth_time:
        info.append(f"PID-7|{header.patient_birth_time[:8]}")
    if header.patient_gender:
        info.append(f"PID-8|{header.patient_gender}")
    return info


def _submission_author(job: DocumentJob) -> Participant:
    """The submission set author: PRT SB sender, else the first CDA author, else the custodian."""
    if job.sender.identifier or job.sender.organisation_id or job.sender.family:
        return job.sender
    return job.header.authors[0] if job.header.authors else (job.header.custodian or Participant())


def _xds_time_of(moment: datetime) -> str:
    """Submission time in UTC; a naive datetime is taken as UTC."""
    return (moment.astimezone(timezone.utc) if moment.tzinfo else moment).strftime("%Y%m%d%H%M%S")
