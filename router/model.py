"""Domain types shared by every stage: what a message becomes on its way out.

Both ways in (PFI mode: the CDA arrives finished; render mode: Liaison renders
it) produce the same :class:`DocumentJob`. Everything downstream of the router
(packaging, mail, deposit, business acknowledgements) sees only DocumentJobs,
so these types are plain frozen dataclasses that travel over the bus as JSON.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    """What the sender asks for the document (OBX-11 F/C/D, ORC-1 NW/RO/CA)."""

    PUBLISH = "publish"
    REPLACE = "replace"
    DELETE = "delete"


class RecipientKind(StrEnum):
    PROFESSIONAL = "ps"      # a health professional, organisation or application mailbox
    PATIENT = "patient"      # the patient's own Mon espace santé mailbox


@dataclass(frozen=True)
class MessageSource:
    """Who sent the HL7 message: needed to answer with ZAM and to key idempotency."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    control_id: str
    message_type: str          # e.g. "ORU^R01"
    version: str = "2.5"
    charset: str = "UNICODE UTF-8"
    codec: str = "utf-8"          # the Python codec the message was decoded with
    msh: str = ""                 # the original MSH segment, to answer with ACK/ZAM


@dataclass(frozen=True)
class Refusal:
    """Why a recipient the HIS named will not be mailed, decided when its message was read.

    The fields of the :class:`~router.errors.ValidationError` that would have
    refused the whole message: the other recipients go on, and this one gets
    its own REFUSED outcome and ZAM^Z02 N when the job reaches delivery.
    """

    reason: str
    hl7_code: str = "207"
    hl7_text: str = "Application internal error"


@dataclass(frozen=True)
class Recipient:
    """One MSSanté mailbox a document goes to, with the identity the HIS gave for it."""

    address: str
    kind: RecipientKind = RecipientKind.PROFESSIONAL
    identifier: str = ""       # XCN.1 (8+RPPS, INS, ...) or empty for organisation mailboxes
    name: str = ""
    refusal: Refusal | None = None     # set: never mailed, answered with this reason


def addressed(recipients: tuple[Recipient, ...]) -> tuple[Recipient, ...]:
    """The recipients that may be written to: those without a refusal."""
    return tuple(r for r in recipients if r.refusal is None)


@dataclass(frozen=True)
class Participant:
    """A person or organisation (the sender of PRT SB, a CDA author)."""

    identifier: str = ""
    family: str = ""
    given: str = ""
    organisation_id: str = ""
    organisation_name: str = ""


@dataclass(frozen=True)
class Flags:
    """The MetaDMPMSS routing and visibility flags of the PFI volet."""

    masque_ps: bool = False
    invisible_patient: bool = False
    invisible_rep_legaux: bool = False
    connexion_secrete: bool = False
    modif_conf_code: bool = False
    dest_dmp: bool = False
    dest_mss_ps: bool = False
    dest_mss_patient: bool = False
    ack_reception: bool = False
    ack_lecture: bool = False
    patient_no_reply: bool = False     # NTE-4 "FIN" after DESTMSSANTEPAT → X-MSS-MES: FIN
    body_ps: str | None = None          # CORPSMAIL_PS, decoded
    body_patient: str | None = None     # CORPSMAIL_PATIENT, decoded


@dataclass(frozen=True)
class DmpConsent:
    """The patient's DMP status and consent as PAM-FR's ZFA segment carries it (every field, as sent).

    Field positions follow PAM-FR 2.11.1 (french-interop.md §5.1); dates are HL7 TS as sent.
    ``feeding`` (ZFA-9) is ``INO`` (informed, no objection), ``IO`` (objection to feeding the
    DMP) or ``NA`` (not collected); ``consultation`` (ZFA-11) is ``IC`` (consent to consult
    the DMP), ``INC`` (refused) or ``NA``. Patient data: adapters keep it encrypted.
    """

    status: str = ""                    # ZFA-1: ACTIF, FERME, ARCHIVE, INEXISTANT...
    status_date: str = ""               # ZFA-2
    closed_date: str = ""               # ZFA-3: when the DMP was closed
    access_authorised: str = ""         # ZFA-4: valid access authorisation for the facility (Y/N)
    access_authorised_date: str = ""    # ZFA-5
    break_glass_opposition: str = ""    # ZFA-6: objection to access in emergency ("bris de glace") mode (Y/N)
    regulation_opposition: str = ""     # ZFA-7: objection to access by the emergency call centre (Y/N)
    oppositions_date: str = ""          # ZFA-8
    feeding: str = ""                   # ZFA-9: INO / IO / NA
    feeding_date: str = ""              # ZFA-10
    consultation: str = ""              # ZFA-11: IC / INC / NA
    consultation_date: str = ""         # ZFA-12

    @property
    def feeding_objected(self) -> bool:
        """ZFA-9 = IO: the patient objects to documents being added to their DMP."""
        return self.feeding == "IO"


@dataclass(frozen=True)
class CdaHeader:
    """What the engine reads from a CDA header to package, address and deposit it."""

    document_id: str                   # ClinicalDocument/id as root[^extension]
    set_id: str = ""
    version: int = 1
    type_code: str = ""                # LOINC of ClinicalDocument/code
    type_display: str = ""
    type_system: str = "2.16.840.1.113883.6.1"
    title: str = ""
    effective_time: str = ""           # HL7 TS as written
    confidentiality: str = "N"
    language: str = "fr-FR"
    template_ids: tuple[str, ...] = ()
    format_code: str = ""
    patient_ids: tuple[tuple[str, str], ...] = ()   # (root OID, extension) of recordTarget/patientRole/id
    ins: str = ""                      # matricule INS when an INS OID is present
    ins_oid: str = ""
    patient_family: str = ""
    patient_given: str = ""
    patient_birth_time: str = ""
    patient_gender: str = ""
    ins_traits_complete: bool = False  # birth name, first given, all given, birth date, birthplace, sex
    authors: tuple[Participant, ...] = ()
    legal_authenticator: Participant | None = None
    custodian: Participant | None = None
    facility_type_code: str = ""       # encompassingEncounter/location/healthCareFacility/code
    facility_type_display: str = ""
    practice_setting_code: str = ""    # serviceEvent/performer/.../standardIndustryClassCode
    practice_setting_display: str = ""
    service_start: str = ""
    service_stop: str = ""
    parent_document_id: str = ""       # relatedDocument[@typeCode=RPLC]/parentDocument/id


_CDA_KEY = b',"cda":"'


@dataclass(frozen=True)
class DocumentJob:
    """One document to send: the unit every downstream stage works on."""

    job_id: str                        # stable: journal message key + document id
    message_key: str                   # the journal key of the HL7 message it came from
    source: MessageSource
    action: Action
    cda: bytes
    header: CdaHeader
    flags: Flags = field(default_factory=Flags)
    recipients: tuple[Recipient, ...] = ()
    reply_to: str = ""
    sender: Participant = field(default_factory=Participant)
    patient_ipp: str = ""
    patient_identity_status: str = ""  # PID-32 (QUAL, VALI, PROV...): a DMP deposit needs a qualified INS
    dmp_consent: DmpConsent | None = None   # the ZFA of the job's own message; None: it carried none
    dmp_opposition: bool = False       # PD1-12 = Y: the patient objects to sharing (no deposit)

    @property
    def content_digest(self) -> str:
        """SHA-256 of the CDA bytes: what was sent, as opposed to the id it claims."""
        return hashlib.sha256(self.cda).hexdigest()

    def to_json(self) -> bytes:
        """The job as JSON, the CDA base64 under the last key, ``"cda"``.

        The CDA's base64 is spliced in as bytes, not passed through ``json.dumps`` and
        ``str.encode``: for a CDA carrying a 20 MB PDF that is two copies of ~27 MB fewer."""
        data = asdict(self)
        del data["cda"]
        head = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return b"".join((head[:-1], _CDA_KEY, base64.b64encode(self.cda), b'"}'))

    @classmethod
    def from_json(cls, raw: bytes | str) -> "DocumentJob":
        raw = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        at = raw.rfind(_CDA_KEY) if raw.endswith(b'"}') else -1
        if at >= 0 and raw.find(b'"', at + len(_CDA_KEY)) == len(raw) - 2:
            # As to_json writes it: decode the base64 where it lies, without a str copy of it.
            data = json.loads(raw[:at] + b"}")
            data["cda"] = base64.b64decode(memoryview(raw)[at + len(_CDA_KEY):-2])
        else:
            data = json.loads(raw)
            data["cda"] = base64.b64decode(data["cda"])
        data["source"] = MessageSource(**data["source"])
        data["action"] = Action(data["action"])
        data["flags"] = Flags(**data["flags"])
        data["sender"] = Participant(**data["sender"])
        data["recipients"] = tuple(
            Recipient(**{**r, "kind": RecipientKind(r["kind"]),
                         "refusal": Refusal(**r["refusal"]) if r.get("refusal") else None})
            for r in data["recipients"]
        )
        data["header"] = _header_from_dict(data["header"])
        data["dmp_consent"] = _consent_from_dict(data.get("dmp_consent"), data.pop("dmp_status", ""))
        return cls(**data)

    def with_recipients(self, recipients: tuple[Recipient, ...]) -> "DocumentJob":
        return replace(self, recipients=recipients)


def consent_from_dict(data: dict[str, Any] | None) -> DmpConsent | None:
    """A :class:`DmpConsent` from its ``asdict`` form (fields it does not know are ignored)."""
    if not data:
        return None
    known = {f.name for f in fields(DmpConsent)}
    return DmpConsent(**{k: v for k, v in data.items() if k in known})


def _consent_from_dict(data: dict[str, Any] | None, legacy_status: str) -> DmpConsent | None:
    """The job's consent; a job queued before ZFA was kept whole carries only ``dmp_status`` (ZFA-1)."""
    return consent_from_dict(data) or (DmpConsent(status=legacy_status) if legacy_status else None)


def _header_from_dict(data: dict[str, Any]) -> CdaHeader:
    data = dict(data)
    data["template_ids"] = tuple(data["template_ids"])
    data["patient_ids"] = tuple(tuple(p) for p in data["patient_ids"])
    data["authors"] = tuple(Participant(**a) for a in data["authors"])
    for key in ("legal_authenticator", "custodian"):
        if data.get(key) is not None:
            data[key] = Participant(**data[key])
    known = {f.name for f in fields(CdaHeader)}
    return CdaHeader(**{k: v for k, v in data.items() if k in known})
