"""Our own PFI test messages: ORU^R01 / MDM^T02-T10-T04 carrying a CDA, fictitious data only.

Built after the CI-SIS volet "Transmission d'un document CDA-R2 en HL7v2"
(profils-messages.md), never copied from the ANS samples. Every part can be
changed so a test can break exactly one thing::

    cda = make_cda()
    text = make_pfi_oru(cda)                                   # PS recipient, DESTMSSANTEPS=Y
    text = make_pfi_oru(cda, recipients=[DR_MARTIN, patient_rct()],
                        flags={"DESTMSSANTEPAT": "Y"}, no_reply=True)
    text = make_pfi_oru(cda, cda_base64="not base64!")          # broken payload
    text = make_pfi_oru(cda, patient=OTHER_PATIENT)             # PID != CDA
    text = make_pfi_oru(cda, replace={"PRT": None})             # drop every PRT
    text = make_pfi_mdm(cda, action="C", txa_parent_id=...)     # MDM^T10
    raw = encode_message(make_pfi_oru(cda, charset="8859/1"))   # bytes in MSH-18's charset

Patients carry valid test NIRs (key = 97 - first 13 digits mod 97) under the
INS test OID; professionals carry RPPS numbers with a valid Luhn key.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

INS_TEST_OID = "1.2.250.1.213.1.4.10"
IPP_OID = "1.2.250.1.999.1.1"            # fictitious hospital IPP domain
DOC_ROOT = "1.2.250.1.999.2.1"           # fictitious document id root
RPPS_OID = "1.2.250.1.71.4.2.1"
STRUCT_OID = "1.2.250.1.71.4.2.2"


@dataclass(frozen=True)
class Patient:
    ins: str = "285057512345623"         # NIR test: 2 85 05 75 123 456, key 23
    ins_oid: str = INS_TEST_OID
    ipp: str = "IPP000123"
    family: str = "TESTPATIENTE"
    given: str = "CAMILLE"
    birth_date: str = "19850512"
    sex: str = "F"
    identity_status: str = "VALI"        # PID-32, as in the ANS samples

    @property
    def address(self) -> str:
        return f"{self.ins}@patient.mssante.fr"

    @classmethod
    def of_cda(cls, cda: bytes) -> "Patient":
        """The patient a CDA's recordTarget names, so that PID-3 and the document agree."""
        from mappings.cda_header import read_header

        header = read_header(cda)
        return cls(ins=header.ins, ins_oid=header.ins_oid, family=header.patient_family,
                   given=header.patient_given, birth_date=header.patient_birth_time[:8], sex=header.patient_gender)


PATIENT = Patient()
OTHER_PATIENT = Patient(ins="172036904501235", ipp="IPP000999", family="AUTRETEST",
                        given="DOMINIQUE", birth_date="19720315", sex="M")


@dataclass(frozen=True)
class Rct:
    """One PRT RCT: a person (XCN), an organisation (XON name) or an application (device)."""

    address: str
    identifier: str = ""
    family: str = ""
    given: str = ""
    patient: bool = False
    organisation: str = ""
    device: str = ""


@dataclass(frozen=True)
class Sender:
    identifier: str = "810000543214"     # 8 + RPPS 10000543214
    family: str = "BERNARD"
    given: str = "Luc"
    organisation: str = "Laboratoire Test"
    finess: str = "999000001"


DR_MARTIN = Rct("dr.martin@hopital-test.mssante.fr", "810000123454", "MARTIN", "Claire")
DR_LEROY = Rct("dr.leroy@cabinet-test.mssante.fr", "810000678903", "LEROY", "Paul")
CARDIOLOGIE = Rct("cardiologie@hopital-test.mssante.fr", organisation="Cardiologie")
SENDER = Sender()


def patient_rct(patient: Patient = PATIENT, address: str | None = None) -> Rct:
    return Rct(address or patient.address, patient.ins, patient.family, patient.given, patient=True)


#: MetaDMPMSS rows in the IG's order, with this builder's defaults (PS mail only).
DEFAULT_FLAGS: dict[str, str] = {
    "MASQUE_PS": "N", "INVISIBLE_PATIENT": "N", "INVISIBLE_REP_LEGAUX": "N",
    "CONNEXION_SECRETE": "N", "MODIF_CONF_CODE": "N", "DESTDMP": "N",
    "DESTMSSANTEPS": "Y", "DESTMSSANTEPAT": "N", "ACK_RECEPTION": "Y", "ACK_LECTURE_MSS": "N",
}
_LABELS = {
    "MASQUE_PS": "Masqué aux professionnels de Santé",
    "INVISIBLE_PATIENT": "Document Non Visible par le patient",
    "INVISIBLE_REP_LEGAUX": "Non visible par les représentants Légaux du patient",
    "CONNEXION_SECRETE": "Connexion Secrete",
    "MODIF_CONF_CODE": "Modification Confidentiality Code",
    "DESTDMP": "Destinataire DMP",
    "DESTMSSANTEPS": "Destinataire (Professionnel de Santé, organisation ou BAL applicative)",
    "DESTMSSANTEPAT": "Destinataire Patient",
    "ACK_RECEPTION": "Accusé de réception",
    "ACK_LECTURE_MSS": "Accusé de lecture",
    "ACK_LECTURE": "Accusé de lecture",
}
_ORC = {"F": "NW", "C": "RO", "D": "CA"}
_MDM_TRIGGER = {"F": "T02", "C": "T10", "D": "T04"}
_CODECS = {"UNICODE UTF-8": "utf-8", "8859/1": "latin-1", "8859/15": "iso8859-15", "": "ascii"}


def make_pfi_oru(cda: bytes, **options: Any) -> str:
    """An ORU^R01 carrying ``cda``; every keyword of :func:`build_pfi` applies."""
    return build_pfi("ORU", cda, **options)


def make_pfi_mdm(cda: bytes, **options: Any) -> str:
    """An MDM^T02 (T10 for action C, T04 for D) carrying ``cda``; see :func:`build_pfi`."""
    return build_pfi("MDM", cda, **options)


def build_pfi(
    kind: str,
    cda: bytes,
    *,
    recipients: Sequence[Rct | tuple[str, str]] = (DR_MARTIN,),
    sender: Sender | None = SENDER,
    reply_to: str | None = None,
    flags: Mapping[str, str | None] | None = None,
    body_ps: str | None = None,
    body_patient: str | None = None,
    body_charset: str = "utf-8",
    no_reply: bool = False,
    action: str = "F",
    orc_control: str | None = None,
    message_type: str | None = None,
    control_id: str = "MSG0001",
    sending_app: str = "LABO-TEST",
    sending_facility: str = "LABO",
    receiving_app: str = "LIAISON",
    receiving_facility: str = "HOPITAL-TEST",
    timestamp: str = "20240315103000",
    patient: Patient = PATIENT,
    pid_ins: bool = True,
    document_type: tuple[str, str, str] = ("11502-2", "CR d'examens biologiques", "LN"),
    cda_base64: str | None = None,
    alternate_cda: bytes | None = None,
    txa_document_id: str = f"DOC-0001^^{DOC_ROOT}^ISO",
    txa_parent_id: str = "",
    charset: str = "UNICODE UTF-8",
    segment_sep: str = "\r",
    replace: Mapping[str, str | None] | None = None,
    extra_segments: Sequence[str] = (),
    transform: Callable[[list[str]], list[str]] | None = None,
) -> str:
    """A PFI message as text (segments joined by ``segment_sep``, one trailing).

    ``recipients`` takes :class:`Rct` or ``(identifier, address)`` pairs.
    ``flags`` overrides :data:`DEFAULT_FLAGS`; a value is written verbatim in
    OBX-5.1 (so ``" N "`` or ``"X"`` can be tested) and None drops the row.
    ``cda_base64`` replaces the encoded document verbatim. ``replace`` maps a
    segment id to the text that replaces all segments of that id (None drops
    them; the text takes the first one's place); ``extra_segments`` are
    appended; ``transform`` gets the final list and returns the one to join.
    """
    mdm = kind == "MDM"
    trigger = _MDM_TRIGGER.get(action, "T02") if mdm else "R01"
    msg_type = message_type or (f"MDM^{trigger}^MDM_T02" if mdm else "ORU^R01^ORU_R01")
    code = "^".join(_esc(part) for part in document_type)
    segments = [
        f"MSH|^~\\&|{sending_app}|{sending_facility}|{receiving_app}|{receiving_facility}|"
        f"{timestamp}||{msg_type}|{control_id}|P|{'2.6' if mdm else '2.5'}|||||FRA|{charset}|||"
        "2.1^CISIS_CDA_HL7_V2",
    ]
    if mdm:
        segments.append(f"EVN|{trigger}|{timestamp}")
    segments += [
        _pid(patient, with_ins=pid_ins),
        "PV1|1|I|UF-TEST||||||||||||||||VN0001^^^HOPITAL-TEST&1.2.250.1.999.1.2&ISO^VN",
        f"ORC|{orc_control if orc_control is not None else _ORC.get(action, 'NW')}|"
        f"CMD-0001^HIS|RES-0001^LABO||||||{timestamp}",
        f"OBR|1|CMD-0001^HIS|RES-0001^LABO|{code}|||{timestamp}",
    ]
    if mdm:
        segments.append(_txa(document_type[0], timestamp, txa_document_id, txa_parent_id))
    data = cda_base64 if cda_base64 is not None else base64.b64encode(cda).decode("ascii")
    text_type = "text" if mdm else "TEXT"
    segments.append(f"OBX|1|ED|{code}||^{text_type}^XML^Base64^{data}||||||{action}|")
    if sender is not None:
        segments.append(_prt_sb(sender))
    for recipient in recipients:
        if isinstance(recipient, tuple):
            recipient = Rct(recipient[1], recipient[0])
        segments.append(_prt_rct(recipient))
    if reply_to is not None:
        segments.append(f"PRT||UC||REPLY^Reply to^participation|||||||||||^^X.400^{reply_to}")
    number = 2
    if alternate_cda is not None and not mdm:
        encoded = base64.b64encode(alternate_cda).decode("ascii")
        segments.append(f"OBX|2|ED|{code}||^TEXT^XML^Base64^{encoded}||||||{action}|")
        number = 3
    value_type = "CWE" if mdm else "CE"
    rows = {**DEFAULT_FLAGS, **(flags or {})}
    for flag_code, flag_value in rows.items():
        if flag_value is None:
            continue
        label = _esc(_LABELS.get(flag_code, flag_code))
        segments.append(f"OBX|{number}|{value_type}|{flag_code}^{label}^MetaDMPMSS||"
                        f"{flag_value}^^expandedYes-NoIndicator||||||F|")
        number += 1
        if flag_code == "DESTMSSANTEPAT" and no_reply:
            segments.append("NTE|1|||FIN|")
    for body_code, label, body in (("CORPSMAIL_PS", "Corps du mail pour un PS", body_ps),
                                   ("CORPSMAIL_PATIENT", "Corps du mail pour le patient", body_patient)):
        if body is not None:
            encoded = base64.b64encode(body.encode(body_charset)).decode("ascii")
            segments.append(f"OBX|{number}|ED|{body_code}^{label}^MetaDMPMSS||"
                            f"^{text_type}^^Base64^{encoded}||||||F|")
            number += 1
    segments = _apply(segments, replace or {})
    segments += list(extra_segments)
    if transform is not None:
        segments = transform(segments)
    return segment_sep.join(segments) + segment_sep


def encode_message(text: str) -> bytes:
    """The message's bytes in the charset its MSH-18 names (UTF-8, 8859/1, 8859/15)."""
    msh = text.split("\r", 1)[0].split("\n", 1)[0].split("|")
    charset = msh[17].strip() if len(msh) > 17 else ""
    return text.encode(_CODECS.get(charset.upper(), "utf-8"))


def make_cda(
    *,
    document_extension: str = "DOC-0001",
    patient: Patient = PATIENT,
    with_ins: bool = True,
    version: int = 1,
    parent_extension: str | None = None,
    kind: str = "cr-bio",
) -> bytes:
    """The schema-valid sample CDA (channels/testing/cda.py) made to describe ``patient``.

    ``with_ins=False`` drops the INS; ``parent_extension`` adds a relatedDocument RPLC.
    """
    from channels.testing.cda import make_cda as sample_cda
    return sample_cda(
        kind=kind, document_id=f"{DOC_ROOT}^{document_extension}", version=version,
        ins=patient.ins if with_ins else None, ins_oid=patient.ins_oid, ipp=patient.ipp,
        family=patient.family, given=patient.given, birth_time=patient.birth_date, gender=patient.sex,
        parent_document_id=f"{DOC_ROOT}^{parent_extension}" if parent_extension else None)


def _esc(text: str) -> str:
    """HL7 escaping of free text (names, labels) for the default separators."""
    out = text.replace("\\", "\\E\\")
    for char, seq in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        out = out.replace(char, seq)
    return out


def _pid(patient: Patient, *, with_ins: bool) -> str:
    ids = [f"{patient.ipp}^^^HOPITAL-TEST&{IPP_OID}&ISO^PI"]
    if with_ins:
        ids.append(f"{patient.ins}^^^ASIP-SANTE-INS-NIR&{patient.ins_oid}&ISO^INS")
    name = f"{_esc(patient.family)}^{_esc(patient.given)}^{_esc(patient.given)}^^^^L"
    reliability = f"{'|' * 24}{patient.identity_status}" if patient.identity_status else ""
    return f"PID|||{'~'.join(ids)}||{name}||{patient.birth_date}|{patient.sex}{reliability}"


def _txa(type_code: str, timestamp: str, document_id: str, parent_id: str) -> str:
    fields = [""] * 18
    fields[1], fields[2], fields[3], fields[4] = "1", type_code, "TEXT", timestamp
    fields[12], fields[13], fields[17] = document_id, parent_id, "AU"
    return "TXA|" + "|".join(fields[1:])


def _prt_sb(sender: Sender) -> str:
    person = (f"{sender.identifier}^{_esc(sender.family)}^{_esc(sender.given)}^^^^^^"
              f"ASIP-SANTE-PS&{RPPS_OID}&ISO^D^^^RPPS")
    organisation = f"{_esc(sender.organisation)}^^^^^ASIP-SANTE-ST&{STRUCT_OID}&ISO^FINEG^^^{sender.finess}"
    return f"PRT||UC||SB^Send by^participation|{person}|||{organisation}"


def _prt_rct(recipient: Rct) -> str:
    fields = [""] * 16
    fields[2], fields[4] = "UC", "RCT^Result Copies To^participation"
    if recipient.patient:
        fields[5] = (f"{recipient.identifier}^{_esc(recipient.family)}^{_esc(recipient.given)}"
                     f"^^^^^^{INS_TEST_OID}^L^^^INS")
    elif recipient.identifier:
        fields[5] = (f"{recipient.identifier}^{_esc(recipient.family)}^{_esc(recipient.given)}"
                     f"^^^^^^ASIP-SANTE-PS&{RPPS_OID}&ISO^D^^^RPPS")
    if recipient.organisation:
        fields[8] = _esc(recipient.organisation)
    fields[10] = recipient.device
    fields[15] = f"^^X.400^{recipient.address}"
    return "PRT|" + "|".join(fields[1:])


def _apply(segments: list[str], replace: Mapping[str, str | None]) -> list[str]:
    """The replacement text takes the place of the first segment of its id; the others go."""
    out, done = [], set()
    for segment in segments:
        kind = segment[:3]
        if kind not in replace:
            out.append(segment)
        elif replace[kind] is not None and kind not in done:
            out.append(replace[kind])
        done.add(kind)
    return out
