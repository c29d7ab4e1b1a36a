import random

import pytest

from router.hl7.escape import escape, unescape


@pytest.mark.parametrize("escaped, plain", [
    ("a\\F\\b", "a|b"),
    ("a\\S\\b", "a^b"),
    ("a\\T\\b", "a&b"),
    ("a\\R\\b", "a~b"),
    ("a\\E\\b", "a\\b"),
    ("a\\.br\\b", "a\nb"),
    ("a\\.sp\\b", "a\nb"),
    ("\\H\\important\\N\\", "important"),
    ("no escapes, accentués", "no escapes, accentués"),
])
def test_unescape_standard_sequences(escaped, plain):
    assert unescape(escaped) == plain


def test_unescape_hex_is_decoded_as_utf8_bytes():
    assert unescape("H\\XC3A9\\l\\XC3A8\\ne") == "Hélène"


def test_unescape_hex_in_latin1_message():
    assert unescape("H\\XE9\\l\\XE8\\ne", codec="latin-1") == "Hélène"


def test_unescape_invalid_hex_for_the_codec_is_kept():
    assert unescape("x\\XE9\\y") == "x\\XE9\\y"          # lone 0xE9 is not UTF-8


def test_unescape_unknown_sequences_kept_literally():
    assert unescape("\\Zlocal\\ and \\C2842\\ and C:\\dir\\") == "\\Zlocal\\ and \\C2842\\ and C:\\dir\\"


def test_unescape_unterminated_escape_is_kept():
    assert unescape("a\\E\\R\\") == "a\\R\\"
    assert unescape("tail\\F") == "tail\\F"


def test_unescape_with_custom_delimiters_and_truncation_char():
    assert unescape("a#F#b#P#c", "^~#&%", field_sep="!") == "a!b%c"


def test_escape_only_delimiters_and_line_breaks_never_accents():
    assert escape("Hélène | A^B & C~D \\ E") == "Hélène \\F\\ A\\S\\B \\T\\ C\\R\\D \\E\\ E"
    assert escape("l1\nl2\rl3") == "l1\\.br\\l2\\X0D\\l3"
    assert escape("plain é") == "plain é"


@pytest.mark.parametrize("value", [
    "", "Hélène", "a|b^c&d~e\\f", "\\F\\ already escaped", "line\r\nbreak", "\\", "\\\\X41\\", "ends with \\",
])
def test_round_trip(value):
    assert unescape(escape(value)) == value


def test_round_trip_random_strings():
    rng = random.Random(20250301)
    alphabet = "ab é|^~\\&\r\n.XHNbr0F"
    for _ in range(2000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert unescape(escape(value)) == value, repr(value)
