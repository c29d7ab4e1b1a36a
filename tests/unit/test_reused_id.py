"""The door's early look at a reused CDA id (router/reused_id.py), on a real SQLite journal."""

from __future__ import annotations

import hashlib
import textwrap
from datetime import datetime, timezone

import pytest

from channels.journal.sqlite import SqliteJournal
from channels.testing.messages import Patient, encode_message, make_cda, make_pfi_oru
from mappings.cda_header import read_header
from router.hl7.msh import iter_segments
from router.ports import ReceivedMessage
from router.reused_id import cda_document_id, reused_id_refusal


def segments(cda: bytes, *, action: str = "F", control_id: str = "M2"):
    text = encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id=control_id,
                                       action=action)).decode("utf-8")
    return list(iter_segments(text))


def test_the_cda_id_is_read_as_the_full_header_reader_reads_it():
    cda = make_cda(document_extension="ID-42")
    assert cda_document_id(cda) == read_header(cda).document_id
    assert cda_document_id(b"<ClinicalDocument xmlns='urn:hl7-org:v3'><id root='1.2.3'/></ClinicalDocument>") == "1.2.3"


@pytest.mark.parametrize("cda", [
    b"not xml at all",
    b"<other xmlns='urn:hl7-org:v3'><id root='1.2.3'/></other>",                        # not a CDA
    b"<ClinicalDocument xmlns='urn:hl7-org:v3'><x><id root='1.2.3'/></x></ClinicalDocument>",  # not its own id
    b"<ClinicalDocument xmlns='urn:hl7-org:v3'><id extension='no-root'/></ClinicalDocument>",
])
def test_no_id_is_guessed_from_what_is_not_a_cda_id(cda):
    assert cda_document_id(cda) == ""


async def test_only_other_content_under_a_bound_id_is_refused(tmp_path):
    cda = make_cda(document_extension="BOUND-1")
    other = cda.replace(b"<title>Compte rendu d'examens biologiques</title>", b"<title>Autre</title>")
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        assert await reused_id_refusal(segments(other), journal) is None          # nothing bound yet
        key, _ = await journal.record_received(ReceivedMessage(
            raw=b"MSH|...", channel="t", sending_application="LABO", sending_facility="L", control_id="FIRST-1",
            message_type="ORU^R01", received_at=datetime.now(timezone.utc), peer="127.0.0.1"))
        await journal.bind_content(read_header(cda).document_id, hashlib.sha256(cda).hexdigest(), key)

        assert await reused_id_refusal(segments(cda), journal) is None            # same content: a re-send
        refusal = await reused_id_refusal(segments(other), journal)
        assert refusal is not None and refusal.hl7_code == "205"
        assert read_header(cda).document_id in str(refusal) and "MSH-10 FIRST-1" in str(refusal)
        assert await reused_id_refusal(segments(other, action="D"), journal) is None   # a deletion is not bound


def test_the_id_is_found_in_line_wrapped_base64_past_the_first_steps():
    """The door decodes step by step: an id after a long preamble, in base64 wrapped at 76 characters."""
    import base64
    from router.reused_id import _document_id_from_base64
    cda = make_cda(document_extension="FAR-1")
    padded = cda.replace(b"<id ", b"<!-- " + b"p" * 5000 + b" -->\n  <id ", 1)
    wrapped = "\n".join(textwrap.wrap(base64.b64encode(padded).decode("ascii"), 76))
    assert _document_id_from_base64(wrapped) == read_header(cda).document_id
    assert _document_id_from_base64(wrapped[:-3] + "!!!") == read_header(cda).document_id   # the id came first
    assert _document_id_from_base64("@@@@" + wrapped) == ""                                 # not base64 at all
