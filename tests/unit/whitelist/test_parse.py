"""channels.whitelist.parse: checksum format, SHA-256 verification, safe and strict XML reading."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from channels.whitelist.errors import ChecksumError, ListFormatError
from channels.whitelist.parse import parse_checksum, parse_whitelist, verify_checksum
from tests.support.fixtures import require_fixture
from tests.support.whitelist_files import NS, OPERATOR, make_list, sha256_of


@pytest.fixture(scope="module")
def official():
    """The ANS snapshot and its checksum file, read in place (never copied)."""
    xml = require_fixture("MSS-liste-blanche", "listeblanchemssante.xml")
    checksum = require_fixture("MSS-liste-blanche", "checksum")
    return xml.read_bytes(), checksum.read_bytes()


@pytest.mark.fixtures
def test_official_snapshot_verifies_against_its_checksum(official):
    data, checksum = official
    assert verify_checksum(data, checksum) == hashlib.sha256(data).hexdigest() == checksum.decode()


@pytest.mark.fixtures
def test_official_snapshot_has_619_entries_for_516_domains(official):
    data, _ = official
    whitelist = parse_whitelist(data)
    assert len(whitelist.entries) == 619
    assert len(whitelist) == 516
    assert whitelist.generated_at == datetime(2025, 3, 13, 14, 54, 10, tzinfo=UTC)
    assert whitelist.operators("adsea29.mssante.fr") == (
        "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR",)
    assert len(whitelist.operators("15-20.mssante.fr")) == 5
    assert whitelist.check("secretariat@UC-CMP.mssante.fr").allowed


@pytest.mark.fixtures
def test_official_snapshot_is_published_without_its_root_close_tag(official):
    data, _ = official
    assert b"</ListeBlancheMSSante>" not in data and data.rstrip().endswith(b"</ListeDomaines>")
    with capture_logs() as logs:
        parse_whitelist(data)
    assert [e["event"] for e in logs] == ["whitelist.unterminated_root"]


@pytest.mark.fixtures
def test_official_snapshot_tampered_by_one_byte_fails_the_checksum(official):
    data, checksum = official
    tampered = data.replace(b"<Nom>adsea29.mssante.fr</Nom>", b"<Nom>adsea28.mssante.fr</Nom>", 1)
    assert tampered != data
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        verify_checksum(tampered, checksum)


def test_checksum_file_tolerates_surrounding_white_space_and_upper_case():
    digest = hashlib.sha256(b"x").hexdigest()
    assert parse_checksum(f"  {digest.upper()}\n".encode()) == digest


@pytest.mark.parametrize("content, message", [
    (b"", "checksum file is empty"),
    (b" \n", "checksum file is empty"),
    (hashlib.sha256(b"x").hexdigest().encode() + b"  listeblanchemssante.xml\n", "not a bare SHA-256"),
    (hashlib.md5(b"x").hexdigest().encode(), "got 32 bytes"),
    (b"<html>Not Found</html>", "not a bare SHA-256"),
    (b"\xff\xfe" + b"0" * 62, "not a bare SHA-256"),
])
def test_checksum_file_of_another_format_is_refused_clearly(content, message):
    with pytest.raises(ChecksumError, match=message):
        parse_checksum(content)


def test_list_with_root_closed_parses_the_same():
    closed = parse_whitelist(make_list(["a.mssante.fr", "b.mssante.fr"]))
    unclosed = parse_whitelist(make_list(["a.mssante.fr", "b.mssante.fr"], close_root=False))
    assert closed.domains == unclosed.domains == {"a.mssante.fr", "b.mssante.fr"}
    assert closed.operators("a.mssante.fr") == (OPERATOR,)


@pytest.mark.parametrize("data, message", [
    (make_list(["a.mssante.fr"])[:-60], "not well-formed"),
    (b"not xml at all", "not well-formed"),
    (b"", "not well-formed"),
    (make_list(["a.mssante.fr"]).replace(NS.encode(), b"urn:other"), "expected ListeBlancheMSSante"),
    (make_list([]), "no domains"),
    (make_list(["not a domain", "-x-"]), "no domains"),
    (make_list(["a.mssante.fr"]).replace(b"<DateDeGeneration>2025-03-13T14:54:10Z</DateDeGeneration>", b""),
     "DateDeGeneration is missing"),
    (make_list(["a.mssante.fr"], generated="13/03/2025"), "not an ISO 8601"),
])
def test_unusable_lists_are_refused_with_the_reason(data, message):
    with pytest.raises(ListFormatError, match=message):
        parse_whitelist(data)


def test_doctype_and_entities_are_refused_not_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret.mssante.fr")
    data = make_list(["a.mssante.fr"]).replace(
        b"<ListeBlancheMSSante", f'<!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]><ListeBlancheMSSante'.encode(),
        1).replace(b"<Nom>a.mssante.fr</Nom>", b"<Nom>&e;</Nom>")
    with pytest.raises(ListFormatError, match="DOCTYPE"):
        parse_whitelist(data)


def test_an_entry_with_a_bad_name_is_skipped_and_counted():
    with capture_logs() as logs:
        whitelist = parse_whitelist(make_list(["a.mssante.fr", "bad name.mssante.fr"]))
    assert whitelist.domains == {"a.mssante.fr"}
    assert {"event": "whitelist.entries_skipped", "count": 1, "reason": "Nom is not a domain name",
            "log_level": "warning"} in logs


def test_checksum_matches_the_bytes_as_published():
    data = make_list(["a.mssante.fr"], close_root=False)
    assert verify_checksum(data, sha256_of(data)) == hashlib.sha256(data).hexdigest()
    with pytest.raises(ChecksumError):
        verify_checksum(data + b"\n", sha256_of(data))
