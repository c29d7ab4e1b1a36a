import pytest

from router.errors import ParseError
from router.hl7.charset import CharsetError, codec_for, decode, decode_lenient, encode, encode_message, sniff_msh18
from tests.unit.hl7.samples import oru


@pytest.mark.parametrize("msh18, codec", [
    ("UNICODE UTF-8", "utf-8"),
    ("8859/1", "latin-1"),
    ("8859/15", "iso8859-15"),
    ("ASCII", "cp1252"),
    ("", "cp1252"),
    ("8859/1~UNICODE UTF-8", "latin-1"),
    ("NOT A CHARSET", "cp1252"),
])
def test_codec_for_maps_msh18_with_channel_default(msh18, codec):
    assert codec_for(msh18, default="cp1252") == codec


def test_sniff_msh18_reads_the_raw_header_only():
    raw = oru(charset="8859/1").encode("latin-1")
    assert sniff_msh18(raw) == "8859/1"
    assert sniff_msh18(b"PID|1") == ""
    assert sniff_msh18(b"MSH|^~\\&|A|B\rPID|||||||||||||||||||8859/1\r") == ""


def test_decode_latin1_message_by_msh18():
    raw = oru(charset="8859/1", family="Hélène Ève").encode("latin-1")
    text, codec = decode(raw)          # channel default utf-8 would fail on these bytes
    assert codec == "latin-1"
    assert "Hélène Ève" in text


def test_decode_utf8_and_bom_dropped():
    raw = b"\xef\xbb\xbf" + oru().encode("utf-8")
    text, codec = decode(raw, default="latin-1")
    assert codec == "utf-8"
    assert text.startswith("MSH|") and "Hélène" in text


def test_ascii_declared_uses_channel_default():
    raw = oru(charset="ASCII", family="Zoé").encode("latin-1")
    text, codec = decode(raw, default="latin-1")
    assert (codec, "Zoé" in text) == ("latin-1", True)


def test_undecodable_bytes_raise_charset_error_carrying_replaced_text():
    raw = oru(charset="UNICODE UTF-8", family="Zoé").encode("latin-1")   # lies about its charset
    with pytest.raises(CharsetError) as info:
        decode(raw)
    assert isinstance(info.value, ParseError)
    assert info.value.codec == "utf-8"
    assert "Zo\ufffd" in info.value.text
    assert "MSG0001" in info.value.text


def test_decode_lenient_flags_loss_instead_of_raising():
    raw = oru(family="Zoé").encode("latin-1")
    text, codec, lossy = decode_lenient(raw)
    assert lossy and codec == "utf-8" and "Zo\ufffd" in text
    assert decode_lenient(oru().encode())[2] is False


def test_encode_replaces_characters_the_codec_lacks():
    assert encode("Hélène \u2019ok", "latin-1") == "Hélène ?ok".encode("latin-1")


def test_encode_message_follows_its_own_msh18():
    text = oru(charset="8859/1")
    assert encode_message(text) == text.encode("latin-1")
    assert encode_message(oru()) == oru().encode("utf-8")
