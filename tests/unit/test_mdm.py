"""Render-mode MDM reading: TXA, the PDF, section texts, and the refusals that name the field."""

from __future__ import annotations

import base64

import pytest

from router.errors import UnsupportedMessageError, ValidationError
from router.mdm import read_mdm
from router.model import Action
from router.mode import is_render_mode
from router.hl7.msh import iter_segments
from channels.testing.adt_messages import DR_DURAND, DR_LEFEVRE, DR_MARTIN
from channels.testing.mdm_messages import letter_pdf, make_mdm
from channels.testing.messages import make_pfi_mdm


def test_a_t02_gives_type_ids_author_copies_pdf_and_section_texts():
    mdm = read_mdm(make_mdm(copies=(DR_DURAND, DR_LEFEVRE)))
    assert (mdm.trigger, mdm.action, mdm.type_code, mdm.unique_id, mdm.parent_id) == \
        ("T02", Action.PUBLISH, "11490-0", "DOC-LDL-0001", "")
    assert mdm.completion_status == "LA" and mdm.activity_time == "20240315153000"
    assert mdm.author.identifier == "8" + DR_MARTIN.rpps and mdm.author.family == "MARTIN"
    assert [c.identifier for c in mdm.copies] == ["8" + DR_DURAND.rpps, "8" + DR_LEFEVRE.rpps]
    assert mdm.pdf == letter_pdf()
    assert mdm.narrative["42349-1"].startswith("Douleur thoracique aiguë")
    assert mdm.narrative["42545-4"].splitlines() == ["Séjour en cardiologie du 10 au 15 mars.",
                                                       "Coronarographie sans lésion significative."]
    assert "Atorvastatine" in mdm.narrative["10183-2"]


@pytest.mark.parametrize("field", [22, 9, 10, 5])
def test_the_author_is_found_in_any_txa_author_field(field):
    assert read_mdm(make_mdm(author_field=field)).author.identifier == "8" + DR_MARTIN.rpps


def test_replacement_and_cancellation():
    replacement = read_mdm(make_mdm("T10", unique_id="DOC-2", parent_id="DOC-1"))
    assert (replacement.action, replacement.unique_id, replacement.parent_id) == (Action.REPLACE, "DOC-2", "DOC-1")
    cancellation = read_mdm(make_mdm("T11", unique_id="DOC-1", status="LA"))
    assert cancellation.action is Action.DELETE and cancellation.pdf == b"" and cancellation.narrative == {}


def test_a_letter_with_only_section_texts_or_only_a_pdf_is_accepted():
    assert read_mdm(make_mdm(with_pdf=False)).pdf == b""
    assert read_mdm(make_mdm(narrative={})).narrative == {}


@pytest.mark.parametrize("changes, reason", [
    (dict(replace={"TXA": None}), "without TXA"),
    (dict(unique_id=""), "TXA-12"),
    (dict(status="IP"), "TXA-17=IP"),
    (dict(status="DI"), "not authenticated"),
    (dict(with_pdf=False, narrative={}), "neither a PDF"),
    (dict(pdf=b"<html>not a pdf</html>"), "not a PDF"),
])
def test_bad_mdm_is_refused_with_the_field_named(changes, reason):
    with pytest.raises(ValidationError, match=reason):
        read_mdm(make_mdm(**changes))


def test_an_ed_that_is_not_base64_or_not_pdf_subtype_is_refused():
    text = make_mdm()
    data = base64.b64encode(letter_pdf()).decode()
    with pytest.raises(ValidationError, match="base64"):
        read_mdm(text.replace(data, "@@@not-base64@@@"))
    with pytest.raises(ValidationError, match="subtype 'HTML'"):
        read_mdm(text.replace("^AP^PDF^Base64^", "^TEXT^HTML^Base64^"))


def test_other_messages_and_triggers_are_not_render_mdm():
    with pytest.raises(UnsupportedMessageError, match="T02, T10 and T11"):
        read_mdm(make_mdm().replace("MDM^T02^MDM_T02", "MDM^T06^MDM_T02"))


def test_mode_detection_tells_a_pfi_mdm_from_a_render_mdm():
    assert is_render_mode(iter_segments(make_mdm()))
    pfi = make_pfi_mdm(b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>")
    assert not is_render_mode(iter_segments(pfi if isinstance(pfi, str) else pfi.decode()))
