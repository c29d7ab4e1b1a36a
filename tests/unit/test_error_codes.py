"""Content rules are answered with HL7 table 0357 codes and the field at fault (ERR-2), never 207.

207 "Application internal error" is kept for our own faults; a message that breaks a rule gets
101 (a required field is missing), 102 (a field's data break its rules) or 103 (a value outside
its table, or not allowed with the others), and ERR-2 says where, as an ERL written with ``^``.
"""

from __future__ import annotations

import hl7
import pytest

from router.errors import EngineError, ValidationError
from router.hl7.msh import iter_segments
from router.model import CdaHeader, MessageSource
from router.pfi import check_routing, read_pfi
from channels.testing.messages import (
    DOC_ROOT, DR_MARTIN, IPP_OID, PATIENT, Rct, make_cda, make_pfi_mdm, make_pfi_oru, patient_rct,
)

CDA = make_cda()
SOURCE = MessageSource("LABO-TEST", "LABO", "LIAISON", "HOPITAL-TEST", "MSG0001", "ORU^R01")


def header(parent: str = "") -> CdaHeader:
    return CdaHeader(document_id=f"{DOC_ROOT}^DOC-0001", patient_ids=((IPP_OID, PATIENT.ipp),
                                                                      (PATIENT.ins_oid, PATIENT.ins)),
                     ins=PATIENT.ins, ins_oid=PATIENT.ins_oid, parent_document_id=parent)


def refused(text: str, parent: str = "") -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        read_pfi(hl7.parse(text), message_key="k", source=SOURCE, cda_reader=lambda _: header(parent))
    return caught.value


def obx_sequence(text: str, code: str) -> int:
    """The sequence (1 = first OBX) of the OBX whose OBX-3.1 is ``code``."""
    rows = [s for s in text.split("\r") if s.startswith("OBX|")]
    return next(n for n, row in enumerate(rows, 1) if row.split("|")[3].split("^")[0] == code)


def prt_count(text: str) -> int:
    return sum(1 for s in text.split("\r") if s.startswith("PRT|"))


def test_a_validation_error_is_the_senders_fault_not_ours():
    assert ValidationError("x").hl7_code == "102" and EngineError("x").hl7_code == "207"
    assert ValidationError("x").hl7_location == ""
    assert ValidationError("x", hl7_location="PID^1^3").hl7_location == "PID^1^3"


def test_forbidden_flag_combination_is_103_at_the_row_that_forbids():
    text = make_pfi_oru(CDA, recipients=[DR_MARTIN, patient_rct()],
                        flags={"DESTMSSANTEPAT": "Y", "INVISIBLE_PATIENT": "Y"})
    error = refused(text)
    assert (error.hl7_code, error.hl7_text) == ("103", "Table value not found")
    assert error.hl7_location == f"OBX^{obx_sequence(text, 'INVISIBLE_PATIENT')}^5"


def test_destination_without_its_recipient_is_101_at_the_missing_prt_15_4():
    text = make_pfi_oru(CDA, recipients=())
    error = refused(text)
    assert (error.hl7_code, error.hl7_text) == ("101", "Required field missing")
    assert error.hl7_location == f"PRT^{prt_count(text) + 1}^15^1^4"      # after the sender's PRT SB


def test_recipient_not_asked_for_is_103_at_its_flag():
    text = make_pfi_oru(CDA, recipients=[DR_MARTIN, patient_rct()])       # DESTMSSANTEPAT=N
    error = refused(text)
    assert error.hl7_code == "103"
    assert error.hl7_location == f"OBX^{obx_sequence(text, 'DESTMSSANTEPAT')}^5"


def test_recipient_without_address_is_101_at_its_prt_15_4():
    text = make_pfi_oru(CDA, recipients=[DR_MARTIN, Rct("", "810000123454")])
    error = refused(text)
    assert (error.hl7_code, error.hl7_location) == ("101", f"PRT^{prt_count(text)}^15^1^4")


def test_flag_that_is_not_y_or_n_is_103_at_its_obx_5():
    text = make_pfi_oru(CDA, flags={"MASQUE_PS": "O"})
    error = refused(text)
    assert (error.hl7_code, error.hl7_location) == ("103", f"OBX^{obx_sequence(text, 'MASQUE_PS')}^5")


def test_orc1_contradicting_obx11_is_103_at_orc_1():
    error = refused(make_pfi_oru(CDA, action="F", orc_control="CA"))
    assert (error.hl7_code, error.hl7_location) == ("103", "ORC^1^1")


def test_mdm_trigger_contradicting_obx11_is_103_at_the_trigger():
    error = refused(make_pfi_mdm(CDA, message_type="MDM^T10^MDM_T02", replace={"ORC": None}),
                    parent=f"{DOC_ROOT}^DOC-0000")
    assert (error.hl7_code, error.hl7_location) == ("103", "MSH^1^9^1^2")


def test_replace_without_the_parent_document_is_101():
    assert refused(make_pfi_oru(CDA, action="C")).hl7_code == "101"


def test_the_door_names_the_same_field_as_the_worker():
    """The door runs the routing check on its lazy segments: same code, same ERR-2."""
    text = make_pfi_oru(CDA, recipients=[DR_MARTIN, patient_rct()],
                        flags={"DESTMSSANTEPAT": "Y", "INVISIBLE_PATIENT": "Y"})
    errors = []
    for message in (hl7.parse(text), list(iter_segments(text))):
        with pytest.raises(ValidationError) as caught:
            check_routing(message)
        errors.append((caught.value.hl7_code, caught.value.hl7_location))
    assert errors[0] == errors[1] == ("103", f"OBX^{obx_sequence(text, 'INVISIBLE_PATIENT')}^5")
