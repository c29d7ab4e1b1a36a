"""Render mode end to end on real parts: an ADT^A03 then an MDM^T02 with the PDF letter go over MLLP into
the engine; Liaison writes the LDL-SES CDA (XSD and, with the fixtures, the LDL-SES schematron before it
leaves), looks the médecin traitant and the referring doctor up in the correspondents, and a real Postfix
(STARTTLS, client certificate checked) delivers the IHE_XDM mail to both. The stay's overdue-letter alert
is cleared by the letter. Then a replacement (T10) and a cancellation (T11) follow the same way."""

from __future__ import annotations


from lxml import etree

from mappings.cda_header import read_header
from router.ports import MessageState, OutcomeStatus
from tests.integration.harness import xdm_cda
from channels.testing.adt_messages import PATIENT, make_adt
from channels.testing.lab_messages import biochemistry, make_lab_oru
from channels.testing.mdm_messages import CORRESPONDENTS, letter_pdf, make_mdm
from tests.support.postfix import postfix_fixture

postfix = postfix_fixture()
DURAND, LEFEVRE = CORRESPONDENTS[0]["address"], CORRESPONDENTS[1]["address"]
PATIENT_MAILBOX = f"{PATIENT.ins}@patient.mssante.fr"
NS = {"h": "urn:hl7-org:v3"}


async def test_discharge_then_letter_reaches_the_maildir_as_a_rendered_ldl_ses(pipeline, postfix):
    tag = pipeline.prefix[-9:-1]
    encounter, doc_id = f"V{tag}", f"LDL-{tag}"
    reply = await pipeline.send(make_adt("A03", control_id=f"A03-{tag}", encounter=encounter).encode())
    assert reply.code == "AA", reply.text
    assert (await pipeline.wait_final(f"A03-{tag}")).state == MessageState.DELIVERED

    # The MDM leaves out the discharge mode: it comes from the stay the A03 recorded.
    letter = make_mdm(control_id=f"MDM-{tag}", encounter=encounter, unique_id=doc_id, disposition="")
    reply = await pipeline.send(letter.encode())
    assert reply.code == "AA", reply.text
    record = await pipeline.wait_final(f"MDM-{tag}")
    assert record.state == MessageState.DELIVERED, record.detail

    mails = postfix.wait_for_mail(3, match=lambda m: (xdm_cda(m.message) or b"").find(doc_id.encode()) >= 0)
    by_recipient = {m.recipient: m.message for m in mails}
    assert set(by_recipient) == {DURAND, LEFEVRE, PATIENT_MAILBOX}      # the INS is qualified (QUAL)
    assert by_recipient[PATIENT_MAILBOX]["X-MSS-INS"] is not None
    cda = xdm_cda(by_recipient[DURAND])
    header = read_header(cda)
    assert header.type_code == "11490-0" and header.version == 1 and header.document_id.endswith(doc_id)
    assert by_recipient[DURAND]["X-MSS-CODECDA"] == "11490-0"
    tree = etree.fromstring(cda)
    assert tree.xpath("//h:observation[h:code/@code='ORG-074']/h:value/@code", namespaces=NS) == ["160849004"]
    media = tree.xpath("string(//h:observationMedia/h:value)", namespaces=NS)
    assert media and letter_pdf().startswith(b"%PDF-")

    events = await pipeline.journal.events(record.key)
    steps = [e.step for e in events]
    assert steps.index("render") < steps.index("schema") < steps.index("dispatched")
    assert sum(1 for e in events if e.step == "recipient" and e.state == "kept") == 3
    outcomes = await pipeline.journal.outcomes(header.document_id)
    assert {o.destination: o.status for o in outcomes} == {DURAND: OutcomeStatus.ACCEPTED,
                                                           LEFEVRE: OutcomeStatus.ACCEPTED,
                                                           PATIENT_MAILBOX: OutcomeStatus.ACCEPTED}
    stay = await pipeline.journal.stay("CHU-TEST", encounter)
    assert stay.letter_sent_at is not None

    # Replacement: same set, version 2, mailed again; cancellation: the deletion goes out too.
    reply = await pipeline.send(make_mdm("T10", control_id=f"T10-{tag}", encounter=encounter,
                                         unique_id=f"{doc_id}-2", parent_id=doc_id).encode())
    assert reply.code == "AA", reply.text
    assert (await pipeline.wait_final(f"T10-{tag}")).state == MessageState.DELIVERED
    replaced = postfix.wait_for_mail(3, match=lambda m: (xdm_cda(m.message) or b"").find(
        f"{doc_id}-2".encode()) >= 0)
    second = read_header(xdm_cda(replaced[0].message))
    assert (second.set_id, second.version, second.parent_document_id) == (header.set_id, 2, header.document_id)

    reply = await pipeline.send(make_mdm("T11", control_id=f"T11-{tag}", encounter=encounter,
                                         unique_id=f"{doc_id}-2").encode())
    assert reply.code == "AA", reply.text
    cancelled = await pipeline.wait_final(f"T11-{tag}")
    assert cancelled.state == MessageState.DELIVERED, cancelled.detail
    deletion_outcomes = await pipeline.journal.outcomes(second.document_id + "#delete")
    assert {o.destination for o in deletion_outcomes} == {DURAND, LEFEVRE, PATIENT_MAILBOX}


async def test_a_lab_oru_with_discrete_results_reaches_the_prescriber_as_a_rendered_cr_bio(pipeline, postfix):
    tag = pipeline.prefix[-9:-1]
    text = make_lab_oru([biochemistry(filler=f"F{tag}", placer=f"P{tag}")], control_id=f"LAB-{tag}")
    reply = await pipeline.send(text.encode())
    assert reply.code == "AA", reply.text
    record = await pipeline.wait_final(f"LAB-{tag}")
    assert record.state == MessageState.DELIVERED, record.detail
    events = await pipeline.journal.events(record.key)
    document_id = next(e.document_id for e in events if e.step == "render")
    mails = postfix.wait_for_mail(2, match=lambda m: (xdm_cda(m.message) or b"").find(
        document_id.split("^")[-1].encode()) >= 0)
    assert {m.recipient for m in mails} == {DURAND, PATIENT_MAILBOX}
    cda = xdm_cda(mails[0].message)
    header = read_header(cda)
    assert header.type_code == "11502-2" and "1.2.250.1.213.1.1.1.55" in header.template_ids
    assert mails[0].message["X-MSS-CODECDA"] == "11502-2"
    if any(e.step == "schematron" for e in events):          # with the fixtures: CR-BIO volet checked first
        assert next(e for e in events if e.step == "schematron").state == "valid"
