from datetime import datetime, timedelta, timezone

import pytest

from router.hl7.msh import iter_segments, read_header
from router.hl7.zam import build_zam_z01, build_zam_z02, build_zam_z03
from tests.support.fixtures import require_fixture
from tests.unit.hl7.samples import oru

NOW = datetime(2025, 3, 1, 10, 15, 30, tzinfo=timezone(timedelta(hours=1)))
ORU_DIR = ("hl7v2-ans", "Volets", "TRANS_DOC_CDA_HL7V2", "V2.1", "ORU", "Transmission initiale ORU")
VOLATILE = {("MSH", 7), ("MSH", 10), ("EVN", 2)}     # timestamps and our own control id


def sample(name: str) -> str:
    return require_fixture(*ORU_DIR, name).read_text(encoding="utf-8")


def shape(text: str) -> list[list[str]]:
    """Segments as field lists with the volatile fields blanked (MSH split with MSH-1 numbering)."""
    rows = []
    for seg in iter_segments(text.replace("\r\n", "\r").replace("\n", "\r")):
        fields = [seg.id] + [seg.field(n) for n in range(1, len(seg.fields) + (1 if seg.id == "MSH" else 0))]
        rows.append(["" if (seg.id, n) in VOLATILE else v for n, v in enumerate(fields)])
    return rows


def ans_original() -> str:
    return sample("message_ORU_CR_Bio_INIT_N1_N3.hl7")


def test_zam_z02_matches_the_ans_sample():
    original = read_header(ans_original())
    zam = build_zam_z02(original, recipient_address="adam.hoda@test-ci-sis.mssante.fr",
                        recipient_id="801234567897", delivered=True, now=NOW)
    assert shape(zam) == shape(sample("Message metier reception MSS"))


def test_zam_z03_matches_the_ans_sample():
    original = read_header(ans_original())
    zam = build_zam_z03(original, reader_address="adam.hoda@test-ci-sis.mssante.fr", reader_id="801234567897",
                        now=NOW)
    assert shape(zam) == shape(sample("Message metier lecture MSS"))


def test_zam_z01_failure_matches_the_ans_sample():
    original = read_header(ans_original())
    zam = build_zam_z01(original, delivered=False, detail_code="DMPClosed", detail_text="DMP fermé", now=NOW)
    assert shape(zam) == shape(sample("Message metier reception DMP"))


def test_zam_z02_failure_err_segment():
    zam = build_zam_z02(read_header(oru()), recipient_address="dr.martin@hopital-test.mssante.fr",
                        delivered=False, error_code="207", error_text="Refus du destinataire",
                        detail_code="550", detail_text="5.1.1 mailbox unknown")
    lines = zam.split("\r")
    assert lines[2].startswith("OBX|1|CWE|ACK_RECEPTION_MSS^Accusé de réception MSSanté^AckMetierZAM|MSG0001|"
                               "N^^expandedYes-NoIndicator|")
    assert lines[3] == ("OBX|2|XTN|DESTINATAIRE_MSS^Destinataire MSSanté^AckMetierZAM||"
                        "^^X.400^dr.martin@hopital-test.mssante.fr||||||F|")
    assert lines[4] == ("ERR|||207^Refus du destinataire^messageErrorCondition|E|"
                        "550^5.1.1 mailbox unknown^MSSERRORCODE")


def test_zam_refusal_names_the_field_at_fault_in_err2():
    zam = build_zam_z02(read_header(oru()), recipient_address="dr.martin@hopital-test.mssante.fr",
                        delivered=False, error_code="102", error_text="Data type error", error_location="OBX^1^5",
                        detail_code="DocumentInvalid", detail_text="invalid base64")
    assert zam.split("\r")[4] == ("ERR||OBX^1^5|102^Data type error^messageErrorCondition|E|"
                                   "DocumentInvalid^invalid base64^MSSERRORCODE")


def test_zam_header_swaps_parties_and_keeps_profile_only_for_cisis():
    zam = build_zam_z02(read_header(oru()), recipient_address="a@b.fr", delivered=True, now=NOW,
                        control_id="Z1")
    msh = next(iter_segments(zam))
    assert [msh.field(n) for n in (3, 4, 5, 6, 7, 9, 10, 11, 12, 17, 18, 21)] == [
        "LIAISON", "HOPITAL-TEST", "SIL-TEST^1.2.250.1.999.1^ISO", "LABO-TEST", "20250301101530+0100",
        "ZAM^Z02^ZAM_Z01", "Z1", "P", "2.6", "FRA", "UNICODE UTF-8", "2.1^CISIS_CDA_HL7_V2"]
    plain = oru().replace("|||2.1^CISIS_CDA_HL7_V2", "")
    zam = build_zam_z02(read_header(plain), recipient_address="a@b.fr", delivered=True)
    assert next(iter_segments(zam)).field(21) == ""


@pytest.mark.parametrize("charset, expected", [("8859/1", "8859/1"), ("ASCII", "UNICODE UTF-8"),
                                               ("", "UNICODE UTF-8")])
def test_zam_charset_can_carry_the_accented_labels(charset, expected):
    zam = build_zam_z01(read_header(oru(charset=charset)), delivered=True)
    assert next(iter_segments(zam)).field(18) == expected
