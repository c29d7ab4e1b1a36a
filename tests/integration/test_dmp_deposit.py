"""The DMP deposit end to end on real parts: a PFI ORU with DESTDMP=Y goes over MLLP into the engine, which
signs a VIHF for the patient, wraps the CDA in an ITI-41 SOAP/MTOM request and sends it over mutual TLS to a
DMP test double (client certificate required, VIHF signature checked against the test CA, metadata checked
against the CDA: hash, size, patientId = INS); the HIS gets a ZAM^Z01. Then a replacement (RPLC: the first
version becomes Deprecated) and a deletion (ITI-57: Deleted). A patient's objection to feeding their DMP, given by
the ADT feed (PAM-FR ZFA-9 = IO), refuses a later deposit without calling the DMP. Runs on the embedded bus and
on RabbitMQ."""

from __future__ import annotations

from dataclasses import replace


from mappings.cda_header import read_header
from mappings.xds_metadata import entry_uuid
from router.ports import MessageState, OutcomeStatus
from channels.app.cli.journal import show
from tests.integration.harness import Pipeline
from channels.testing.adt_messages import PATIENT as ADT_PATIENT, make_adt, zfa
from channels.testing.cda import make_cda
from channels.testing.dmp_double import HttpError, RegistryFailure
from channels.testing.messages import Patient, encode_message, make_pfi_oru

DMP_ONLY = {"DESTDMP": "Y", "DESTMSSANTEPS": "N", "ACK_RECEPTION": "Y"}
FIRST = "1.2.250.1.999.1.3^DMP-DOC-1"
SECOND = "1.2.250.1.999.1.3^DMP-DOC-2"


async def send(pipe: Pipeline, cda: bytes, control_id: str, **options) -> None:
    raw = encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id=control_id, recipients=[],
                                      flags=DMP_ONLY, **options))
    reply = await pipe.send(raw)
    assert reply.code == "AA", reply.text


async def test_deposit_then_replace_then_delete_with_a_zam_each(dmp):
    pipe, double = dmp
    first = make_cda(document_id=FIRST, set_id="1.2.250.1.999.1.4^DMP-SET", version=1)
    await send(pipe, first, "DMP-0001")
    record = await pipe.wait_final("DMP-0001")
    assert record.state == MessageState.DELIVERED, record.detail
    stored = double.by_unique_id(FIRST)
    assert stored is not None and stored.content == first and stored.entry_uuid == entry_uuid(FIRST)
    assert stored.patient_id.startswith(read_header(first).ins)
    outcome = {o.destination: o for o in await pipe.journal.outcomes(FIRST)}["dmp"]
    assert outcome.status == OutcomeStatus.ACCEPTED and "Success" in outcome.detail

    second = make_cda(document_id=SECOND, set_id="1.2.250.1.999.1.4^DMP-SET", version=2, parent_document_id=FIRST)
    await send(pipe, second, "DMP-0002", action="C", orc_control="RO")
    assert (await pipe.wait_final("DMP-0002")).state == MessageState.DELIVERED
    assert double.by_unique_id(SECOND).status.endswith("Approved")
    assert double.by_unique_id(FIRST).status.endswith("Deprecated")

    await send(pipe, second, "DMP-0003", action="D", orc_control="CA")
    assert (await pipe.wait_final("DMP-0003")).state == MessageState.DELIVERED
    assert double.by_unique_id(SECOND).status.endswith("Deleted")

    zams = await pipe.his.wait_for(3, timeout=20)
    z01 = [z for z in zams if "ZAM^Z01" in z]
    assert len(z01) == 3 and all("ACK_RECEPTION_DMP" in z for z in z01)
    assert all(z.split("\r")[2].split("|")[5].startswith("Y") for z in z01)


async def test_a_refusal_by_the_dmp_fails_the_deposit_with_its_reason_and_a_zam(dmp):
    pipe, double = dmp
    double.fail_next(RegistryFailure("DMPClosed", "le DMP du patient est fermé"))
    await send(pipe, make_cda(document_id=FIRST), "DMP-0010")
    record = await pipe.wait_final("DMP-0010")
    assert record.state == MessageState.FAILED
    outcome = {o.destination: o for o in await pipe.journal.outcomes(FIRST)}["dmp"]
    assert outcome.status == OutcomeStatus.FAILED and "DMPClosed" in outcome.detail
    zam = next(z for z in await pipe.his.wait_for(1, timeout=20) if "ZAM^Z01" in z)
    assert "DMPRejected" in zam and "|N" in zam.split("\r")[2]


async def test_no_deposit_without_a_qualified_ins(dmp):
    pipe, double = dmp
    cda = make_cda(document_id=FIRST)
    raw = encode_message(make_pfi_oru(cda, patient=Patient(**{**Patient.of_cda(cda).__dict__,
                                                               "identity_status": "PROV"}),
                                      control_id="DMP-0020", recipients=[], flags=DMP_ONLY))
    assert (await pipe.send(raw)).code == "AA"
    record = await pipe.wait_final("DMP-0020")
    assert record.state == MessageState.FAILED
    outcome = {o.destination: o for o in await pipe.journal.outcomes(FIRST)}["dmp"]
    assert outcome.status == OutcomeStatus.REFUSED
    assert outcome.detail == "not deposited: identity status PROV in PID-32 is not qualified (needs QUAL or VALI)"
    assert double.received == []


async def test_a_retry_that_finds_its_document_already_stored_counts_as_deposited(dmp):
    pipe, double = dmp
    double.fail_next(HttpError(503), RegistryFailure("XDSDuplicateUniqueIdInRegistry", "uniqueId already known"))
    await send(pipe, make_cda(document_id=FIRST), "DMP-0030")
    assert (await pipe.wait_final("DMP-0030")).state == MessageState.DELIVERED
    outcome = {o.destination: o for o in await pipe.journal.outcomes(FIRST)}["dmp"]
    assert outcome.status == OutcomeStatus.ACCEPTED and "earlier attempt" in outcome.detail


async def admit(pipe: Pipeline, patient: Patient, control_id: str, consent: str) -> str:
    """An A01 from the hospital's GAM (MSH-4 CHU-TEST) for the patient of a document, carrying ``consent`` (ZFA)."""
    raw = make_adt("A01", patient=replace(ADT_PATIENT, ipp=patient.ipp), control_id=control_id, zfa=consent)
    assert (await pipe.send(raw.encode("utf-8"))).code == "AA"
    record = await pipe.wait_final(control_id)
    assert record.state == MessageState.DELIVERED, record.detail
    return record.key


async def test_an_objection_given_at_admission_refuses_the_deposit_without_calling_the_dmp(dmp):
    pipe, double = dmp
    cda = make_cda(document_id=FIRST)
    patient = Patient.of_cda(cda)
    a01 = await admit(pipe, patient, "ZFA-A01", zfa(feeding="IO", consultation="INC"))

    await send(pipe, cda, "ZFA-ORU", sending_facility="CHU-TEST")
    record = await pipe.wait_final("ZFA-ORU")
    assert record.state == MessageState.FAILED
    outcome = {o.destination: o for o in await pipe.journal.outcomes(FIRST)}["dmp"]
    assert outcome.status == OutcomeStatus.REFUSED
    assert outcome.detail == "not deposited: opposition: the patient objects to feeding their DMP (ZFA-9 = IO)"
    assert double.received == []                                   # no ITI-41, nor any other call
    z01 = next(z for z in await pipe.his.wait_for(1, timeout=20) if "ZAM^Z01" in z)
    assert z01.split("\r")[2].split("|")[5].startswith("N")
    assert "DMPNotAllowed" in z01 and "opposition" in z01
    used = [e for e in await pipe.journal.events(record.key) if (e.step, e.state) == ("dmp", "consent")]
    assert len(used) == 1 and f"from the ADT feed (message {a01})" in used[0].detail

    lines: list[str] = []                                           # what `liaison journal show` prints
    assert await show(pipe.engine.settings, a01, raw=False, out=lines.append) == 0
    shown = "\n".join(lines)
    assert "dmp_consent kept" in shown and "consultation ZFA-11 INC (consent refused" in shown


async def test_a_later_patient_update_lifting_the_objection_lets_the_deposit_through(dmp):
    pipe, double = dmp
    cda = make_cda(document_id=FIRST)
    patient = Patient.of_cda(cda)
    await admit(pipe, patient, "ZFA-A01", zfa(feeding="IO"))
    a31 = make_adt("A31", patient=replace(ADT_PATIENT, ipp=patient.ipp), control_id="ZFA-A31",
                   zfa=zfa(feeding="NA", consultation="NA"))
    assert (await pipe.send(a31.encode("utf-8"))).code == "AA"
    assert (await pipe.wait_final("ZFA-A31")).state == MessageState.DELIVERED

    await send(pipe, cda, "ZFA-ORU", sending_facility="CHU-TEST")
    assert (await pipe.wait_final("ZFA-ORU")).state == MessageState.DELIVERED
    assert double.by_unique_id(FIRST) is not None                   # NA (not collected) does not block feeding
