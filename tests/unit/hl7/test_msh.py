import pytest

from router.errors import ParseError
from router.hl7.msh import first_segment, iter_segments, read_header, segment_ids
from tests.unit.hl7.samples import oru


def test_read_header_fields():
    h = read_header(oru(version="2.5^FRA^2.11"))
    assert (h.field_sep, h.encoding_chars) == ("|", "^~\\&")
    assert h.sending_application == "SIL-TEST"
    assert h.sending_application_raw == "SIL-TEST^1.2.250.1.999.1^ISO"
    assert (h.sending_facility, h.receiving_application, h.receiving_facility) == ("LABO-TEST", "LIAISON",
                                                                                   "HOPITAL-TEST")
    assert h.datetime == "20250301101500"
    assert (h.message_type, h.trigger, h.structure, h.event) == ("ORU", "R01", "ORU_R01", "ORU^R01")
    assert (h.control_id, h.processing_id) == ("MSG0001", "P")
    assert (h.version, h.version_id) == ("2.5^FRA^2.11", "2.5")
    assert (h.country, h.charset, h.profile) == ("FRA", "UNICODE UTF-8", "2.1^CISIS_CDA_HL7_V2")


def test_read_header_with_lf_terminators_and_short_msh():
    h = read_header("\nMSH|^~\\&|APP|FAC|||20250101||ADT^A01|42|P|2.5\nPID|1\n")
    assert (h.control_id, h.version, h.charset, h.profile, h.structure) == ("42", "2.5", "", "", "")


@pytest.mark.parametrize("text, reason", [
    ("PID|1\rMSH|^~\\&|A\r", "no MSH"),
    ("", "no MSH"),
    ("BHS|^~\\&|A\rMSH|^~\\&\r", "batch"),
    ("MSHA^~\\&|A|B|C|D|E||ADT^A01|1|P|2.5\r", "MSH-1"),
    ("MSH|^~|A|B|C|D|E||ADT^A01|1|P|2.5\r", "MSH-2"),
    ("MSH|^^\\&|A|B|C|D|E||ADT^A01|1|P|2.5\r", "MSH-2"),
    ("MSH|^~\\&|A|B|C|D|E||ADT^A01||P|2.5\r", "MSH-10"),
    ("MSH|^~\\&|A|B|C|D|E||ADT^A01\r", "MSH-10"),
])
def test_read_header_errors_name_the_problem(text, reason):
    with pytest.raises(ParseError, match=reason):
        read_header(text)


def test_segment_ids_and_lazy_segments():
    text = oru()
    assert segment_ids(text) == ["MSH", "PID", "PV1", "OBR", "OBX"]
    segments = list(iter_segments(text))
    assert segments[0].field(1) == "|" and segments[0].field(10) == "MSG0001"
    assert segments[1].id == "PID" and segments[1].field(5) == "DURAND^Hélène^^^^^L"
    assert segments[1].field(99) == ""
    assert first_segment(text, "OBX").field(2) == "ED"
    assert first_segment(text, "ZBE") is None

