"""When a document may go to the DMP: qualified INS of an accepted kind, no objection, a DMP to feed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from router.dmp_rules import deposit_refusal, read_consent
from router.hl7.msh import iter_segments
from channels.testing.adt_messages import make_adt
from channels.testing.cda import make_job

STATUSES, KINDS = ("QUAL", "VALI"), ("production", "test")


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
    (dict(dmp_status="FERME"), {}, "the patient's DMP is ferme (ZFA-1)"),
    (dict(dmp_status="ACTIF"), {}, ""),
])
def test_preconditions_give_their_reason(changes, header, reason):
    candidate = job(**changes)
    if header:
        candidate = replace(candidate, header=replace(candidate.header, **header))
    assert deposit_refusal(candidate, statuses=STATUSES, ins_kinds=KINDS) == reason


def test_consent_is_read_from_zfa_and_pd1():
    text = make_adt("A01", medecin_traitant_in="PD1")
    assert read_consent(iter_segments(text)) == ("", False)
    text = text.replace("\rPD1||||", "\rZFA|FERME|20240306111154|||||||INO|20240306111154|IC|20240306111154\rPD1||||")
    pd1 = next(line for line in text.split("\r") if line.startswith("PD1"))
    fields = pd1.split("|") + [""] * 12
    fields[12] = "Y"
    text = text.replace(pd1, "|".join(fields[:13]))
    assert read_consent(iter_segments(text)) == ("FERME", True)
