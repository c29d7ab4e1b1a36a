"""ZAM business acknowledgements (CI-SIS volet "Transmission d'un document CDA-R2 en HL7v2").

The PFI tells the HIS what became of a document with ``ZAM^Zxx^ZAM_Z01``
messages (HL7 2.6), shaped as the ANS samples
(``Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission initiale ORU/Message metier *``)::

    MSH|^~\\&|<orig MSH-5>|<orig MSH-6>|<orig MSH-3>|<orig MSH-4>|<now>||ZAM^Z02^ZAM_Z01|<id>|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2
    EVN||<event time>
    OBX|1|CWE|ACK_RECEPTION_MSS^Accusé de réception MSSanté^AckMetierZAM|<orig MSH-10>|Y^^expandedYes-NoIndicator||||||F|
    OBX|2|XTN|DESTINATAIRE_MSS^Destinataire MSSanté^AckMetierZAM|<recipient id>|^^X.400^<address>||||||F|
    ERR||<where>|<code>^<text>^messageErrorCondition|E|<detail code>^<detail text>^MSSERRORCODE    (only when N)

* Z01 = DMP receipt (``ACK_RECEPTION_DMP``, detail table ``DMPERRORCODE``),
  Z02 = MSSanté receipt, Z03 = MSSanté read notice (``ACK_LECTURE_MSS`` + ``LECTEUR_MSS``).
* We answer as the receiver: MSH-3/4 and MSH-5/6 are the original's swapped.
* MSH-21 is copied only when the original declared the CISIS_CDA_HL7_V2 profile.
* On failure ERR-3 uses the ANS ``messageErrorCondition`` table for every code
  (as the Z01 sample does even for 207), default 207 "Application internal
  error"; ERR-5 carries the transport-specific detail (an SMTP status, ``DMPClosed``…)
  only when given; ERR-2 names the segment and field of the original message at
  fault (ERL, e.g. ``OBX^7^5``) when the refusal is about its content. ERR has no
  trailing separator, like the sample.
* MSH-7 and EVN-2 are local time *with* offset, like our ACKs (the samples show
  a bare local time, which is ambiguous twice a year).
* MSH-18 copies the original's charset when it can carry the accents of the
  OBX-3 labels (UTF-8, 8859/1, 8859/15), else ``UNICODE UTF-8``; encode the
  result with :func:`router.hl7.charset.encode_message`.
"""

from __future__ import annotations

from datetime import datetime

from router.hl7.charset import codec_for
from router.hl7.escape import escape
from router.hl7.msh import MshHeader
from router.hl7.writer import hl7_timestamp, message, new_control_id, segment

PROFILE_MARK = "CISIS_CDA_HL7_V2"
ZAM_VERSION = "2.6"
_ACCENT_CODECS = ("utf-8", "latin-1", "iso8859-15")


def build_zam_z01(original: MshHeader, *, delivered: bool, error_code: str = "", error_text: str = "",
                  detail_code: str = "", detail_text: str = "", now: datetime | None = None,
                  event_time: datetime | None = None, control_id: str | None = None,
                  error_location: str = "") -> str:
    """DMP receipt: was the document deposited in the DMP (Y/N)."""
    return _zam(original, "Z01", [
        _yes_no(original, 1, "ACK_RECEPTION_DMP", "Accusé de réception DMP", delivered),
    ], delivered, error_code, error_text, detail_code, detail_text, "DMPERRORCODE", now, event_time, control_id,
        error_location)


def build_zam_z02(original: MshHeader, *, recipient_address: str, recipient_id: str = "", delivered: bool,
                  error_code: str = "", error_text: str = "", detail_code: str = "", detail_text: str = "",
                  now: datetime | None = None, event_time: datetime | None = None,
                  control_id: str | None = None, error_location: str = "") -> str:
    """MSSanté receipt for one recipient: was the mail accepted for ``recipient_address`` (Y/N)."""
    return _zam(original, "Z02", [
        _yes_no(original, 1, "ACK_RECEPTION_MSS", "Accusé de réception MSSanté", delivered),
        _mailbox(original, 2, "DESTINATAIRE_MSS", "Destinataire MSSanté", recipient_id, recipient_address),
    ], delivered, error_code, error_text, detail_code, detail_text, "MSSERRORCODE", now, event_time, control_id,
        error_location)


def build_zam_z03(original: MshHeader, *, reader_address: str, reader_id: str = "", read: bool = True,
                  error_code: str = "", error_text: str = "", detail_code: str = "", detail_text: str = "",
                  now: datetime | None = None, event_time: datetime | None = None,
                  control_id: str | None = None, error_location: str = "") -> str:
    """MSSanté read notice (from an MDN): ``reader_address`` read (or failed to process) the mail."""
    return _zam(original, "Z03", [
        _yes_no(original, 1, "ACK_LECTURE_MSS", "Accusé de lecture", read),
        _mailbox(original, 2, "LECTEUR_MSS", "Lecteur du courriel MSSanté", reader_id, reader_address),
    ], read, error_code, error_text, detail_code, detail_text, "MSSERRORCODE", now, event_time, control_id,
        error_location)


def _zam(original: MshHeader, trigger: str, observations: list[str], ok: bool, error_code: str,
         error_text: str, detail_code: str, detail_text: str, detail_table: str, now: datetime | None,
         event_time: datetime | None, control_id: str | None, error_location: str = "") -> str:
    sep, enc = original.field_sep, original.encoding_chars
    comp = enc[0]
    charset = original.charset if _carries_accents(original.charset) else "UNICODE UTF-8"
    msh = segment(
        "MSH", enc,
        original.receiving_application_raw, original.receiving_facility_raw,
        original.sending_application_raw, original.sending_facility_raw,
        hl7_timestamp(now), "", comp.join(("ZAM", trigger, "ZAM_Z01")), control_id or new_control_id(),
        original.processing_id or "P", ZAM_VERSION, "", "", "", "",
        original.country or "FRA", charset, original.language, "",
        original.profile if PROFILE_MARK in original.profile else "",
        sep=sep,
    )
    evn = segment("EVN", "", hl7_timestamp(event_time or now), sep=sep)
    segments = [msh, evn, *observations]
    if not ok:
        code = error_code or "207"
        text = error_text or ("Application internal error" if code == "207" else "")
        detail = comp.join((_esc(original, detail_code), _esc(original, detail_text), detail_table)) \
            if detail_code or detail_text else ""
        where = comp.join(_esc(original, part) for part in error_location.split("^")) if error_location else ""
        segments.append(segment("ERR", "", where, comp.join((_esc(original, code), _esc(original, text),
                                                              "messageErrorCondition")),
                                "E", detail, sep=sep))
    return message(*segments)


def _yes_no(original: MshHeader, set_id: int, code: str, label: str, value: bool) -> str:
    comp = original.encoding_chars[0]
    return _obx(original, set_id, "CWE", comp.join((code, label, "AckMetierZAM")), original.control_id,
                comp.join(("Y" if value else "N", "", "expandedYes-NoIndicator")))


def _mailbox(original: MshHeader, set_id: int, code: str, label: str, identifier: str, address: str) -> str:
    comp = original.encoding_chars[0]
    return _obx(original, set_id, "XTN", comp.join((code, label, "AckMetierZAM")), _esc(original, identifier),
                comp.join(("", "", "X.400", _esc(original, address))))


def _obx(original: MshHeader, set_id: int, value_type: str, observation: str, sub_id: str, value: str) -> str:
    """``OBX|n|type|OBX-3|OBX-4|OBX-5||||||F|`` (the samples keep the trailing separator)."""
    sep = original.field_sep
    return sep.join(("OBX", str(set_id), value_type, observation, sub_id, value, "", "", "", "", "", "F", ""))


def _esc(original: MshHeader, value: str) -> str:
    return escape(value, original.encoding_chars, field_sep=original.field_sep)


def _carries_accents(charset: str) -> bool:
    return bool(charset.strip()) and charset.strip().upper() != "ASCII" and codec_for(charset, "") in _ACCENT_CODECS
