import base64
import tracemalloc

import hl7
import pytest

from router.errors import ParseError
from router.hl7.charset import CharsetError
from router.hl7.parse import parse_message
from router.hl7.segments import normalise_segments
from router.recipients_pfi import value
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


def test_a_long_base64_run_is_parsed_apart_and_lands_in_the_tree_as_python_hl7_would_put_it():
    """A 35 MiB OBX-5 is not split by python-hl7 (router/hl7/parse.py): the tree is the same as hl7.parse's."""
    run = base64.b64encode(bytes(range(256)) * 1000).decode("ascii")         # 341 KB, no separator in it
    text = oru() + f"OBX|2|ED|11490-0^Lettre^LN||^TEXT^XML^Base64^{run}||||||F\rNTE|1||{run[:100]}~{run}\r"
    parsed = parse_message(text.encode())
    assert str(parsed.message) == str(hl7.parse(normalise_segments(text)))
    obx = parsed.message.segments("OBX")[1]
    assert value(obx, 5, 5) == run                                   # the leaf itself, not a marker
    assert value(parsed.message.segment("NTE"), 3, repetition=2) == run
    assert "RUN0" not in str(parsed.message)
    assert run not in parsed.short_text and parsed.text == normalise_segments(text)    # rebuilt when asked


def test_parsing_a_large_embedded_document_holds_no_tree_of_copies_of_it():
    run = base64.b64encode(bytes(range(256)) * 16384).decode("ascii")        # 5.6 MB
    raw = (oru() + f"OBX|2|ED|11490-0^Lettre^LN||^TEXT^XML^Base64^{run}||||||F\r").encode()
    del run
    tracemalloc.start()
    try:
        parsed = parse_message(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert parsed.message.segments("OBX")[1]
    assert peak < 3.5 * len(raw)        # the text and the leaf (python-hl7's own split held ~5x more)
