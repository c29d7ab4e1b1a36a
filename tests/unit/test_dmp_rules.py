"""When a document may go to the DMP: qualified INS of an accepted kind, no objection, a DMP to feed;
and the patient's DMP consent as PAM-FR's ZFA segment carries it."""

from __future__ import annotations

import json
from dataclasses import replace

import hl7
import pytest

from router.dmp_rules import deposit_refusal, describe, read_consent, read_zfa
from router.hl7.msh import iter_segments
from router.model import DmpConsent, DocumentJob
from channels.testing.adt_messages import make_adt, zfa
from channels.testing.cda import make_job
from tests.support.fixtures import require_fixture

STATUSES, KINDS = ("QUAL", "VALI"), ("production", "test")
OPPOSITION = "opposition: the patient objects to feeding their DMP (ZFA-9 = IO)"


def job(**changes):
    base = make_job()
    header = replace(base.header, ins="285057512345623", ins_oid="1.2.250.1.213.1.4.10")
    return replace(base, header=header, **{"patient_identity_status": "QUAL", **changes})


@pytest.mark.parametrize("changes, header, reason", [
    ({}, {}, ""),
    (dict(patient_identity_status="VALI"), {}, ""),
    (dict(patient_identity_status="PROV"), {}, "identity status PROV in PID-32 is not qualified (needs QUAL or VALI)"),
    ({}, dict(ins="", ins_oid=""), "no INS in the document: no DMP deposit without the patient's INS"),
    ({}, dict(ins_oid="1.2.250.1.213.1.4.9"), "INS of kind nia (OID 1.2.250.1.213.1.4.9) is not deposited "
                                              "(accepted: production, test)"),
    (dict(dmp_opposition=True), {}, "the patient objects to sharing (PD1-12 = Y)"),
    (dict(dmp_consent=DmpConsent(status="FERME")), {}, "the patient's DMP is ferme (ZFA-1)"),
    (dict(dmp_consent=DmpConsent(status="ACTIF")), {}, ""),
    (dict(dmp_consent=DmpConsent(status="ACTIF", feeding="IO")), {}, OPPOSITION),
    (dict(dmp_consent=DmpConsent(status="ACTIF", feeding="INO")), {}, ""),
    (dict(dmp_consent=DmpConsent(status="ACTIF", feeding="NA")), {}, ""),
    (dict(dmp_consent=DmpConsent(status="ACTIF", feeding="INO", consultation="INC")), {}, ""),
])
def test_preconditions_give_their_reason(changes, header, reason):
    candidate = job(**changes)
    if header:
        candidate = replace(candidate, header=replace(candidate.header, **header))
    assert deposit_refusal(candidate, statuses=STATUSES, ins_kinds=KINDS) == reason


def test_the_patients_stored_consent_applies_when_the_message_carries_no_zfa():
    stored = DmpConsent(status="ACTIF", feeding="IO")
    assert deposit_refusal(job(), statuses=STATUSES, ins_kinds=KINDS, consent=stored) == OPPOSITION
    assert deposit_refusal(job(), statuses=STATUSES, ins_kinds=KINDS,
                           consent=DmpConsent(status="INEXISTANT")) == "the patient's DMP is inexistant (ZFA-1)"


def test_the_messages_own_zfa_wins_over_the_stored_consent():
    own = job(dmp_consent=DmpConsent(status="ACTIF", feeding="INO"))
    assert deposit_refusal(own, statuses=STATUSES, ins_kinds=KINDS, consent=DmpConsent(feeding="IO")) == ""
    objecting = job(dmp_consent=DmpConsent(status="ACTIF", feeding="IO"))
    assert deposit_refusal(objecting, statuses=STATUSES, ins_kinds=KINDS,
                           consent=DmpConsent(feeding="INO")) == OPPOSITION


def test_every_zfa_field_is_read_in_its_place():
    segment = next(iter_segments("ZFA|actif|20240301|20240302|y|20240304|n|y|20240308|io|20240310|inc|20240312"))
    assert read_zfa(segment) == DmpConsent(
        status="ACTIF", status_date="20240301", closed_date="20240302", access_authorised="Y",
        access_authorised_date="20240304", break_glass_opposition="N", regulation_opposition="Y",
        oppositions_date="20240308", feeding="IO", feeding_date="20240310", consultation="INC",
        consultation_date="20240312")


def test_the_ans_admission_sample_puts_feeding_in_zfa_9_and_consultation_in_zfa_11():
    sample = require_fixture("hl7v2-ans", "SGL", "admission.er7").read_text(encoding="utf-8")
    line = next(line for line in sample.replace("\n", "\r").split("\r") if line.startswith("ZFA"))
    consent = read_zfa(next(iter_segments(line)))
    assert (consent.status, consent.status_date) == ("ACTIF", "20240306111154")
    assert (consent.feeding, consent.feeding_date) == ("INO", "20240306111154")
    assert (consent.consultation, consent.consultation_date) == ("IC", "20240306111154")
    assert consent.closed_date == consent.access_authorised == consent.oppositions_date == ""


def test_a_message_without_zfa_has_no_consent():
    assert read_consent(iter_segments(make_adt("A01", medecin_traitant_in="PD1"))) == (None, False)


def test_not_collected_is_read_as_such():
    consent, _ = read_consent(iter_segments(make_adt("A01", zfa=zfa(feeding="NA", consultation="NA"))))
    assert (consent.feeding, consent.consultation, consent.feeding_objected) == ("NA", "NA", False)


def test_consent_is_read_from_zfa_and_pd1():
    text = make_adt("A01", medecin_traitant_in="PD1")
    text = text.replace("\rPD1||||", "\rZFA|FERME|20240306111154|||||||INO|20240306111154|IC|20240306111154\rPD1||||")
    pd1 = next(line for line in text.split("\r") if line.startswith("PD1"))
    fields = pd1.split("|") + [""] * 12
    fields[12] = "Y"
    text = text.replace(pd1, "|".join(fields[:13]))
    consent, opposed = read_consent(iter_segments(text))
    assert (consent.status, consent.feeding, consent.consultation, opposed) == ("FERME", "INO", "IC", True)


def test_the_full_parse_reads_the_same_zfa_as_the_door():
    text = make_adt("A01", zfa="ZFA|ACTIF|20240310|||||||IO|20240311|INC|20240312")
    assert read_consent(hl7.parse(text)) == read_consent(iter_segments(text))


def test_the_first_zfa_of_a_message_is_its_consent():
    text = make_adt("A01", zfa=zfa(feeding="IO")) + zfa(feeding="INO") + "\r"
    assert read_consent(iter_segments(text))[0].feeding == "IO"


def test_a_job_keeps_its_consent_over_the_bus():
    original = job(dmp_consent=DmpConsent(status="ACTIF", status_date="20240310", feeding="IO", consultation="INC"))
    assert DocumentJob.from_json(original.to_json()) == original


def test_a_job_queued_before_zfa_was_kept_whole_still_reads_its_dmp_status():
    data = json.loads(job().to_json())
    del data["dmp_consent"]
    data["dmp_status"] = "FERME"
    assert DocumentJob.from_json(json.dumps(data)).dmp_consent == DmpConsent(status="FERME")


def test_the_journal_reads_the_consent_in_words():
    text = describe(DmpConsent(status="ACTIF", status_date="20240310", feeding="IO", feeding_date="20240311",
                               consultation="INC"))
    assert text == ("DMP status ACTIF (20240310); feeding ZFA-9 IO (objection, 20240311); "
                    "consultation ZFA-11 INC (consent refused)")
    assert describe(DmpConsent()) == "DMP status -; feeding ZFA-9 not given; consultation ZFA-11 not given"
