import hl7
import pytest

from router.errors import ParseError
from router.hl7.charset import CharsetError
from router.hl7.parse import parse_message
from tests.unit.hl7.samples import oru


def test_parse_message_utf8():
    parsed = parse_message(oru().encode())
    assert parsed.codec == "utf-8" and not parsed.lossy
    assert parsed.header.control_id == "MSG0001"
    assert isinstance(parsed.message, hl7.Message)
    assert str(parsed.message.segment("PID")[5][0][1]) == "Hélène"


def test_parse_message_with_lf_segment_endings():
    parsed = parse_message(oru(segment_end="\n").encode())
    assert [str(s[0]) for s in parsed.message] == ["MSH", "PID", "PV1", "OBR", "OBX"]


def test_parse_message_latin1():
    parsed = parse_message(oru(charset="8859/1", segment_end="\r\n").encode("latin-1"))
    assert parsed.codec == "latin-1"
    assert str(parsed.message.segment("PID")[5][0][1]) == "Hélène"


def test_parse_message_replaces_bad_bytes_and_flags_them():
    parsed = parse_message(oru(family="Zoé").encode("latin-1"))
    assert parsed.lossy and "Zo\ufffd" in parsed.text


def test_parse_message_strict_charset_raises():
    with pytest.raises(CharsetError):
        parse_message(oru(family="Zoé").encode("latin-1"), strict_charset=True)


@pytest.mark.parametrize("raw", [b"", b"\r\n", b"hello", b"PID|1\r"])
def test_parse_message_rejects_non_hl7(raw):
    with pytest.raises(ParseError):
        parse_message(raw)
