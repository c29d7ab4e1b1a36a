"""Fictitious HL7 v2 messages for the hl7 and mllp unit tests (no real patient)."""

from __future__ import annotations

ORU = (
    "MSH|^~\\&|SIL-TEST^1.2.250.1.999.1^ISO|LABO-TEST|LIAISON|HOPITAL-TEST|20250301101500||ORU^R01^ORU_R01|"
    "MSG0001|P|2.5|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\r"
    "PID|||123456^^^HOPITAL-TEST^PI||DURAND^Hélène^^^^^L||19800101|F\r"
    "PV1|1|I|CARDIO\r"
    "OBR|1|CMD1|RES1|11502-2^CR d'examens biologiques^LN\r"
    "OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^PENsaW5pY2FsRG9jdW1lbnQvPg==||||||F|\r"
)


def oru(control_id: str = "MSG0001", charset: str = "UNICODE UTF-8", version: str = "2.5",
        segment_end: str = "\r", family: str = "Hélène") -> str:
    """The ORU above with a chosen MSH-10, MSH-12, MSH-18, patient given name and segment terminator."""
    text = ORU.replace("MSG0001", control_id).replace("UNICODE UTF-8", charset).replace("Hélène", family)
    text = text.replace("|P|2.5|", f"|P|{version}|")
    return text.replace("\r", segment_end)
