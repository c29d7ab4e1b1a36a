"""The CDA shown readably on a message's page: the narrative subset, escaping, and who sees it."""

from __future__ import annotations

import base64

from channels.console.narrative import carried_cda, readable
from channels.testing.messages import Patient, encode_message, make_cda, make_pfi_oru

HOSTILE = (b"<paragraph>Traitement: <content styleCode='Bold'>aspirine</content> &lt;script&gt;alert(1)&lt;/script&gt;"
           b"<linkHtml href='javascript:alert(2)'>voir</linkHtml><br/>fin</paragraph>"
           b"<list listType='ordered'><item>un</item><item>deux</item></list>"
           b"<table><tbody><tr><td colspan='2' onclick='x()'>cellule</td></tr></tbody></table>")


def hostile_cda() -> bytes:
    cda = make_cda(document_extension="NARR-1")
    start = cda.index(b"<text>") + len(b"<text>")
    end = cda.index(b"</text>", start)
    return cda[:start] + HOSTILE + cda[end:]


def test_the_narrative_keeps_its_structure_and_nothing_executable():
    narrative = readable(hostile_cda())
    assert narrative.title == "Compte rendu d'examens biologiques" and not narrative.problem
    html = "".join(str(s.html) + "".join(str(x.html) for x in s.sections) for s in narrative.sections)
    assert "<span>aspirine</span>" in html and "<br>fin" in html
    assert "<ol><li>un</li><li>deux</li></ol>" in html
    assert '<td colspan="2">cellule</td>' in html                       # the span kept, the handler dropped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "javascript:" not in html and "onclick" not in html and "styleCode" not in html
    assert "voir" in html                                               # a link keeps its text only


def test_the_cda_is_taken_from_the_pfi_message_as_the_engine_takes_it():
    cda = make_cda(document_extension="NARR-2")
    raw = encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda)))
    assert carried_cda(raw) == cda
    assert carried_cda(b"MSH|^~\\&|A|B|||||ADT^A01|1|P|2.5\rPID|1\r") is None


def test_a_level_1_document_is_described_and_garbage_says_why():
    pdf = base64.b64encode(b"%PDF-1.4 " + b"x" * 4096).decode("ascii")
    level1 = (b"<ClinicalDocument xmlns='urn:hl7-org:v3'><title>Lettre</title><component><nonXMLBody>"
              b"<text mediaType='application/pdf' representation='B64'>" + pdf.encode() + b"</text>"
              b"</nonXMLBody></component></ClinicalDocument>")
    described = readable(level1)
    assert described.title == "Lettre" and described.non_xml == "application/pdf, 4 KB" and not described.sections
    assert readable(b"<not-closed").problem


async def test_an_operator_reads_the_document_and_a_viewer_does_not(console):
    cda = hostile_cda()
    key = await console.receive("CTL-NARR", raw=encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda))))
    async with console.logged_in("operator") as client:
        page = (await client.get(f"/messages/{key}")).text
    assert 'id="document"' in page and "<span>aspirine</span>" in page and "<script" not in page
    events = await console.journal.events(key)
    assert any(e.step == "raw_viewed" and "its document" in e.detail for e in events)
    async with console.logged_in("viewer") as client:
        page = (await client.get(f"/messages/{key}")).text
    assert 'id="document"' not in page and "aspirine" not in page
