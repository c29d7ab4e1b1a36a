"""The checks' view of a CDA (router.payloads): large embedded files stood in, everything else as received."""

from __future__ import annotations

import base64
import random
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from mappings.ldl_ses import render_ldl_ses
from mappings.site import Site
from router.adt import read_adt
from router.errors import ValidationError
from router.model import Participant
from router.cda_schema import CdaSchemaValidator
from router.payloads import STAND_IN, THRESHOLD, without_payloads
from router.schematron import SchematronValidator
from channels.testing.adt_messages import make_adt
from tests.support.fixtures import require_fixture

WHEN = datetime(2024, 3, 15, 16, 30, tzinfo=timezone(timedelta(hours=1)))


def letter(pdf: bytes) -> bytes:
    return render_ldl_ses(read_adt(make_adt("A03")), letter_pdf=pdf, narrative=None, document_id="LDL-BIG",
                          set_id="SET-BIG", author=Participant(identifier="810000023084", family="MARTIN"),
                          site=Site(), effective_time=WHEN)


def big_pdf(size: int) -> bytes:
    return b"%PDF-1.4\n" + random.Random(size).randbytes(size) + b"\n%%EOF\n"


def shape(cda: bytes) -> list[tuple]:
    """Every element's tag and attributes, in document order."""
    return [(e.tag, dict(e.attrib)) for e in etree.fromstring(cda).iter()]


def test_a_large_embedded_file_is_stood_in_and_nothing_else_changes():
    cda = letter(big_pdf(300_000))
    checked = without_payloads(cda)
    assert len(checked) < len(cda) - 300_000 and STAND_IN in checked
    assert shape(checked) == shape(cda)
    before, after = checked.split(STAND_IN)
    assert cda.startswith(before) and cda.endswith(after)
    assert base64.b64decode(cda[len(before):len(cda) - len(after)]) == big_pdf(300_000)


def test_small_documents_and_small_files_are_left_as_they_are():
    cda = letter(b"%PDF-1.4\n% petite lettre\n%%EOF\n")
    assert without_payloads(cda) is cda
    small = letter(big_pdf(THRESHOLD // 2))
    assert without_payloads(small) is small


def test_a_payload_whose_length_is_not_base64_is_refused():
    cda = letter(big_pdf(300_000))
    encoded = base64.b64encode(big_pdf(300_000))
    with pytest.raises(ValidationError, match="not base64"):
        without_payloads(cda.replace(encoded, encoded[:-1]))


def test_the_volet_schematron_and_the_xsd_pass_both_views():
    root = require_fixture("TestContenuCDA-3-0", "schematrons")
    xsd = CdaSchemaValidator(require_fixture("TestContenuCDA-3-0", "infrastructure", "cda"))
    validator = SchematronValidator(root / "CI-SIS_LDL-SES_2022.01.sch")
    cda = letter(big_pdf(300_000))
    checked = without_payloads(cda)
    assert checked != cda
    assert validator.validate(checked).describe() == validator.validate(cda).describe() == []
    xsd.validate(checked)
