"""ADT (PAM-FR) events read into stay facts: triggers, ZBE, doctors, médecin traitant, discharge."""

from dataclasses import replace

import hl7
import pytest

from router.adt import read_adt
from router.errors import UnsupportedMessageError, ValidationError
from router.model import DmpConsent, Participant
from channels.testing.adt_messages import (
    CORSICA_2A, DR_BADKEY, DR_DURAND, DR_LEFEVRE, DR_LOCAL, DR_MARTIN, NIA, NO_INS, PATIENT,
    WRONG_KEY_INS, make_adt, zfa,
)
from tests.support.fixtures import require_fixture


def sgl(name: str) -> str:
    return require_fixture("hl7v2-ans", "SGL", name).read_text(encoding="utf-8")


# --- triggers --------------------------------------------------------------------

@pytest.mark.parametrize(("trigger", "kind", "action"), [
    ("A01", "admission", "INSERT"),
    ("A04", "admission", "INSERT"),
    ("A03", "discharge", "INSERT"),
    ("A11", "cancel_admission", "CANCEL"),
    ("A13", "cancel_discharge", "CANCEL"),
])
def test_movement_triggers_are_read_with_their_zbe(trigger, kind, action):
    event = read_adt(make_adt(trigger, control_id=f"C-{trigger}"))
    assert (event.trigger, event.kind, event.control_id) == (trigger, kind, f"C-{trigger}")
    assert event.movement is not None
    assert (event.movement.id, event.movement.action) == ("MVT0001", action)
    assert (event.movement.medical_unit, event.movement.medical_unit_name) == ("2101", "Cardiologie")
    assert event.movement.nature == "HMS"


@pytest.mark.parametrize(("trigger", "original"), [("A11", "A01"), ("A13", "A03")])
def test_cancel_names_the_cancelled_trigger(trigger, original):
    assert read_adt(make_adt(trigger)).movement.original_trigger == original


def test_a08_update_has_no_movement():
    event = read_adt(make_adt("A08"))
    assert event.kind == "update"
    assert event.movement is None
    assert event.warnings == ()


@pytest.mark.parametrize("trigger", ["A28", "A31"])
def test_patient_updates_need_no_visit(trigger):
    event = read_adt(make_adt(trigger, replace={"PV1": None}))
    assert (event.kind, event.ipp, event.encounter, event.movement) == ("patient", PATIENT.ipp, "", None)
    assert read_adt(make_adt(trigger)).kind == "patient"          # with the pseudo-visit PV1|1|N


@pytest.mark.parametrize("trigger", ["A02", "A05", "A40"])
def test_other_adt_triggers_are_unsupported(trigger):
    with pytest.raises(UnsupportedMessageError, match=trigger):
        read_adt(make_adt("A01").replace("ADT^A01^ADT_A01", f"ADT^{trigger}^ADT_A01"))


def test_non_adt_message_is_unsupported():
    with pytest.raises(UnsupportedMessageError, match="ORU"):
        read_adt(make_adt("A01").replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01"))


# --- patient and stay ------------------------------------------------------------

def test_admission_reads_identity_and_stay():
    event = read_adt(make_adt("A01"))
    assert (event.ipp, event.ipp_authority) == ("IPP004711", "1.2.250.1.999.1.1")
    assert event.ins.matricule == PATIENT.ins and event.ins.qualified
    assert (event.family, event.given) == ("TESTLIAISON", "Hélène")
    assert event.encounter == "V2024000123"
    assert (event.patient_class, event.unit, event.unit_facility) == ("I", "CARDIO", "CHU-TEST")
    assert event.admit_time == "20240310083000"
    assert event.discharge_time == ""


def test_doctors_are_participants_with_idnat_ps():
    event = read_adt(make_adt("A01", admitting=DR_DURAND))
    assert event.attending == Participant(identifier="810000023084", family="MARTIN", given="Sophie")
    # a raw RPPS (XCN.13 = RPPS) becomes 8+RPPS
    assert event.referring == Participant(identifier="801234567897", family="LEFÈVRE", given="Étienne")
    assert event.admitting.identifier == "812345678903"


def test_local_doctor_id_is_kept_as_sent():
    event = read_adt(make_adt("A01", attending=DR_LOCAL))
    assert event.attending.identifier == "MED0042"
    assert event.warnings == ()


def test_rpps_with_bad_luhn_key_is_a_warning_not_a_rejection():
    event = read_adt(make_adt("A01", attending=DR_BADKEY))
    assert event.attending.identifier == "812345678901"
    assert event.warnings == ("PV1-7: RPPS check digit (Luhn) does not match",)


def test_missing_optional_data_reads_as_empty():
    event = read_adt(make_adt("A03", attending=None, referring=None, admitting=None,
                              medecin_traitant=None, disposition="", destination="",
                              patient=NO_INS, admit_time=""))
    assert event.attending is None and event.referring is None and event.admitting is None
    assert event.medecin_traitant is None
    assert event.ins is None
    assert (event.discharge_disposition, event.discharge_destination, event.admit_time) == ("", "", "")
    assert event.discharge_time == "20240315141500"


@pytest.mark.parametrize(("disposition", "destination"), [
    ("8", ""),                  # home
    ("7", "999000025"),         # definitive transfer, destination FINESS
    ("6", "999000033"),         # mutation
    ("9", ""),                  # death
])
def test_discharge_reads_disposition_and_destination(disposition, destination):
    event = read_adt(make_adt("A03", disposition=disposition, destination=destination))
    assert event.kind == "discharge"
    assert event.discharge_disposition == disposition
    assert event.discharge_destination == destination
    assert event.discharge_time == "20240315141500"


def test_medecin_traitant_from_rol_odrp():
    event = read_adt(make_adt("A03", medecin_traitant=DR_LEFEVRE, medecin_traitant_in="ROL"))
    assert event.medecin_traitant == Participant(identifier="801234567897", family="LEFÈVRE",
                                                 given="Étienne")


def test_medecin_traitant_from_pd1_4():
    event = read_adt(make_adt("A03", medecin_traitant=DR_DURAND, medecin_traitant_in="PD1"))
    assert event.medecin_traitant.identifier == "812345678903"


def test_rol_odrp_wins_over_pd1_4():
    text = make_adt("A03", medecin_traitant=DR_LEFEVRE, medecin_traitant_in="ROL")
    text = text.replace("\rPV1|", "\rPD1||||81234567890^DURAND^Chloé^^^^^^ASIP-SANTE-PS&"
                                  "1.2.250.1.71.4.2.1&ISO^D^^^IDNPS\rPV1|")
    assert read_adt(text).medecin_traitant.family == "LEFÈVRE"


def test_rol_with_another_role_is_not_the_medecin_traitant():
    text = make_adt("A03", medecin_traitant=DR_MARTIN).replace("ROL||UC|ODRP^", "ROL||UC|RP^")
    assert read_adt(text).medecin_traitant is None


def test_corsican_and_nia_patients_are_read():
    assert read_adt(make_adt("A01", patient=CORSICA_2A)).ins.birthplace_cog == "2A004"
    assert read_adt(make_adt("A01", patient=NIA)).ins.kind == "nia"


def test_vali_with_zfd_insi_is_qualified():
    patient = replace(PATIENT, reliability="VALI")
    assert not read_adt(make_adt("A01", patient=patient)).ins.qualified
    assert read_adt(make_adt("A01", patient=patient, insi=True)).ins.qualified


# --- errors ----------------------------------------------------------------------

def test_bad_ins_key_rejects_without_quoting_it():
    with pytest.raises(ValidationError) as caught:
        read_adt(make_adt("A01", patient=replace(PATIENT, ins=WRONG_KEY_INS)))
    assert "INS key" in caught.value.reason
    assert WRONG_KEY_INS not in str(caught.value)


def test_missing_pid_is_an_error():
    with pytest.raises(ValidationError, match="no PID segment"):
        read_adt(make_adt("A01", replace={"PID": None}))


def test_missing_pv1_is_an_error():
    with pytest.raises(ValidationError, match="no PV1 segment"):
        read_adt(make_adt("A03", replace={"PV1": None}))


# --- ZBE -------------------------------------------------------------------------

def test_shifted_zbe_is_read_one_field_late_with_a_warning():
    event = read_adt(make_adt("A03", zbe_shifted=True))
    movement = event.movement
    assert movement.shifted
    assert (movement.action, movement.historic, movement.medical_unit, movement.nature) == (
        "INSERT", "N", "2101", "HMS")
    assert any("ZBE-5" in w for w in event.warnings)


def test_zbe_without_action_is_a_warning():
    event = read_adt(make_adt("A01", zbe_action="MOVE"))
    assert event.movement.action == ""
    assert event.warnings == ("ZBE-4: no INSERT/UPDATE/CANCEL action",)


# --- input forms -----------------------------------------------------------------

def test_python_hl7_message_and_lf_separators_are_accepted():
    text = make_adt("A03")
    expected = read_adt(text)
    assert read_adt(hl7.parse(text)) == expected
    assert read_adt(text.replace("\r", "\n")) == expected


# --- DMP consent (ZFA) -----------------------------------------------------------

@pytest.mark.parametrize("trigger", ["A01", "A04", "A08", "A28", "A31", "A03"])
def test_every_adt_keeps_its_zfa_whole(trigger):
    event = read_adt(make_adt(trigger, zfa="ZFA|ACTIF|20240310|||||||IO|20240311|INC|20240312"))
    assert event.dmp_consent == DmpConsent(status="ACTIF", status_date="20240310", feeding="IO",
                                           feeding_date="20240311", consultation="INC",
                                           consultation_date="20240312")


def test_an_adt_without_zfa_has_no_consent():
    assert read_adt(make_adt("A01")).dmp_consent is None


def test_the_consent_stays_out_of_the_event_repr():
    assert "INC" not in repr(read_adt(make_adt("A31", zfa=zfa(consultation="INC"))))


# --- ANS samples -----------------------------------------------------------------

def test_ans_admission_sample():
    event = read_adt(sgl("admission.er7"))
    assert (event.trigger, event.kind, event.ipp) == ("A01", "admission", "000003")
    assert event.ins.kind == "test" and event.ins.reliability == "VALI"
    assert event.ins.birthplace_cog == "63220" and event.ins.traits_complete
    assert event.encounter == "24000006"
    assert event.movement.action == "INSERT" and event.movement.medical_unit == "6268"
    assert not event.movement.shifted and event.warnings == ()
    assert (event.dmp_consent.status, event.dmp_consent.feeding, event.dmp_consent.consultation) == \
        ("ACTIF", "INO", "IC")


def test_ans_discharge_sample_with_shifted_zbe():
    event = read_adt(sgl("sortie.er7"))
    assert (event.trigger, event.kind) == ("A03", "discharge")
    assert event.movement.shifted
    assert (event.movement.id, event.movement.action) == ("002", "INSERT")
    assert (event.movement.medical_unit, event.movement.medical_unit_name) == ("8782", "Urgences")
    assert event.movement.nature == "HMS"


def test_event_repr_keeps_patient_data_out():
    shown = repr(read_adt(make_adt("A03")))
    assert PATIENT.ins not in shown and "TESTLIAISON" not in shown and "Hélène" not in shown
    assert "IPP004711" in shown           # the IPP is an identifier the audit needs
