"""PFI mode: an ORU^R01 or MDM^T02/T10/T04 carrying a finished CDA becomes a DocumentJob.

CI-SIS volet "Transmission d'un document CDA-R2 en HL7v2" (IG
``ansforge/IG-hl7v2-volet-transmission-document-cda-r2``, ``profils-messages.md``):

- MSH-9 ``ORU^R01^ORU_R01`` (HL7 2.5) or ``MDM^T02|T10|T04^MDM_T02`` (2.6);
- the document: ``OBX|n|ED|<type>^<label>^LN||^TEXT^XML^Base64^<CDA>||||||F``
  (``text`` for MDM), OBX-11 F / C / D = publish / replace / delete, which must
  agree with ORC-1 NW / RO / CA and, for MDM, with the trigger T02 / T10 / T04;
- PRT SB / RCT / REPLY after it (:mod:`router.recipients_pfi`);
- MetaDMPMSS OBX rows (:mod:`router.flags`);
- PID-3 must identify the same patient as the CDA's recordTarget.

A fault of one recipient (a malformed address, a patient address that is not
this document's patient's) refuses that recipient alone: it stays on the job
with its :class:`~router.model.Refusal`, is never mailed, and gets its own
ZAM^Z02 N from the deliver stage, while the others are mailed and the DMP
deposit goes on. Only when no recipient is left to mail and the DMP is not
asked for does the first recipient's fault refuse the message.

Every message-level failure is a typed error from :mod:`router.errors` whose
reason names the field at fault, never patient data. HL7 codes come from the IG's
``error-codes.md``: 100/101/102/103/200/201 from messageErrorCondition (207 is
kept for our own faults),
and for the patient checks 902 / 903 / 904 from its applicationErrorCode table
(patient unknown / no INS in the document / INS does not match).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import hl7
import structlog

from router.errors import ParseError, UnsupportedMessageError, ValidationError
from router.dmp_rules import read_consent
from router.flags import check_combination, decode_ed, is_meta_row, read_flags
from router.model import (
    Action, CdaHeader, DocumentJob, Flags, MessageSource, Participant, Recipient, RecipientKind, addressed,
)
from router.recipients_pfi import (
    Participants, INS_OIDS, PATIENT_DOMAIN, is_patient_address, read_participants, refusal_error, refusal_of,
    repetitions, segment_id, value,
)

log = structlog.get_logger(__name__)

_TRIGGERS = {
    ("ORU", "R01"): None,                 # the action comes from OBX-11 and ORC-1
    ("MDM", "T02"): Action.PUBLISH,
    ("MDM", "T10"): Action.REPLACE,
    ("MDM", "T04"): Action.DELETE,
}
_OBX11 = {"F": Action.PUBLISH, "C": Action.REPLACE, "D": Action.DELETE}
_ORC1 = {"NW": Action.PUBLISH, "RO": Action.REPLACE, "CA": Action.DELETE}


def read_pfi(message: hl7.Message, *, message_key: str, source: MessageSource,
             cda_reader: Callable[[bytes], CdaHeader]) -> DocumentJob:
    """Check a PFI message and return the DocumentJob it asks for.

    Cheap structural checks run before the CDA is parsed; ``cda_reader``
    (``mappings.cda_header.read_header`` in production) raises its own typed
    errors, which pass through.
    """
    kind, trigger = _message_type(message)
    document = _document_obx(message)
    action = _action(message, document, kind, trigger)
    cda = decode_ed(document, where=f"document OBX-{value(document, 1) or '?'}")
    flags, participants = check_routing(message)
    header = cda_reader(cda)
    patient_ipp = _check_patient(message, header)
    participants = replace(participants, recipients=_check_patient_addresses(participants.recipients, header))
    require_destination(flags, participants.recipients)
    dmp_consent, dmp_opposition = read_consent(message)
    if action is Action.REPLACE and not header.parent_document_id:
        raise ValidationError("replace (OBX-11=C) but the CDA has no "
                              "relatedDocument/parentDocument/id to replace",
                              hl7_code="101", hl7_text="Required field missing")
    job = DocumentJob(
        job_id=f"{message_key}:{header.document_id}",
        message_key=message_key,
        source=source,
        action=action,
        cda=cda,
        header=header,
        flags=flags,
        recipients=participants.recipients,
        reply_to=participants.reply_to,
        sender=participants.sender or Participant(),
        patient_ipp=patient_ipp,
        patient_identity_status=_identity_status(message),
        dmp_consent=dmp_consent,
        dmp_opposition=dmp_opposition,
    )
    log.info("pfi.read", control_id=source.control_id, document_id=header.document_id,
             action=action.value, recipients=len(job.recipients),
             refused=len(job.recipients) - len(addressed(job.recipients)), dest_dmp=flags.dest_dmp)
    return job


def _identity_status(message: hl7.Message) -> str:
    """PID-32's identity status (the first code; the field may repeat with other attributes)."""
    pid = next((segment for segment in message if segment_id(segment) == "PID"), None)
    return value(pid, 32).upper() if pid is not None else ""


def check_routing(message) -> tuple[Flags, Participants]:
    """The MetaDMPMSS flags and PRT participants, checked against the volet's rules.

    Takes a python-hl7 message or, at the door, a list of lazy segments
    (:func:`router.hl7.msh.iter_segments`): the listener runs it before its
    ACK so that a forbidden combination or a missing recipient is an AE with
    its reason, without paying for python-hl7's full parse on the hot path.
    The flags are judged against every recipient the HIS named, refused or
    not: a refused recipient is still one it asked for, and is answered.
    """
    flags = read_flags(message)
    participants = read_participants(message)
    require_destination(flags, participants.recipients)
    check_combination(flags, has_ps_recipients=participants.has_ps_recipients,
                      has_patient_recipient=participants.has_patient_recipient, message=message)
    if flags.dest_dmp and participants.sender is None:
        raise ValidationError("DESTDMP=Y needs the sender PRT SB (VIHF author)",
                              hl7_code="100", hl7_text="Segment sequence error")
    return flags, participants


def _segments(message: hl7.Message, kind: str) -> list[hl7.Segment]:
    return [segment for segment in message if segment_id(segment) == kind]


def _message_type(message: hl7.Message) -> tuple[str, str]:
    headers = _segments(message, "MSH")
    if not headers:
        raise ParseError("no MSH segment")
    kind, trigger = value(headers[0], 9).upper(), value(headers[0], 9, 2).upper()
    if (kind, trigger) in _TRIGGERS:
        return kind, trigger
    expected = "PFI messages are ORU^R01 and MDM^T02/T10/T04"
    if kind in ("ORU", "MDM"):
        raise UnsupportedMessageError(f"{kind}^{trigger}: unsupported trigger; {expected}",
                                      hl7_code="201", hl7_text="Unsupported event code")
    raise UnsupportedMessageError(f"{kind}^{trigger}: {expected}")


def _document_obx(message: hl7.Message) -> hl7.Segment:
    """The first ED OBX outside MetaDMPMSS.

    An ORU may carry the same document twice, e.g. as CDA level 1 and level 3
    ("Le message ORU peut transmettre une ou deux instances", profils-messages.md,
    and OBX|1 / OBX|2 in the ANS samples). The first OBSERVATION group is the
    one the PRT segments belong to and that the volet describes as "the"
    document; the second is an alternate rendering with the same clinical
    content, so the first is taken and the others are only counted.
    """
    documents = [obx for obx in _segments(message, "OBX")
                 if value(obx, 2).upper() == "ED" and not is_meta_row(obx)]
    if not documents:
        raise ValidationError("no document OBX (OBX-2=ED outside the MetaDMPMSS rows)",
                              hl7_code="100", hl7_text="Segment sequence error")
    if len(documents) > 1:
        log.info("pfi.alternate_documents_ignored", count=len(documents) - 1)
    return documents[0]


def _action(message: hl7.Message, document: hl7.Segment, kind: str, trigger: str) -> Action:
    """OBX-11, checked against ORC-1 (required for ORU) and the MDM trigger."""
    status = value(document, 11).upper()
    if status not in _OBX11:
        raise ValidationError(f"document OBX-11 {status!r} is not F, C or D",
                              hl7_code="103", hl7_text="Table value not found")
    action = _OBX11[status]
    by_trigger = _TRIGGERS[(kind, trigger)]
    if by_trigger is not None and by_trigger is not action:
        raise ValidationError(f"{kind}^{trigger} asks for {by_trigger.value} but OBX-11={status} "
                              f"asks for {action.value}", hl7_code="103", hl7_text="Table value not found",
                              hl7_location="MSH^1^9^1^2")
    orders = _segments(message, "ORC")
    if not orders:
        if kind == "ORU":
            raise ValidationError("ORU^R01 without ORC (ORC-1 NW/RO/CA is required)",
                                  hl7_code="100", hl7_text="Segment sequence error")
        return action
    control = value(orders[0], 1).upper()
    if control not in _ORC1:
        raise ValidationError(f"ORC-1 {control!r} is not NW, RO or CA",
                              hl7_code="103", hl7_text="Table value not found", hl7_location="ORC^1^1")
    if _ORC1[control] is not action:
        raise ValidationError(f"ORC-1={control} asks for {_ORC1[control].value} but "
                              f"OBX-11={status} asks for {action.value}", hl7_code="103",
                              hl7_text="Table value not found", hl7_location="ORC^1^1")
    return action


def _check_patient(message: hl7.Message, header: CdaHeader) -> str:
    """PID-3 against recordTarget/patientRole/id; returns the IPP (PID-3 type PI).

    With an INS in PID-3 (CX.5 = INS or an INS OID in CX.4.2), the CDA must
    carry the same matricule under the same OID. Without one, the IPP must be
    among the CDA's patient ids (compared on the extension: HIS and CDA name
    the IPP's assigning authority differently).
    """
    pids = _segments(message, "PID")
    if not pids:
        raise ValidationError("no PID segment", hl7_code="100", hl7_text="Segment sequence error")
    pid = pids[0]
    ins = ins_oid = ipp = ""
    for rep in range(1, repetitions(pid, 3) + 1):
        identifier = value(pid, 3, repetition=rep)
        id_type = value(pid, 3, 5, repetition=rep).upper()
        oid = value(pid, 3, 4, 2, repetition=rep)
        if not identifier:
            continue
        if (id_type == "INS" or oid in INS_OIDS) and not ins:
            ins, ins_oid = identifier, oid
        elif id_type == "PI" and not ipp:
            ipp = identifier
    if ins:
        if not header.ins:
            raise ValidationError("PID-3 carries an INS but the CDA recordTarget has none",
                                  hl7_code="903", hl7_text="INS non présent dans le document")
        if header.ins != ins or (ins_oid and header.ins_oid != ins_oid):
            raise ValidationError("the INS in PID-3 does not match the CDA recordTarget "
                                  "(matricule or OID differ)",
                                  hl7_code="904", hl7_text="INS ne correspondant pas")
    elif ipp:
        if ipp not in {extension for _, extension in header.patient_ids}:
            raise ValidationError("the IPP in PID-3 is not among the CDA recordTarget ids",
                                  hl7_code="902", hl7_text="Identifiant patient inconnu")
    else:
        raise ValidationError("PID-3 has neither an INS nor an IPP (CX.5=PI)",
                              hl7_code="101", hl7_text="Required field missing")
    return ipp


def require_destination(flags: Flags, recipients: tuple[Recipient, ...]) -> None:
    """Refuse the message when every recipient is refused and the DMP is not asked for.

    The error is the first recipient's own, as when one bad recipient refused the message.
    """
    if recipients and not flags.dest_dmp and not addressed(recipients):
        raise refusal_error(recipients[0].refusal)


def _check_patient_addresses(recipients: tuple[Recipient, ...], header: CdaHeader) -> tuple[Recipient, ...]:
    """The recipients, a patient one refused unless it is this document's patient: <INS>@patient.mssante.fr."""
    return tuple(replace(recipient, refusal=refusal_of(fault))
                 if (fault := _patient_address_fault(recipient, header)) else recipient
                 for recipient in recipients)


def _patient_address_fault(recipient: Recipient, header: CdaHeader) -> ValidationError | None:
    if recipient.kind is not RecipientKind.PATIENT or recipient.refusal is not None:
        return None
    if not is_patient_address(recipient.address):
        return ValidationError(f"a patient recipient (PRT RCT with an INS) must use an @{PATIENT_DOMAIN} address")
    if not header.ins:
        return ValidationError("a patient recipient needs the patient's INS in the CDA",
                               hl7_code="903", hl7_text="INS non présent dans le document")
    if recipient.address.split("@", 1)[0] != header.ins:
        return ValidationError("the patient's MSSanté address does not match the CDA's INS",
                               hl7_code="904", hl7_text="INS ne correspondant pas")
    return None
