"""Reading a laboratory ORU^R01 with discrete results (router.lab), field by field, and bad input."""

from __future__ import annotations

from dataclasses import replace

import hl7
import pytest

from mappings.lab_codes import microbiology_sections
from router.errors import UnsupportedMessageError, ValidationError
from router.hl7.charset import decode
from router.lab import action_for, number, read_lab_report
from router.lab_model import all_results
from router.model import Action
from channels.testing.adt_messages import DR_DURAND, DR_LEFEVRE, DR_MARTIN, PATIENT, make_adt
from channels.testing.lab_messages import (BIOLOGIST, CORPUS, ORDER_OID, PDF, Obr, Obx, biochemistry, cbc,
                                        make_lab_oru, myelogram_text, serology_coded, tsh_local, urine_culture)
from channels.testing.messages import encode_message


def first_battery(*batteries: Obr, **options):
    return read_lab_report(make_lab_oru(list(batteries), **options)).batteries[0]


@pytest.mark.parametrize("name", CORPUS)
def test_every_corpus_message_is_read(name):
    report = read_lab_report(CORPUS[name]())
    assert report.batteries and all(b.results or b.isolates for b in report.batteries)


def test_order_ids_and_battery_fields():
    report = read_lab_report(make_lab_oru([biochemistry(copies=(DR_MARTIN, DR_LEFEVRE))]))
    battery = report.batteries[0]
    assert (report.placer_order, report.filler_order, report.order_authority) == ("CMD2024-0042", "LAB24-1187",
                                                                                ORDER_OID)
    assert report.order_control == "NW"
    assert (battery.code.code, battery.code.system, battery.section) == ("24326-1", "LN", "CH")
    assert (battery.observation_time, battery.received_time) == ("20240312081500+0100", "20240312084000+0100")
    assert battery.report_time == battery.validated_time == "20240312103000+0100"
    assert battery.validator.identifier == "8" + BIOLOGIST.rpps
    assert (battery.validator.family, battery.validator.given) == ("BIOLOGISTE", "Anne")
    assert report.prescriber.identifier == "8" + DR_DURAND.rpps
    assert [c.identifier for c in report.copies] == ["8" + DR_MARTIN.rpps, "8" + DR_LEFEVRE.rpps]


def test_prescriber_falls_back_to_obr16_when_orc12_is_empty():
    text = make_lab_oru([biochemistry()])
    orc = next(line for line in text.split("\r") if line.startswith("ORC"))
    fields = orc.split("|")
    fields[12] = ""
    report = read_lab_report(make_lab_oru([biochemistry()], replace_segments={"ORC": "|".join(fields)}))
    assert report.prescriber.identifier == "8" + DR_DURAND.rpps


def test_numeric_results_with_units_ranges_flags_status_and_time():
    sodium, potassium, creatinine = first_battery(biochemistry()).results
    assert (potassium.kind, potassium.value) == ("numeric", "3.2")          # decimal comma read
    assert (potassium.units.code, potassium.reference_range, potassium.flags) == ("mmol/l", "3,5-5,1", ("L",))
    assert creatinine.flags == ("H",) and creatinine.units.code == "µmol/l"
    assert (sodium.status, sodium.time, sodium.set_id) == ("F", "20240312101500+0100", "1")
    assert sodium.code.code == "2951-2" and sodium.code.system == "LN"


def test_obx16_validator_and_obx17_method():
    obx = Obx("NM", "718-7^Hémoglobine^LN", "13", "g/dl", validator=DR_MARTIN, method="SPEC^Spectrophotométrie^L")
    result = first_battery(Obr("58410-2^NFS^LN", (obx,), section="HM")).results[0]
    assert result.validator.identifier == "8" + DR_MARTIN.rpps
    assert (result.method.code, result.method.display) == ("SPEC", "Spectrophotométrie")


def test_local_code_keeps_its_loinc_alternate():
    result = first_battery(tsh_local()).results[0]
    assert (result.code.code, result.code.system) == ("TSH", "L")
    assert (result.code.alt_code, result.code.alt_system) == ("3016-3", "LN")


def test_structured_numeric_values():
    battery = read_lab_report(make_lab_oru(urine_culture())).batteries[0]
    amoxicillin, ampicillin, gentamicin = battery.isolates[0].batteries[0].results
    assert (amoxicillin.kind, amoxicillin.comparator, amoxicillin.low, amoxicillin.high) == ("range", ">=", "32", "")
    assert (ampicillin.comparator, ampicillin.high, ampicillin.value) == ("<", "0.128", "0.128")
    assert gentamicin.kind == "coded" and gentamicin.coded_value.code == "S"
    ranged = first_battery(Obr("X^X^L", (Obx("SN", "A^A^L", "^5^-^10"), Obx("SN", "B^B^L", "^1^:^40"),
                                         Obx("SN", "C^C^L", "^7")))).results
    assert [(r.kind, r.low, r.high, r.value) for r in ranged] == [("range", "5", "10", "5-10"),
                                                                 ("text", "", "", "1:40"), ("numeric", "", "", "7")]


def test_coded_and_text_values():
    negative, positive = first_battery(serology_coded()).results
    assert (negative.kind, negative.coded_value.code, negative.coded_value.system) == ("coded", "260385009", "SCT")
    assert negative.value == "Négatif" and positive.flags == ("POS",)
    conclusion, comment = first_battery(myelogram_text()).results
    assert conclusion.value == "Moelle riche.\nLignées présentes sans anomalie morphologique."
    assert comment.value == "Pas d'excès de blastes (< 5 %).\nAspect compatible avec une moelle réactionnelle."


def test_nte_after_obr_goes_to_the_battery_and_after_obx_to_the_result():
    battery = first_battery(replace(cbc(), comments=("Tube reçu à 8 h 40.",)))
    assert battery.comments == ("Tube reçu à 8 h 40.",)
    assert battery.results[-1].comments == ("Contrôle sur lame : absence d'agrégats.",)
    assert all(not r.comments for r in battery.results[:-1])


def test_several_nte_in_a_row_all_attach_to_the_segment_they_follow():
    obx = Obx("NM", "718-7^Hémoglobine^LN", "13", "g/dl", comments=("Un.", "Deux."))
    battery = first_battery(Obr("58410-2^NFS^LN", (obx,), comments=("A.", "B.", "C.")))
    assert battery.comments == ("A.", "B.", "C.")
    assert battery.results[0].comments == ("Un.", "Deux.")


def test_specimen_from_spm_else_obr15_else_none():
    spm = first_battery(biochemistry()).specimen
    assert (spm.id, spm.type.code, spm.type.system) == ("CMD2024-0042-S1", "BLDV", "HL70487")
    assert (spm.collected, spm.received) == ("20240312081500+0100", "20240312084000+0100")
    source = first_battery(biochemistry(specimen=None, source="SER^Sérum^HL70487")).specimen
    assert (source.type.code, source.collected) == ("SER", "20240312081500+0100")
    assert first_battery(biochemistry(specimen=None, collected="")).specimen is None


def test_microbiology_isolates_by_sub_id_and_child_obr():
    report = read_lab_report(make_lab_oru(urine_culture()))
    assert len(report.batteries) == 1                       # the antibiogram OBR moved under its isolate
    battery = report.batteries[0]
    assert [r.code.code for r in battery.results] == ["5778-6", "30405-5"]
    coli, strepto = battery.isolates
    assert (coli.sub_id, coli.organism.code, coli.organism.system) == ("1", "112283007", "SCT")
    assert [r.sub_id for r in coli.results] == ["1.1"]
    assert [b.code.code for b in coli.batteries] == ["18769-0"]
    assert (strepto.sub_id, strepto.organism.display, strepto.batteries) == ("2", "Streptococcus", ())
    assert strepto.comments == ("Flore commensale probable.",)
    assert len(list(all_results(battery))) == 2 + 1 + 3 + 1


def test_the_microbiology_sections_are_the_callers_to_name():
    """An organism with no dotted child is an isolate only in microbiology; which OBR-24 values mean
    microbiology (HL7 0074 ``MB`` by default, the LOINC chapter too for CR-BIO) the caller says."""
    culture = Obr("630-4^Bactéries identifiées Urine Culture^LN", (
        Obx("CWE", "11475-1^Micro-organisme identifié^LN", "112283007^Escherichia coli^SCT", sub_id="1"),),
        section="18725-2")
    assert first_battery(culture).isolates == ()
    named = read_lab_report(make_lab_oru([culture]), microbiology_sections=microbiology_sections()).batteries[0]
    assert [i.organism.code for i in named.isolates] == ["112283007"]
    assert microbiology_sections() == {"MB", "18725-2"}


def test_child_obr_without_its_parent_stays_a_battery_with_a_warning():
    _, antibiogram = urine_culture()
    report = read_lab_report(make_lab_oru([biochemistry(), antibiogram]))
    assert len(report.batteries) == 2
    assert any(w.startswith("OBR-26") for w in report.warnings)


def test_lab_pdf_is_extracted_and_not_a_result():
    report = read_lab_report(make_lab_oru([biochemistry()], pdf=PDF))
    assert report.pdf == PDF
    assert all(r.value_type != "ED" for b in report.batteries for r in all_results(b))


@pytest.mark.parametrize("statuses, order_control, expected", [
    (["F", "F"], "NW", Action.PUBLISH), (["F", "C"], "RO", Action.REPLACE), (["D", "D"], "CA", Action.DELETE),
    (["D", "F"], "RO", Action.REPLACE), (["F"], "CA", Action.DELETE), (["P"], "NW", Action.PUBLISH),
    ([], "NW", Action.PUBLISH)])
def test_action_rule(statuses, order_control, expected):
    assert action_for(statuses, order_control) == expected


def test_action_of_the_corpus_messages():
    assert read_lab_report(CORPUS["biochemistry_flags"]()).action == Action.PUBLISH
    assert read_lab_report(CORPUS["corrected"]()).action == Action.REPLACE
    assert read_lab_report(CORPUS["cancelled"]()).action == Action.DELETE
    deleted_pdf_only = make_lab_oru([biochemistry(status="D")], pdf=PDF, pdf_status="D", order_control="NW")
    assert read_lab_report(deleted_pdf_only).action == Action.DELETE


def test_python_hl7_message_reads_like_text():
    text = CORPUS["microbiology_isolates"]()
    assert read_lab_report(hl7.parse(text)) == read_lab_report(text)


def test_latin1_message_decoded_by_its_charset_keeps_accents():
    raw = encode_message(CORPUS["accents_8859_1"]())
    assert "é".encode("latin-1") in raw and "é".encode("utf-8") not in raw
    text, codec = decode(raw)
    report = read_lab_report(text)
    assert codec == "latin-1"
    assert report.batteries[0].comments == ("Hémolyse légère, à contrôler.",)


def test_number_normalisation():
    assert [number(v) for v in ("4,89", ".5", "12.", "-3", "+7", "1e3", "", "abc")] == \
        ["4.89", "0.5", "12", "-3", "7", None, None, None]


# --- bad input ---------------------------------------------------------------------------------

def test_oru_without_obr_is_a_validation_error():
    text = make_lab_oru([biochemistry()], replace_segments={"OBR": None, "OBX": None, "NTE": None, "SPM": None})
    with pytest.raises(ValidationError, match="no OBR"):
        read_lab_report(text)


def test_obx_before_any_obr_is_a_validation_error():
    lines = make_lab_oru([biochemistry()]).rstrip("\r").split("\r")
    obx = next(line for line in lines if line.startswith("OBX"))
    with pytest.raises(ValidationError, match="OBX before any OBR"):
        read_lab_report("\r".join([lines[0], lines[1], obx]) + "\r")


def test_nm_value_that_is_not_a_number_falls_back_to_text_with_a_warning():
    result_obr = Obr("X^X^L", (Obx("NM", "2345-7^Glucose^LN", "hémolysé", "g/l"),))
    report = read_lab_report(make_lab_oru([result_obr]))
    result = report.batteries[0].results[0]
    assert (result.kind, result.value) == ("text", "hémolysé")
    assert report.warnings == ("OBX-5 (OBX-1 1): NM value is not a number; kept as text",)


def test_unknown_units_are_read_as_sent():
    report = read_lab_report(make_lab_oru([Obr("X^X^L", (Obx("NM", "A^A^L", "3", "bananes/l"),))]))
    assert report.batteries[0].results[0].units.code == "bananes/l"


def test_pdf_that_is_not_base64_is_a_validation_error():
    text = make_lab_oru([biochemistry()]) + "OBX|9|ED|11502-2^CR^LN||^application^pdf^Base64^@@not base64@@||||||F\r"
    with pytest.raises(ValidationError, match="OBX-5.5"):
        read_lab_report(text)


def test_an_adt_message_is_not_a_lab_report():
    with pytest.raises(UnsupportedMessageError):
        read_lab_report(make_adt("A01"))


def test_warnings_name_fields_never_patient_data():
    text = make_lab_oru([Obr("X^X^L", (Obx("NM", "A^A^L", PATIENT.family), Obx("ZZ", "B^B^L", "x")))])
    warnings = " ".join(read_lab_report(text).warnings)
    assert "OBX-5" in warnings and "OBX-2" in warnings and PATIENT.family not in warnings
