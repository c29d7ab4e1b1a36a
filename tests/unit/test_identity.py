"""INS key (with Corsica), RPPS Luhn, IdNat_PS and INS reading from PID."""

from dataclasses import replace

import hl7
import pytest

from router.errors import ValidationError
from router.hl7.msh import first_segment
from router.identity import idnat_ps, nir_key, nir_key_ok, read_ins, rpps_ok
from channels.testing.adt_messages import (
    CORSICA_2A, CORSICA_2B, INS_DEMO_OID, INS_PROD_OID, NIA, NO_INS, PATIENT, PROVISIONAL,
    WRONG_KEY_INS, AdtPatient, make_adt,
)


def pid_of(patient: AdtPatient = PATIENT, **kwargs):
    return first_segment(make_adt("A01", patient=patient, **kwargs), "PID")


# --- NIR key --------------------------------------------------------------------

@pytest.mark.parametrize("nir", ["285057512345623", "279035121518989", "191059912345604"])
def test_valid_nir_keys_pass(nir):
    assert nir_key_ok(nir)


def test_key_is_97_minus_number_mod_97():
    assert nir_key("2850575123456") == 97 - 2850575123456 % 97 == 23


def test_corsica_2a_counts_as_19():
    # 2A: letter as 0, minus 1 000 000 — the same number as writing 19
    expected = 97 - (1850320004012 - 1_000_000) % 97
    assert nir_key("185032A004012") == expected
    assert nir_key_ok(f"185032A004012{expected:02d}")
    assert nir_key_ok(CORSICA_2A.ins)


def test_corsica_2b_counts_as_18():
    expected = 97 - (2921120033045 - 2_000_000) % 97
    assert nir_key("292112B033045") == expected
    assert nir_key_ok(f"292112B033045{expected:02d}")
    assert nir_key_ok(CORSICA_2B.ins)


def test_corsica_key_computed_with_a_plain_zero_is_rejected():
    naive = 97 - 1850320004012 % 97
    assert naive != nir_key("185032A004012")
    assert not nir_key_ok(f"185032A004012{naive:02d}")


@pytest.mark.parametrize("nir", [
    WRONG_KEY_INS,
    "28505751234562",         # 14 characters
    "2850575123456234",       # 16 characters
    "2850575X2345623",        # a letter outside the department
    "285052C12345623",        # 2C is not a department
    "2850575123456AB",        # key not digits
    "",
])
def test_invalid_nirs_fail(nir):
    assert not nir_key_ok(nir)


# --- RPPS ------------------------------------------------------------------------

@pytest.mark.parametrize("rpps", ["10000023084", "01234567897", "12345678903"])
def test_rpps_with_luhn_key_passes(rpps):
    assert rpps_ok(rpps)


@pytest.mark.parametrize("rpps", ["12345678901", "10000023085", "1000002308", "1000002308A", ""])
def test_rpps_without_luhn_key_fails(rpps):
    assert not rpps_ok(rpps)


@pytest.mark.parametrize(("xcn_id", "type_code", "expected"), [
    ("801234567897", "IDNPS", "801234567897"),
    ("01234567897", "RPPS", "801234567897"),
    ("01234567897", "", "801234567897"),
    ("123456789", "ADELI", "0123456789"),
    (" MED0042 ", "EI", "MED0042"),
])
def test_idnat_ps_normalises_to_8_plus_rpps(xcn_id, type_code, expected):
    assert idnat_ps(xcn_id, type_code) == expected


# --- read_ins --------------------------------------------------------------------

def test_read_ins_reads_matricule_oid_and_traits():
    ins = read_ins(pid_of())
    assert ins is not None
    assert (ins.matricule, ins.kind) == (PATIENT.ins, "test")
    assert ins.birth_name == "TESTLIAISON"
    assert ins.first_given == "Hélène"
    assert ins.given_names == "Hélène Marie Josée"
    assert (ins.birth_date, ins.sex) == ("19850512", "F")
    assert (ins.birthplace_cog, ins.birthplace_city) == ("75056", "Paris")
    assert ins.traits_complete


@pytest.mark.parametrize(("patient", "kind"), [
    (PATIENT, "test"),
    (NIA, "nia"),
    (replace(PATIENT, ins_oid=INS_PROD_OID), "production"),
    (replace(PATIENT, ins_oid=INS_DEMO_OID), "demo"),
    (CORSICA_2A, "test"),
    (CORSICA_2B, "test"),
])
def test_ins_kind_follows_the_oid(patient, kind):
    ins = read_ins(pid_of(patient))
    assert ins is not None and ins.kind == kind and ins.matricule == patient.ins


def test_qual_is_qualified_and_prov_is_not():
    assert read_ins(pid_of(PATIENT)).qualified
    provisional = read_ins(pid_of(PROVISIONAL))
    assert provisional.reliability == "PROV" and not provisional.qualified


def test_vali_is_qualified_only_when_the_ins_came_from_insi():
    pid = pid_of(replace(PATIENT, reliability="VALI"))
    assert not read_ins(pid).qualified
    assert read_ins(pid, insi=True).qualified
    assert not read_ins(pid_of(replace(PATIENT, reliability="RECUP")), insi=True).qualified


def test_pid32_attributes_are_kept_apart_from_the_status():
    ins = read_ins(pid_of(replace(PATIENT, reliability="DOUT~QUAL~HOMA")))
    assert ins.reliability == "QUAL"
    assert ins.attributes == ("DOUT", "HOMA")


def test_birth_name_is_the_type_l_repetition():
    text = make_adt("A01").replace(
        "|TESTLIAISON^Hélène^Hélène Marie Josée^^^^L|",
        "|MARIÉE^Hélène^^^^^D~TESTLIAISON^Hélène^Hélène Marie Josée^^^^L|")
    ins = read_ins(first_segment(text, "PID"))
    assert ins.birth_name == "TESTLIAISON"


def test_missing_traits_are_reported_incomplete():
    ins = read_ins(pid_of(replace(PATIENT, birthplace_cog="", birthplace_city="", all_given="")))
    assert ins.given_names == "Hélène"          # the first given name alone
    assert ins.birthplace_cog == ""
    assert not ins.traits_complete


def test_no_ins_gives_none():
    assert read_ins(pid_of(NO_INS)) is None


def test_wrong_key_raises_without_quoting_the_ins():
    with pytest.raises(ValidationError) as caught:
        read_ins(pid_of(replace(PATIENT, ins=WRONG_KEY_INS)))
    assert "key" in caught.value.reason
    assert WRONG_KEY_INS not in str(caught.value)
    assert WRONG_KEY_INS[:13] not in str(caught.value)


def test_unknown_ins_oid_raises():
    with pytest.raises(ValidationError, match="unknown OID"):
        read_ins(pid_of(replace(PATIENT, ins_oid="1.2.250.1.213.1.4.99")))


def test_ins_c_oid_raises():
    with pytest.raises(ValidationError, match="INS-C"):
        read_ins(pid_of(replace(PATIENT, ins_oid="1.2.250.1.213.1.4.2")))


def test_short_matricule_raises_without_quoting_it():
    with pytest.raises(ValidationError, match="15 characters") as caught:
        read_ins(pid_of(replace(PATIENT, ins="28505751234")))
    assert "28505751234" not in str(caught.value)


def test_read_ins_works_on_a_python_hl7_segment():
    message = hl7.parse(make_adt("A01", patient=CORSICA_2B))
    ins = read_ins(message.segment("PID"))
    assert ins.matricule == CORSICA_2B.ins
    assert ins.first_given == "Marie-Ève"
    assert ins.birthplace_cog == "2B033"


def test_repr_keeps_patient_data_out():
    ins = read_ins(pid_of())
    shown = repr(ins)
    assert PATIENT.ins not in shown and "TESTLIAISON" not in shown and "19850512" not in shown


def test_escaped_names_are_resolved():
    ins = read_ins(pid_of(replace(PATIENT, family="DUPONT\\T\\FILS", all_given="Anne\\S\\Lise")))
    assert (ins.birth_name, ins.given_names) == ("DUPONT&FILS", "Anne^Lise")
