"""PFI mode: ORU^R01 / MDM^T02-T10-T04 carrying a CDA → DocumentJob."""

from __future__ import annotations

import base64

import hl7
import pytest
from structlog.testing import capture_logs

from router.errors import UnsupportedMessageError, ValidationError
from router.hl7.msh import iter_segments
from router.model import (
    Action, CdaHeader, DocumentJob, MessageSource, Participant, Recipient, RecipientKind, Refusal, addressed,
)
from router.pfi import check_routing, read_pfi
from router.recipients_pfi import read_participants
from tests.support.fixtures import ans_sample
from channels.testing.messages import (
    CARDIOLOGIE, DOC_ROOT, DR_LEROY, DR_MARTIN, IPP_OID, OTHER_PATIENT, PATIENT, SENDER, Patient,
    Rct, encode_message, make_cda, make_pfi_mdm, make_pfi_oru, patient_rct,
)

CDA = make_cda()
DOCUMENT_ID = f"{DOC_ROOT}^DOC-0001"
PARENT_ID = f"{DOC_ROOT}^DOC-0000"
SOURCE = MessageSource("LABO-TEST", "LABO", "LIAISON", "HOPITAL-TEST", "MSG0001", "ORU^R01")
WITH_PATIENT = {"recipients": [DR_MARTIN, patient_rct()], "flags": {"DESTMSSANTEPAT": "Y"}}


class StubCdaReader:
    """Answers a fixed header and records the bytes it was given."""

    def __init__(self, header: CdaHeader):
        self.header = header
        self.calls: list[bytes] = []

    def __call__(self, cda: bytes) -> CdaHeader:
        self.calls.append(cda)
        return self.header


def header_for(patient: Patient = PATIENT, *, with_ins: bool = True, ins_oid: str | None = None,
               parent: str = "") -> CdaHeader:
    ids = ((IPP_OID, patient.ipp),) + (((patient.ins_oid, patient.ins),) if with_ins else ())
    return CdaHeader(document_id=DOCUMENT_ID, patient_ids=ids,
                     ins=patient.ins if with_ins else "",
                     ins_oid=(ins_oid or patient.ins_oid) if with_ins else "",
                     parent_document_id=parent)


def read(text: str, header: CdaHeader | None = None, reader: StubCdaReader | None = None) -> DocumentJob:
    reader = reader or StubCdaReader(header or header_for())
    return read_pfi(hl7.parse(text), message_key="key-1", source=SOURCE, cda_reader=reader)


def refused(text: str, header: CdaHeader | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        read(text, header)
    return caught.value


# --- the happy path ---------------------------------------------------------------------

def test_oru_becomes_a_document_job():
    reader = StubCdaReader(header_for())
    text = make_pfi_oru(CDA, reply_to="secretariat@labo-test.mssante.fr",
                        flags={"DESTDMP": "Y"}, body_ps="Chère consœur")
    job = read(text, reader=reader)
    assert reader.calls == [CDA]
    assert job.job_id == f"key-1:{DOCUMENT_ID}"
    assert (job.message_key, job.source, job.action, job.cda) == ("key-1", SOURCE, Action.PUBLISH, CDA)
    assert job.header is reader.header
    assert job.recipients == (Recipient("dr.martin@hopital-test.mssante.fr", RecipientKind.PROFESSIONAL,
                                        "810000123454", "Claire MARTIN"),)
    assert job.sender == Participant(SENDER.identifier, SENDER.family, SENDER.given,
                                     SENDER.finess, SENDER.organisation)
    assert job.reply_to == "secretariat@labo-test.mssante.fr"
    assert job.patient_ipp == PATIENT.ipp
    assert job.flags.dest_dmp and job.flags.dest_mss_ps and job.flags.body_ps == "Chère consœur"


def test_job_survives_the_bus_round_trip():
    job = read(make_pfi_oru(CDA, **WITH_PATIENT))
    assert DocumentJob.from_json(job.to_json()) == job


def test_the_messages_own_zfa_travels_with_the_job():
    job = read(make_pfi_oru(CDA, extra_segments=["ZFA|ACTIF|20240310|||||||IO|20240310|IC|20240310"]))
    assert (job.dmp_consent.status, job.dmp_consent.feeding, job.dmp_consent.consultation) == ("ACTIF", "IO", "IC")
    assert DocumentJob.from_json(job.to_json()) == job
    assert read(make_pfi_oru(CDA)).dmp_consent is None


def test_patient_recipient_is_recognised_by_its_ins():
    job = read(make_pfi_oru(CDA, **WITH_PATIENT, no_reply=True))
    patient = [r for r in job.recipients if r.kind is RecipientKind.PATIENT]
    assert patient == [Recipient(PATIENT.address, RecipientKind.PATIENT, PATIENT.ins,
                                 f"{PATIENT.given} {PATIENT.family}")]
    assert job.flags.patient_no_reply


def test_patient_recipient_is_recognised_by_its_address_alone():
    job = read(make_pfi_oru(CDA, recipients=[Rct(PATIENT.address)],
                            flags={"DESTMSSANTEPS": "N", "DESTMSSANTEPAT": "Y"}))
    assert [r.kind for r in job.recipients] == [RecipientKind.PATIENT]


def test_recipients_are_deduplicated_by_address():
    shouting = Rct(DR_MARTIN.address.upper(), DR_MARTIN.identifier)
    job = read(make_pfi_oru(CDA, recipients=[DR_MARTIN, DR_LEROY, DR_MARTIN, shouting]))
    assert [r.address for r in job.recipients] == [DR_MARTIN.address, DR_LEROY.address]


def test_organisation_and_application_recipients():
    application = Rct("appli-dpi@hopital-test.mssante.fr", device="APP-12")
    job = read(make_pfi_oru(CDA, recipients=[CARDIOLOGIE, application]))
    assert [(r.name, r.identifier, r.kind) for r in job.recipients] == [
        ("Cardiologie", "", RecipientKind.PROFESSIONAL),
        ("APP-12", "APP-12", RecipientKind.PROFESSIONAL),
    ]


def test_addresses_are_stripped():
    job = read(make_pfi_oru(CDA, recipients=[Rct("  dr.martin@hopital-test.mssante.fr ")]))
    assert job.recipients[0].address == "dr.martin@hopital-test.mssante.fr"


def test_dmp_only_needs_no_recipient():
    job = read(make_pfi_oru(CDA, recipients=(), flags={"DESTDMP": "Y", "DESTMSSANTEPS": "N"}))
    assert job.recipients == () and job.flags.dest_dmp


# --- recipients and flags ------------------------------------------------------------------

def test_malformed_address_is_refused_naming_it():
    error = refused(make_pfi_oru(CDA, recipients=[Rct("dr.martin@@hopital-test")]))
    assert "dr.martin@@hopital-test" in error.reason and "PRT RCT" in error.reason


def test_malformed_reply_to_is_refused():
    assert "REPLY" in refused(make_pfi_oru(CDA, reply_to="secretariat chez labo")).reason


def test_rct_without_address_is_refused():
    assert "PRT-15.4" in refused(make_pfi_oru(CDA, recipients=[Rct("", "810000123454")])).reason


def test_oru_without_prt_recipients_is_refused_because_destmssanteps_is_y():
    error = refused(make_pfi_oru(CDA, recipients=()))
    assert "DESTMSSANTEPS=Y sans destinataire professionnel" in error.reason


def test_dmp_deposit_needs_the_sender():
    error = refused(make_pfi_oru(CDA, sender=None, flags={"DESTDMP": "Y"}))
    assert "PRT SB" in error.reason


def test_forbidden_flag_combination_is_refused():
    text = make_pfi_oru(CDA, recipients=[DR_MARTIN, patient_rct()],
                        flags={"DESTMSSANTEPAT": "Y", "INVISIBLE_PATIENT": "Y"})
    assert "INVISIBLE_PATIENT=Y interdit DESTMSSANTEPAT=Y" in refused(text).reason


def test_patient_address_of_another_patient_is_refused():
    text = make_pfi_oru(CDA, recipients=[patient_rct(OTHER_PATIENT)],
                        flags={"DESTMSSANTEPS": "N", "DESTMSSANTEPAT": "Y"})
    error = refused(text)
    assert error.hl7_code == "904" and "address does not match" in error.reason


def test_patient_recipient_outside_the_patient_domain_is_refused():
    text = make_pfi_oru(CDA, recipients=[patient_rct(address="camille@ailleurs-test.fr")],
                        flags={"DESTMSSANTEPS": "N", "DESTMSSANTEPAT": "Y"})
    assert "@patient.mssante.fr" in refused(text).reason


# --- one bad recipient is refused alone ----------------------------------------------------

BOTH = {"DESTMSSANTEPAT": "Y"}
MALFORMED = Rct("dr.leroy@@cabinet-test", DR_LEROY.identifier, "LEROY", "Paul")


def test_a_malformed_address_refuses_that_recipient_alone():
    job = read(make_pfi_oru(CDA, recipients=[MALFORMED, DR_MARTIN]))
    bad, good = job.recipients
    assert bad.address == MALFORMED.address and bad.kind is RecipientKind.PROFESSIONAL
    assert bad.refusal == Refusal("malformed MSSanté address 'dr.leroy@@cabinet-test' in PRT RCT (segment 8)",
                                  "102", "Data type error")
    assert good == Recipient(DR_MARTIN.address, RecipientKind.PROFESSIONAL, DR_MARTIN.identifier, "Claire MARTIN")
    assert addressed(job.recipients) == (good,)


def test_a_patient_address_of_another_patient_refuses_that_recipient_alone():
    job = read(make_pfi_oru(CDA, recipients=[DR_MARTIN, patient_rct(OTHER_PATIENT)], flags=BOTH))
    doctor, patient = job.recipients
    assert doctor.refusal is None
    assert patient.kind is RecipientKind.PATIENT and patient.address == OTHER_PATIENT.address
    assert patient.refusal == Refusal("the patient's MSSanté address does not match the CDA's INS",
                                      "904", "INS ne correspondant pas")


def test_a_patient_recipient_outside_the_patient_domain_is_refused_alone():
    job = read(make_pfi_oru(CDA, recipients=[DR_MARTIN, patient_rct(address="camille@ailleurs-test.fr")],
                            flags=BOTH))
    assert [r.refusal is None for r in job.recipients] == [True, False]
    assert "@patient.mssante.fr" in job.recipients[1].refusal.reason


def test_a_patient_recipient_is_refused_alone_when_the_cda_has_no_ins():
    text = make_pfi_oru(CDA, patient=Patient(ins=""), recipients=[DR_MARTIN, patient_rct()], flags=BOTH)
    job = read(text, header_for(with_ins=False))
    assert [r.refusal.hl7_code if r.refusal else None for r in job.recipients] == [None, "903"]


def test_the_dmp_keeps_a_message_whose_only_recipient_is_refused():
    text = make_pfi_oru(CDA, recipients=[patient_rct(OTHER_PATIENT)],
                        flags={"DESTDMP": "Y", "DESTMSSANTEPS": "N", "DESTMSSANTEPAT": "Y"})
    job = read(text)
    assert job.flags.dest_dmp
    assert [r.refusal.hl7_code for r in job.recipients] == ["904"] and addressed(job.recipients) == ()


def test_flags_count_a_refused_recipient_as_asked_for():
    """DESTMSSANTEPS=Y with only a malformed PS address: the PS is answered, not the whole message refused."""
    job = read(make_pfi_oru(CDA, recipients=[MALFORMED, patient_rct()], flags=BOTH))
    assert [(r.kind, r.refusal is None) for r in job.recipients] == [
        (RecipientKind.PROFESSIONAL, False), (RecipientKind.PATIENT, True)]


def test_a_refused_recipient_survives_the_bus_round_trip():
    job = read(make_pfi_oru(CDA, recipients=[DR_MARTIN, patient_rct(OTHER_PATIENT)], flags=BOTH))
    again = DocumentJob.from_json(job.to_json())
    assert again == job and again.recipients[1].refusal.hl7_code == "904"


def test_the_door_lets_a_message_with_one_malformed_address_through():
    """The listener's pre-ACK check (lazy segments) keeps the refusal on the recipient instead of an AE."""
    flags, participants = check_routing(list(iter_segments(make_pfi_oru(CDA, recipients=[DR_MARTIN, MALFORMED]))))
    assert flags.dest_mss_ps
    assert [r.refusal is None for r in participants.recipients] == [True, False]


def test_the_first_refusal_refuses_the_message_when_no_recipient_and_no_dmp_is_left():
    text = make_pfi_oru(CDA, recipients=[patient_rct(OTHER_PATIENT), MALFORMED], flags=BOTH)
    error = refused(text)
    assert error.hl7_code == "904" and "address does not match" in error.reason


# --- the document ------------------------------------------------------------------------

def test_invalid_base64_is_refused_before_the_cda_is_read():
    reader = StubCdaReader(header_for())
    encoded = base64.b64encode(CDA).decode("ascii")
    corrupted = encoded[:40] + "!" + encoded[40:]        # a lenient decoder would skip the "!"
    with pytest.raises(ValidationError, match="invalid base64 in OBX-5") as caught:
        read(make_pfi_oru(CDA, cda_base64=corrupted), reader=reader)
    assert caught.value.hl7_code == "102"
    assert reader.calls == []


def test_line_wrapped_base64_is_accepted():
    encoded = base64.b64encode(CDA).decode("ascii")
    wrapped = " ".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))
    assert read(make_pfi_oru(CDA, cda_base64=wrapped)).cda == CDA


def test_empty_document_is_refused():
    assert "OBX-5.5 is empty" in refused(make_pfi_oru(CDA, cda_base64="")).reason


def test_document_must_be_base64_encoded():
    def hex_encoding(segments: list[str]) -> list[str]:
        return [s.replace("^XML^Base64^", "^XML^Hex^") for s in segments]

    assert "OBX-5.4 must be Base64" in refused(make_pfi_oru(CDA, transform=hex_encoding)).reason


def test_first_document_is_taken_when_the_oru_carries_two():
    assert read(make_pfi_oru(CDA, alternate_cda=b"<autre/>")).cda == CDA


def test_message_without_document_is_refused():
    def without_document(segments: list[str]) -> list[str]:
        return [s for s in segments if not s.startswith("OBX|1|ED|")]

    assert "no document OBX" in refused(make_pfi_oru(CDA, transform=without_document)).reason


# --- PID against the CDA -----------------------------------------------------------------

def test_pid_ins_must_match_the_cda():
    error = refused(make_pfi_oru(CDA), header_for(OTHER_PATIENT))
    assert error.hl7_code == "904"
    assert PATIENT.ins not in error.reason and OTHER_PATIENT.ins not in error.reason


def test_pid_ins_oid_must_match_the_cda():
    assert refused(make_pfi_oru(CDA), header_for(ins_oid="1.2.250.1.213.1.4.8")).hl7_code == "904"


def test_cda_without_ins_while_pid_has_one_is_refused():
    assert refused(make_pfi_oru(CDA), header_for(with_ins=False)).hl7_code == "903"


def test_without_pid_ins_the_ipp_must_be_in_the_cda():
    assert read(make_pfi_oru(CDA, pid_ins=False), header_for(with_ins=False)).patient_ipp == PATIENT.ipp
    error = refused(make_pfi_oru(CDA, pid_ins=False), header_for(OTHER_PATIENT))
    assert error.hl7_code == "902"


def test_pid_without_ins_nor_ipp_is_refused():
    text = make_pfi_oru(CDA, replace={"PID": "PID|||123^^^X&1.2.3&ISO^MR||TEST^A"})
    assert refused(text).hl7_code == "101"


# --- message type and action ---------------------------------------------------------------

@pytest.mark.parametrize("message_type, code", [
    ("ADT^A01^ADT_A01", "200"), ("ORU^R30^ORU_R30", "201"), ("MDM^T11^MDM_T01", "201"),
])
def test_other_message_types_are_unsupported(message_type, code):
    with pytest.raises(UnsupportedMessageError) as caught:
        read(make_pfi_oru(CDA, message_type=message_type))
    assert caught.value.hl7_code == code


@pytest.mark.parametrize("status, action", [
    ("F", Action.PUBLISH), ("C", Action.REPLACE), ("D", Action.DELETE),
])
def test_oru_action_comes_from_obx11_and_orc1(status, action):
    job = read(make_pfi_oru(CDA, action=status), header_for(parent=PARENT_ID))
    assert job.action is action


def test_replace_needs_the_parent_document_in_the_cda():
    assert "parentDocument" in refused(make_pfi_oru(CDA, action="C")).reason


@pytest.mark.parametrize("status, control", [("F", "CA"), ("D", "NW"), ("C", "NW")])
def test_orc1_contradicting_obx11_is_refused(status, control):
    error = refused(make_pfi_oru(CDA, action=status, orc_control=control), header_for(parent=PARENT_ID))
    assert f"ORC-1={control}" in error.reason


def test_unknown_obx11_and_orc1_values_are_refused():
    assert refused(make_pfi_oru(CDA, action="P", orc_control="NW")).hl7_code == "103"
    assert refused(make_pfi_oru(CDA, orc_control="XO")).hl7_code == "103"


def test_oru_without_orc_is_refused():
    assert "without ORC" in refused(make_pfi_oru(CDA, replace={"ORC": None})).reason


@pytest.mark.parametrize("status, trigger, action", [
    ("F", "T02", Action.PUBLISH), ("C", "T10", Action.REPLACE), ("D", "T04", Action.DELETE),
])
def test_mdm_trigger_gives_the_action(status, trigger, action):
    text = make_pfi_mdm(CDA, action=status, txa_parent_id=f"DOC-0000^^{DOC_ROOT}^ISO")
    assert f"MDM^{trigger}^MDM_T02" in text
    assert read(text, header_for(parent=PARENT_ID)).action is action


def test_mdm_without_orc_is_accepted_like_the_ans_samples():
    assert read(make_pfi_mdm(CDA, replace={"ORC": None})).action is Action.PUBLISH


def test_mdm_trigger_contradicting_obx11_is_refused():
    text = make_pfi_mdm(CDA, message_type="MDM^T10^MDM_T02", replace={"ORC": None})
    assert "MDM^T10 asks for replace" in refused(text, header_for(parent=PARENT_ID)).reason


# --- charset, logs, the real CDA reader ----------------------------------------------------

def test_latin1_message_reads_like_utf8():
    accented = Patient(family="HÉLÈNE-TEST", given="ZOÉ")
    text = make_pfi_oru(CDA, patient=accented, charset="8859/1", body_ps="Chère consoeur",
                        body_charset="latin-1")
    raw = encode_message(text)
    assert "É".encode("latin-1") in raw and "É".encode("utf-8") not in raw
    job = read(raw.decode("latin-1"), header_for(accented))
    assert job.flags.body_ps == "Chère consoeur"


def test_logs_carry_no_patient_data():
    with capture_logs() as logs:
        read(make_pfi_oru(CDA, **WITH_PATIENT))
    assert [e["event"] for e in logs] == ["pfi.read"]
    text = repr(logs)
    for secret in (PATIENT.ins, PATIENT.family, PATIENT.given, PATIENT.ipp, "patient.mssante.fr"):
        assert secret not in text


def test_with_the_real_cda_header_reader():
    cda_header = pytest.importorskip("mappings.cda_header")
    cda = make_cda(parent_extension="DOC-0000")
    job = read_pfi(hl7.parse(make_pfi_oru(cda, action="C", **WITH_PATIENT)), message_key="key-9",
                   source=SOURCE, cda_reader=cda_header.read_header)
    assert job.job_id == f"key-9:{DOCUMENT_ID}"
    assert (job.header.ins, job.header.ins_oid) == (PATIENT.ins, PATIENT.ins_oid)
    assert job.header.parent_document_id == PARENT_ID
    assert job.action is Action.REPLACE and job.patient_ipp == PATIENT.ipp


# --- the ANS samples (their OBX-5 is a placeholder, not a CDA) ------------------------------

ANS_PATIENT = Patient(ins="279035121518989", ipp="")


def test_ans_v21_oru_participants():
    message = hl7.parse(ans_sample("V2.1", "ORU", "Transmission initiale ORU",
                                   "message_ORU_CR_Bio_INIT_N1_N3.hl7"))
    participants = read_participants(message)
    assert participants.sender == Participant("801234567866", "DIAZ", "Thierry", "1120459876", "labo")
    assert participants.recipients == (
        Recipient("adam.hoda@test-ci-sis.mssante.fr", RecipientKind.PROFESSIONAL, "801234567897",
                  "Adam Hoda"),
        Recipient("279035121518989@patient.mssante.fr", RecipientKind.PATIENT, "279035121518989",
                  "DOMINIQUE PAT-TROIS"),
    )
    assert participants.reply_to == "adam.hoda@test-ci-sis.mssante.fr"


def test_ans_v20_mdm_participants():
    message = hl7.parse(ans_sample("V2.0", "MDM", "Transmission initiale MDM",
                                   "message_MDM_CR_Radio_INIT_N1.er7"))
    participants = read_participants(message)
    assert participants.sender == Participant("801234564895", "Eric", "Thomas", "300017985", "")
    assert [(r.address, r.kind) for r in participants.recipients] == [
        ("adam.hoda@test-ci-sis.mssante.fr", RecipientKind.PROFESSIONAL)]
    assert participants.reply_to == ""


@pytest.mark.parametrize("folder, name, action", [
    ("Suppression ORU", "message_ORU_CR_Bio_DEL_N1_N3.er7", Action.DELETE),
    ("Remplacement ORU", "message_ORU_CR_Bio_RPLC_N1_N3.er7", Action.REPLACE),
])
def test_ans_v21_oru_samples_read_end_to_end_with_a_stub_header(folder, name, action):
    text = ans_sample("V2.1", "ORU", folder, name)
    job = read(text, header_for(ANS_PATIENT, parent=PARENT_ID))
    assert job.action is action
    assert job.cda == b"Document medcial au format CDA niveau 1"
    assert [r.kind for r in job.recipients] == [RecipientKind.PROFESSIONAL, RecipientKind.PATIENT]
    assert job.patient_ipp == ""


def test_job_json_round_trip_keeps_a_large_cda_and_reads_the_former_layout_too():
    import json
    from dataclasses import replace as _replace

    from channels.testing.cda import make_job
    job = make_job()
    big = _replace(job, cda=job.cda + b"<!--" + bytes(range(256)).hex().encode() * 4000 + b"-->")
    raw = big.to_json()
    assert raw.endswith(b'"}') and DocumentJob.from_json(raw) == big
    former = json.loads(raw)                       # cda in the middle, as before: read the slow way
    former = {"cda": former.pop("cda"), **former}
    assert DocumentJob.from_json(json.dumps(former).encode()) == big
    assert DocumentJob.from_json(raw.decode()) == big
