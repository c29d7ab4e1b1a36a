"""The demo's sample PFI messages: our own fictitious data around the CDAs in ``samples/cda/``.

Each message is built at run time from a sample CDA so that the PID always
matches the document's recordTarget (the engine checks it). Nothing here comes
from the ANS material: patient, doctors, hospital and mailboxes are invented.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mappings.cda_header import read_header
from router.model import CdaHeader

CDA_DIR = Path(__file__).with_name("samples") / "cda"

SENDER = "810000543214^BERNARD^Louise^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
SENDER_ORG = "CH de Test^^^^^ASIP-SANTE-ST&1.2.250.1.71.4.2.2&ISO^FINEG^^^1990000014"
DR_DURAND = ("810000123454^DURAND^Paul^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
             "paul.durand@ch-test.mssante.fr")
DR_LEFEVRE = ("810000987650^LEFÈVRE^Hélène^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
              "helene.lefevre@cabinet-test.mssante.fr")
CARDIOLOGY = ("", "cardiologie@ch-test.mssante.fr")


@dataclass(frozen=True)
class Sample:
    name: str
    control_id: str
    description: str
    raw: bytes
    document: str = ""
    recipients: tuple[str, ...] | None = None     # None: the PRT RCT addresses of the message


def demo_messages(now: datetime | None = None) -> list[Sample]:
    """The demo's messages, in sending order."""
    stamp = (now or datetime.now()).strftime("%Y%m%d%H%M%S")
    lab, letter = _cda("11502-2"), _cda("11490-0")
    lab_header, letter_header = read_header(lab), read_header(letter)
    patient = (f"{lab_header.ins}^{lab_header.patient_family}^{lab_header.patient_given}^^^^^^"
               f"{lab_header.ins_oid}^L^^^INS", f"{lab_header.ins}@patient.mssante.fr")
    oru = _oru(lab, lab_header, f"DEMO{stamp}01", stamp, recipients=[DR_DURAND, patient],
               flags={"DESTMSSANTEPS": "Y", "DESTMSSANTEPAT": "Y", "ACK_RECEPTION": "Y", "ACK_LECTURE_MSS": "Y"},
               body="Cher confrère, veuillez trouver ci-joint le compte rendu de biologie de votre patiente.")
    mdm = _mdm(letter, letter_header, f"DEMO{stamp}02", stamp, recipients=[DR_LEFEVRE, CARDIOLOGY],
               flags={"DESTMSSANTEPS": "Y", "ACK_RECEPTION": "Y"},
               body="Chère consœur, voici la lettre de liaison de sortie de votre patiente.")
    return [
        Sample("lab-report", f"DEMO{stamp}01", "ORU^R01 CR-BIO, UTF-8, to a doctor and the patient",
               oru.encode("utf-8"), f"{lab_header.type_code} {lab_header.title}"),
        Sample("discharge-letter", f"DEMO{stamp}02", "MDM^T02 lettre de liaison, ISO 8859-1, to two mailboxes",
               mdm.encode("latin-1"), f"{letter_header.type_code} {letter_header.title}"),
    ]


def _cda(type_code: str) -> bytes:
    for path in sorted(CDA_DIR.glob("*.xml")):
        data = path.read_bytes()
        if read_header(data).type_code == type_code:
            return data
    raise FileNotFoundError(f"no sample CDA of type {type_code} in {CDA_DIR}")


_FLAG_LABELS = {
    "MASQUE_PS": "Masqué aux professionnels de Santé", "INVISIBLE_PATIENT": "Document Non Visible par le patient",
    "INVISIBLE_REP_LEGAUX": "Non visible par les représentants Légaux du patient",
    "CONNEXION_SECRETE": "Connexion Secrete", "MODIF_CONF_CODE": "Modification Confidentiality Code",
    "DESTDMP": "Destinataire DMP", "DESTMSSANTEPS": "Destinataire (Professionnel de Santé)",
    "DESTMSSANTEPAT": "Destinataire Patient", "ACK_RECEPTION": "Accusé de réception",
    "ACK_LECTURE_MSS": "Accusé de lecture",
}


def _pid(header: CdaHeader) -> str:
    fields = [""] * 33
    fields[0] = "PID"
    fields[3] = f"{header.ins}^^^ASIP-SANTE-INS-NIR&{header.ins_oid}&ISO^INS"
    fields[5] = f"{header.patient_family}^{header.patient_given}^^^^^L"
    fields[7] = header.patient_birth_time[:8]
    fields[8] = header.patient_gender
    fields[32] = "VALI"
    return "|".join(fields)


def _common(header: CdaHeader, cda: bytes, recipients, flags: dict[str, str], body: str, first_obx: int,
            obx_type: str) -> list[str]:
    code = f"{header.type_code}^{header.title}^LN"
    segments = [f"OBX|{first_obx}|ED|{code}||^{obx_type}^XML^Base64^{base64.b64encode(cda).decode()}||||||F|",
                f"PRT||UC||SB^Send by^participation|{SENDER}|||{SENDER_ORG}"]
    for xcn, address in recipients:
        segments.append(f"PRT||UC||RCT^Results Copies To^participation|{xcn}||||||||||^^X.400^{address}")
    index = first_obx
    for flag, label in _FLAG_LABELS.items():
        index += 1
        segments.append(f"OBX|{index}|CE|{flag}^{label}^MetaDMPMSS||{flags.get(flag, 'N')}^^expandedYes-NoIndicator"
                        f"||||||F|")
    corps = base64.b64encode(body.encode("utf-8")).decode()
    segments.append(f"OBX|{index + 1}|ED|CORPSMAIL_PS^Corps du mail pour un PS^MetaDMPMSS||^TEXT^^Base64^{corps}"
                    f"||||||F|")
    return segments


def _oru(cda: bytes, header: CdaHeader, control_id: str, stamp: str, *, recipients, flags, body) -> str:
    segments = [
        f"MSH|^~\\&|LABO-TEST|CH-TEST|LIAISON|CH-TEST|{stamp}||ORU^R01^ORU_R01|{control_id}|P|2.5|||||FRA|"
        f"UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
        _pid(header),
        "PV1|1|O|LABO||||||||||||||||V0001^^^CH-TEST&1.2.250.1.999.1.2&ISO^VN",
        f"ORC|NW|P{control_id}^LABO|F{control_id}^LABO|||||||{stamp}",
        f"OBR|1|P{control_id}^LABO|F{control_id}^LABO|{header.type_code}^{header.title}^LN|||{stamp}"
        f"||||||||||||||||||F",
    ]
    segments += _common(header, cda, recipients, flags, body, 1, "TEXT")
    return "\r".join(segments) + "\r"


def _mdm(cda: bytes, header: CdaHeader, control_id: str, stamp: str, *, recipients, flags, body) -> str:
    segments = [
        f"MSH|^~\\&|DPI-TEST|CH-TEST|LIAISON|CH-TEST|{stamp}||MDM^T02^MDM_T02|{control_id}|P|2.6|||||FRA|"
        f"8859/1|||2.1^CISIS_CDA_HL7_V2",
        f"EVN||{stamp}",
        _pid(header),
        "PV1|1|I|CARDIO||||||||||||||||V0002^^^CH-TEST&1.2.250.1.999.1.2&ISO^VN",
        f"TXA|1|{header.type_code}|TEXT|{stamp}||||||||{header.document_id}|||||AU",
    ]
    segments += _common(header, cda, recipients, flags, body, 1, "text")
    return "\r".join(segments) + "\r"
