"""MetaDMPMSS flags: reading the OBX rows and the IG's allowed combinations."""

from __future__ import annotations

import re
from dataclasses import replace

import hl7
import pytest
from structlog.testing import capture_logs

from router.errors import ValidationError
from router.flags import RULES, check_combination, read_flags
from router.model import Flags
from tests.support.fixtures import require_fixture
from channels.testing.messages import make_cda, make_pfi_mdm, make_pfi_oru
from tests.support.fixtures import ans_sample

CDA = make_cda()
SEGMENT_START = re.compile(r"^[A-Z][A-Z0-9]{2}\|")


def flags_of(text: str) -> Flags:
    return read_flags(hl7.parse(text))


def ans_message(*parts: str) -> hl7.Message:
    return hl7.parse(ans_sample(*parts))


def ig_example(index: int) -> hl7.Message:
    """One OBX/PRT extract of the IG's exemples.md, unwrapped, behind a test MSH."""
    text = require_fixture("ig-extracts", "OBX_PRT_examples__from_input_pagecontent_exemples.md.txt")
    block = [b for b in text.read_text(encoding="utf-8").split("----") if b.strip()][index]
    segments: list[str] = []
    for line in block.strip("\n").split("\n"):
        if SEGMENT_START.match(line) or not segments:
            segments.append(line)
        else:
            segments[-1] += line            # a segment the markdown wrapped
    msh = "MSH|^~\\&|HIS|H|PFI|H|20240101||ORU^R01^ORU_R01|1|P|2.5|||||FRA|UNICODE UTF-8"
    return hl7.parse("\r".join([msh, *segments]))


# --- reading ------------------------------------------------------------------------

def test_builder_defaults_read_as_ps_mail_only():
    flags = flags_of(make_pfi_oru(CDA))
    assert flags == Flags(dest_mss_ps=True, ack_reception=True)


def test_every_yes_no_row_maps_to_its_flag():
    codes = {"MASQUE_PS": "masque_ps", "INVISIBLE_PATIENT": "invisible_patient",
             "INVISIBLE_REP_LEGAUX": "invisible_rep_legaux", "CONNEXION_SECRETE": "connexion_secrete",
             "MODIF_CONF_CODE": "modif_conf_code", "DESTDMP": "dest_dmp",
             "DESTMSSANTEPS": "dest_mss_ps", "DESTMSSANTEPAT": "dest_mss_patient",
             "ACK_RECEPTION": "ack_reception", "ACK_LECTURE_MSS": "ack_lecture"}
    all_no = {code: "N" for code in codes}
    for code, attribute in codes.items():
        flags = flags_of(make_pfi_oru(CDA, flags={**all_no, code: "Y"}))
        assert {name for name, on in vars(flags).items() if on is True} == {attribute}, code


def test_values_with_spaces_and_lower_case_are_read():
    flags = flags_of(make_pfi_oru(CDA, flags={"DESTDMP": " y ", "DESTMSSANTEPS": "N "}))
    assert flags.dest_dmp and not flags.dest_mss_ps


def test_unknown_value_is_refused_naming_the_row():
    with pytest.raises(ValidationError, match="MASQUE_PS.*'O'") as caught:
        flags_of(make_pfi_oru(CDA, flags={"MASQUE_PS": "O"}))
    assert caught.value.hl7_code == "103"


def test_empty_value_is_refused():
    with pytest.raises(ValidationError, match="DESTDMP"):
        flags_of(make_pfi_oru(CDA, flags={"DESTDMP": ""}))


def test_missing_required_rows_are_refused_and_listed():
    with pytest.raises(ValidationError, match="missing MetaDMPMSS rows") as caught:
        flags_of(make_pfi_oru(CDA, flags={"INVISIBLE_PATIENT": None, "DESTDMP": None}))
    assert caught.value.details == ["INVISIBLE_PATIENT", "DESTDMP"]
    assert caught.value.hl7_code == "100"


def test_optional_ack_rows_default_to_no():
    flags = flags_of(make_pfi_oru(CDA, flags={"ACK_RECEPTION": None, "ACK_LECTURE_MSS": None}))
    assert not flags.ack_reception and not flags.ack_lecture


def test_ack_lecture_spelling_of_the_ig_examples_is_accepted():
    flags = flags_of(make_pfi_oru(CDA, flags={"ACK_LECTURE_MSS": None, "ACK_LECTURE": "Y"}))
    assert flags.ack_lecture


def test_a_row_given_twice_with_different_values_is_refused():
    text = make_pfi_oru(CDA, extra_segments=[
        "OBX|20|CE|DESTDMP^Destinataire DMP^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F|"])
    with pytest.raises(ValidationError, match="DESTDMP is given twice"):
        flags_of(text)


def test_unknown_metadmpmss_code_is_logged_and_ignored():
    text = make_pfi_oru(CDA, extra_segments=["OBX|20|CE|NOUVEAU^Futur^MetaDMPMSS||Y^^x||||||F|"])
    with capture_logs() as logs:
        flags = flags_of(text)
    assert flags == flags_of(make_pfi_oru(CDA))
    assert {"event": "pfi.flags.unknown_code", "code": "NOUVEAU", "log_level": "warning"} in logs


def test_mail_bodies_are_decoded_with_accents():
    text = make_pfi_oru(CDA, body_ps="Chère consœur, voilà le compte rendu — merci.",
                        body_patient="Bonjour, votre résultat est arrivé.")
    flags = flags_of(text)
    assert flags.body_ps == "Chère consœur, voilà le compte rendu — merci."
    assert flags.body_patient == "Bonjour, votre résultat est arrivé."


def test_latin1_mail_body_falls_back_to_the_msh18_charset():
    text = make_pfi_oru(CDA, charset="8859/1", body_ps="Chère consoeur",
                        body_charset="latin-1")
    assert flags_of(text).body_ps == "Chère consoeur"


def test_unreadable_mail_body_counts_as_absent_and_is_logged():
    text = make_pfi_oru(CDA, extra_segments=[
        "OBX|20|ED|CORPSMAIL_PS^Corps du mail pour un PS^MetaDMPMSS||^TEXT^^Base64^Q2hlcg=x||||||F|"])
    with capture_logs() as logs:
        flags = flags_of(text)
    assert flags.body_ps is None
    assert [e["code"] for e in logs if e["event"] == "pfi.flags.body_unreadable"] == ["CORPSMAIL_PS"]


def test_fin_after_destmssantepat_means_the_patient_may_not_reply():
    assert flags_of(make_pfi_oru(CDA, flags={"DESTMSSANTEPAT": "Y"}, no_reply=True)).patient_no_reply
    assert not flags_of(make_pfi_oru(CDA, flags={"DESTMSSANTEPAT": "Y"})).patient_no_reply


def test_fin_after_another_row_is_not_read_as_no_reply():
    def fin_after_destdmp(segments: list[str]) -> list[str]:
        at = next(i for i, s in enumerate(segments) if "DESTDMP^" in s)
        return segments[:at + 1] + ["NTE|1|||FIN|"] + segments[at + 1:]

    assert not flags_of(make_pfi_oru(CDA, transform=fin_after_destdmp)).patient_no_reply


def test_mdm_cwe_rows_are_read_like_oru_ce_rows():
    assert flags_of(make_pfi_mdm(CDA, flags={"DESTDMP": "Y"})) == flags_of(
        make_pfi_oru(CDA, flags={"DESTDMP": "Y"}))


# --- the ANS samples and the IG's examples ------------------------------------------------

def test_ans_v21_oru_sample_flags():
    message = ans_message("V2.1", "ORU", "Transmission initiale ORU", "message_ORU_CR_Bio_INIT_N1_N3.hl7")
    with capture_logs() as logs:
        flags = read_flags(message)
    assert flags == Flags(dest_dmp=True, dest_mss_ps=True, dest_mss_patient=True,
                          ack_reception=True, ack_lecture=True)
    # its CORPSMAIL_PS base64 is truncated (93 characters): treated as absent, and said so
    assert any(e["event"] == "pfi.flags.body_unreadable" for e in logs)
    check_combination(flags, has_ps_recipients=True, has_patient_recipient=True)


def test_ans_v20_mdm_sample_flags_and_body():
    message = ans_message("V2.0", "MDM", "Transmission initiale MDM", "message_MDM_CR_Radio_INIT_N1.er7")
    flags = read_flags(message)
    assert flags == Flags(invisible_patient=True, invisible_rep_legaux=True, connexion_secrete=True,
                          dest_dmp=True, dest_mss_ps=True,
                          body_ps="Cher confrère, vous trouverez ci-joint le CR d’imagerie de M.Dupont")


def test_ans_v20_mdm_sample_breaks_the_v21_matrix():
    """The V2.0 sample predates regles-gestion-mssante.md: secret + rep. légaux flags with a PS mail."""
    message = ans_message("V2.0", "MDM", "Transmission initiale MDM", "message_MDM_CR_Radio_INIT_N1.er7")
    with pytest.raises(ValidationError) as caught:
        check_combination(read_flags(message), has_ps_recipients=True, has_patient_recipient=False)
    assert [d.split(" ")[0] for d in caught.value.details] == [
        "CONNEXION_SECRETE=Y", "INVISIBLE_REP_LEGAUX=Y"]


def test_ig_example_patient_only_with_fin_and_patient_body():
    flags = read_flags(ig_example(1))
    assert flags.masque_ps and flags.dest_dmp and flags.dest_mss_patient and not flags.dest_mss_ps
    assert flags.patient_no_reply and flags.ack_lecture
    assert flags.body_patient == "Bonjour M.Dupont, ci-joint votre CR d’imagerie."


def test_ig_example_with_ack_lecture_spelling():
    flags = read_flags(ig_example(0))
    assert flags.ack_lecture and flags.ack_reception
    assert flags.body_ps == "Cher confrère, vous trouverez ci-joint le CR d’imagerie de M.Dupont"


def test_ig_example_whose_destdmp_row_lacks_its_coding_system_is_still_read():
    assert read_flags(ig_example(8)).dest_dmp


# --- combinations -------------------------------------------------------------------

ALLOWED = {
    "PS and patient (row 1)": (Flags(dest_mss_ps=True, dest_mss_patient=True, modif_conf_code=True,
                                     dest_dmp=True), True, True),
    "PS only, masked to PS (row 2)": (Flags(masque_ps=True, invisible_patient=True,
                                            dest_mss_ps=True), True, False),
    "PS only, visible to patient (example 2)": (Flags(dest_mss_ps=True, dest_dmp=True), True, False),
    "patient only, hidden from legal reps (row 3)": (Flags(masque_ps=True, invisible_rep_legaux=True,
                                                           dest_mss_patient=True), False, True),
    "patient only with DMP (example 1)": (Flags(dest_dmp=True, dest_mss_patient=True), False, True),
    "DMP only, secret connection": (Flags(dest_dmp=True, connexion_secrete=True,
                                          invisible_patient=True, invisible_rep_legaux=True), False, False),
}


@pytest.mark.parametrize("flags, ps, patient", ALLOWED.values(), ids=ALLOWED.keys())
def test_allowed_combinations_pass(flags, ps, patient):
    check_combination(flags, has_ps_recipients=ps, has_patient_recipient=patient)


FORBIDDEN = {
    "secret connection with PS mail": (Flags(connexion_secrete=True, dest_mss_ps=True), True, False,
                                       "CONNEXION_SECRETE=Y interdit"),
    "secret connection with patient mail": (Flags(connexion_secrete=True, dest_mss_patient=True),
                                            False, True, "CONNEXION_SECRETE=Y interdit"),
    "hidden from patient, mailed to patient": (Flags(invisible_patient=True, dest_mss_patient=True),
                                               False, True, "INVISIBLE_PATIENT=Y interdit DESTMSSANTEPAT=Y"),
    "hidden from legal reps, mailed to PS": (Flags(invisible_rep_legaux=True, dest_mss_ps=True),
                                             True, False, "INVISIBLE_REP_LEGAUX=Y interdit DESTMSSANTEPS=Y"),
    "masked to PS, mailed to PS and patient": (Flags(masque_ps=True, dest_mss_ps=True,
                                                     dest_mss_patient=True), True, True,
                                               "MASQUE_PS=Y interdit"),
    "no destination": (Flags(), False, False, "aucune destination"),
    "PS flag without PS recipient": (Flags(dest_mss_ps=True), False, False,
                                     "DESTMSSANTEPS=Y sans destinataire professionnel"),
    "patient flag without patient recipient": (Flags(dest_mss_patient=True), False, False,
                                               "DESTMSSANTEPAT=Y sans destinataire patient"),
    "PS recipient without PS flag": (Flags(dest_dmp=True), True, False, "avec DESTMSSANTEPS=N"),
    "patient recipient without patient flag": (Flags(dest_mss_ps=True), True, True,
                                               "avec DESTMSSANTEPAT=N"),
}


@pytest.mark.parametrize("flags, ps, patient, reason", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_forbidden_combinations_are_refused_with_their_reason(flags, ps, patient, reason):
    with pytest.raises(ValidationError) as caught:
        check_combination(flags, has_ps_recipients=ps, has_patient_recipient=patient)
    assert [d for d in caught.value.details if reason in d], caught.value.details
    assert reason in caught.value.reason


def test_every_broken_rule_is_reported_at_once():
    flags = Flags(connexion_secrete=True, invisible_patient=True, dest_mss_patient=True)
    with pytest.raises(ValidationError) as caught:
        check_combination(flags, has_ps_recipients=False, has_patient_recipient=True)
    assert len(caught.value.details) == 2


def test_each_matrix_rule_fires_on_its_own():
    """Every rule of RULES is needed: some flag set only it rejects."""
    witnesses = [Flags(connexion_secrete=True, dest_mss_ps=True),
                 Flags(invisible_patient=True, dest_mss_patient=True),
                 Flags(invisible_rep_legaux=True, dest_mss_ps=True),
                 Flags(masque_ps=True, dest_mss_ps=True, dest_mss_patient=True),
                 Flags()]
    for rule, flags in zip(RULES, witnesses, strict=True):
        fired = [r for r in RULES if r.forbidden(flags)]
        assert fired == [rule], rule.reason
        assert not rule.forbidden(replace(Flags(), dest_dmp=True))
