import re
from datetime import datetime, timedelta, timezone

import pytest

from router.errors import ParseError
from router.hl7.ack import build_ack, build_minimal_nack, error_table, read_ack
from router.hl7.msh import iter_segments, read_header
from tests.unit.hl7.samples import oru

NOW = datetime(2025, 3, 1, 10, 15, 30, tzinfo=timezone(timedelta(hours=1)))


def fields(text: str) -> dict[str, object]:
    return {seg.id: seg for seg in iter_segments(text)}


def test_ack_fields_copied_and_swapped():
    header = read_header(oru(version="2.5^FRA^2.11").replace("|||2.1^CISIS", "|fr||2.1^CISIS"))
    ack = build_ack(header, "AA", now=NOW, control_id="ACK0001")
    seg = fields(ack)
    msh, msa = seg["MSH"], seg["MSA"]
    assert msh.field(3) == "LIAISON" and msh.field(4) == "HOPITAL-TEST"
    assert msh.field(5) == "SIL-TEST^1.2.250.1.999.1^ISO" and msh.field(6) == "LABO-TEST"
    assert msh.field(7) == "20250301101530+0100"
    assert msh.field(9) == "ACK^R01^ACK"
    assert msh.field(10) == "ACK0001"
    assert (msh.field(11), msh.field(12)) == ("P", "2.5^FRA^2.11")
    assert (msh.field(17), msh.field(18), msh.field(19), msh.field(21)) == ("FRA", "UNICODE UTF-8", "fr",
                                                                           "2.1^CISIS_CDA_HL7_V2")
    assert (msa.field(1), msa.field(2), msa.field(3)) == ("AA", "MSG0001", "")
    assert "ERR" not in seg
    assert ack.endswith("\r") and ack.count("\r") == 2


def test_ack_msh18_copied_from_latin1_message():
    ack = build_ack(read_header(oru(charset="8859/1")), "AA")
    assert fields(ack)["MSH"].field(18) == "8859/1"


def test_ack_timestamp_local_with_offset_and_fresh_control_ids():
    header = read_header(oru())
    first, second = build_ack(header, "AA"), build_ack(header, "AA")
    assert re.fullmatch(r"\d{14}[+-]\d{4}", fields(first)["MSH"].field(7))
    ids = {fields(first)["MSH"].field(10), fields(second)["MSH"].field(10)}
    assert len(ids) == 2 and all(len(i) == 20 for i in ids)


def test_nack_ae_with_ans_code_uses_message_error_condition_table():
    ack = build_ack(read_header(oru()), "AE", text="Patient inconnu | vérifier", error_code="902",
                    error_text="Identifiant de patient inconnu", now=NOW)
    seg = fields(ack)
    assert seg["MSA"].field(3) == "Patient inconnu \\F\\ vérifier"
    assert ack.split("\r")[2] == "ERR|||902^Identifiant de patient inconnu^messageErrorCondition|E|"


def test_nack_ar_defaults_to_hl70357_internal_error():
    ack = build_ack(read_header(oru()), "AR", text="bus down", severity="F")
    assert ack.split("\r")[2] == "ERR|||207^Application internal error^HL70357|F|"


def test_nack_for_hl7_23_puts_the_code_in_err1():
    ack = build_ack(read_header(oru(version="2.3")), "AE", error_code="101", error_text="Required field missing")
    assert ack.split("\r")[2] == "ERR|^^^101&Required field missing&HL70357"


def test_nack_names_the_field_at_fault_in_err2():
    ack = build_ack(read_header(oru()), "AE", error_code="103", error_text="Table value not found",
                    error_location="OBX^7^5")
    assert ack.split("\r")[2] == "ERR||OBX^7^5|103^Table value not found^HL70357|E|"
    reply = read_ack(ack)
    assert (reply.error_code, reply.error_location) == ("103", "OBX^7^5")


def test_nack_location_uses_the_original_delimiters():
    header = read_header("MSH!@~\\&!APP!FAC!RAPP!RFAC!20250101!!ORU@R01@ORU_R01!7!P!2.5\r")
    ack = build_ack(header, "AE", error_code="101", error_location="PRT^2^15^1^4")
    assert "ERR!!PRT@2@15@1@4!101@Required field missing@HL70357!E!" in ack
    assert read_ack(ack).error_location == "PRT^2^15^1^4"


def test_nack_for_hl7_23_puts_the_location_in_err1():
    ack = build_ack(read_header(oru(version="2.3")), "AE", error_code="101", error_text="Required field missing",
                    error_location="PRT^2^15^1^4")
    assert ack.split("\r")[2] == "ERR|PRT^2^15^101&Required field missing&HL70357"   # ELD: segment^seq^field^CE
    reply = read_ack(ack)
    assert (reply.error_code, reply.error_location) == ("101", "PRT^2^15")


def test_ack_without_trigger_and_bad_code():
    header = read_header("MSH|^~\\&|A|B|C|D|20250101||ACK|9|P|2.5\r")
    assert fields(build_ack(header, "AA"))["MSH"].field(9) == "ACK"
    with pytest.raises(ValueError):
        build_ack(header, "OK")


def test_ack_uses_the_original_delimiters():
    header = read_header("MSH!@~\\&!APP!FAC!RAPP!RFAC!20250101!!ORU@R01@ORU_R01!7!P!2.5\r")
    ack = build_ack(header, "AE", text="a!b", error_code="207")
    assert ack.startswith("MSH!@~\\&!RAPP!RFAC!APP!FAC!")
    assert "!ACK@R01@ACK!" in ack
    assert "MSA!AE!7!a\\F\\b" in ack
    reply = read_ack(ack)
    assert (reply.code, reply.control_id, reply.text, reply.error_code) == ("AE", "7", "a!b", "207")


def test_minimal_nack_has_no_msa2_and_carries_the_reason():
    nack = build_minimal_nack("no MSH segment | junk", now=NOW)
    seg = fields(nack)
    assert seg["MSH"].field(9) == "ACK" and seg["MSH"].field(18) == "UNICODE UTF-8"
    assert (seg["MSA"].field(1), seg["MSA"].field(2)) == ("AR", "")
    assert seg["MSA"].field(3) == "no MSH segment \\F\\ junk"
    assert seg["ERR"].field(3) == "100^Segment sequence error^HL70357"
    assert read_ack(nack).text == "no MSH segment | junk"


def test_error_table():
    assert error_table("207") == "HL70357" and error_table("902") == "messageErrorCondition"


def test_read_ack_of_the_ans_shape():
    reply = read_ack("MSH|^~\\&|PFI-X|Org|SIL-Y|labo|202106060931||ACK^R01^ACK|016|P|2.5\nMSA|AA|015\n")
    assert (reply.code, reply.control_id, reply.accepted) == ("AA", "015", True)


def test_read_ack_without_msa_is_a_parse_error():
    with pytest.raises(ParseError, match="MSA"):
        read_ack("MSH|^~\\&|A|B|C|D|20250101||ACK|9|P|2.5\r")
