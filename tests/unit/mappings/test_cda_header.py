"""mappings.cda_header: reading the French CDA header."""

from __future__ import annotations

import pytest
from lxml import etree

from mappings.cda_header import read_header, recordtarget_ids
from router.cda_xml import parse_cda
from mappings.codes import format_code_for
from router.errors import ValidationError
from router.model import Participant
from channels.testing.cda import (SAMPLE_DOCUMENT_IDS, SAMPLE_INS, SAMPLE_INS_OID, SAMPLE_IPP, SAMPLE_IPP_ROOT,
                               make_cda, nir_with_key)
from tests.support.fixtures import FIXTURES, require_fixture

HL7 = "urn:hl7-org:v3"
EXAMPLES = ("TestContenuCDA-3-0", "ExemplesCDA")


def test_reads_every_field_of_the_lab_report_sample():
    header = read_header(make_cda())

    assert header.document_id == SAMPLE_DOCUMENT_IDS["cr-bio"]
    assert header.set_id == "1.2.250.1.999.1.4^CRB-240312-0001"
    assert header.version == 1
    assert (header.type_code, header.type_display, header.type_system) == (
        "11502-2", "CR d'examens biologiques", "2.16.840.1.113883.6.1")
    assert header.title == "Compte rendu d'examens biologiques"
    assert header.effective_time == "20240312163000+0100"
    assert header.confidentiality == "N"
    assert header.language == "fr-FR"
    assert header.template_ids == ("2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.1",
                                   "1.3.6.1.4.1.19376.1.3.3", "1.2.250.1.213.1.1.1.55")
    assert header.format_code == "urn:ihe:lab:xd-lab:2008"
    assert header.patient_ids == ((SAMPLE_INS_OID, SAMPLE_INS), (SAMPLE_IPP_ROOT, SAMPLE_IPP))
    assert (header.ins, header.ins_oid) == (SAMPLE_INS, SAMPLE_INS_OID)
    assert (header.patient_family, header.patient_given) == ("MARTIN", "CAMILLE")
    assert (header.patient_birth_time, header.patient_gender) == ("19850714", "F")
    assert header.ins_traits_complete is True
    assert header.authors == (Participant(identifier="810000543214", family="BERNARD", given="Louise",
                                          organisation_id="1990000014",
                                          organisation_name="CH de Test - Laboratoire de biologie"),)
    assert header.legal_authenticator == Participant(identifier="810000543214", family="BERNARD", given="Louise",
                                                     organisation_id="1990000014", organisation_name="CH de Test")
    assert header.custodian == Participant(identifier="1990000014", organisation_id="1990000014",
                                           organisation_name="CH de Test")
    assert (header.facility_type_code, header.facility_type_display) == ("SA01", "Etablissement public de santé")
    assert (header.practice_setting_code, header.practice_setting_display) == (
        "ETABLISSEMENT", "Etablissement de santé")
    assert (header.service_start, header.service_stop) == ("20240312081500+0100", "20240312162500+0100")
    assert header.parent_document_id == ""


def test_reads_the_discharge_letter_sample():
    header = read_header(make_cda(kind="ldl-ses"))

    assert header.document_id == SAMPLE_DOCUMENT_IDS["ldl-ses"]
    assert header.type_code == "11490-0"
    assert header.format_code == "urn:asip:ci-sis:ldl-ses:2017"
    assert header.authors[0].family == "GIRARD"
    assert (header.service_start, header.service_stop) == ("20240315100000+0100", "20240320140000+0100")


def test_document_id_without_extension_is_the_root_alone():
    assert read_header(make_cda(document_id="1.2.250.1.999.1.3.77")).document_id == "1.2.250.1.999.1.3.77"


def test_version_number_is_read_as_an_integer():
    assert read_header(make_cda(version=3)).version == 3


def test_a_version_number_that_is_not_an_integer_is_rejected():
    cda = make_cda().replace(b'<versionNumber value="1"/>', b'<versionNumber value="one"/>')
    with pytest.raises(ValidationError, match="versionNumber"):
        read_header(cda)


@pytest.mark.parametrize("oid", ["1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9",
                                 "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"])
def test_ins_is_found_under_each_ins_oid(oid):
    ins = nir_with_key("1730275112233")
    header = read_header(make_cda(ins=ins, ins_oid=oid))
    assert (header.ins, header.ins_oid) == (ins, oid)


def test_an_id_under_another_oid_is_not_an_ins():
    header = read_header(make_cda(ins_oid="1.2.250.1.213.1.4.2"))   # old INS-C
    assert header.ins == ""
    assert ("1.2.250.1.213.1.4.2", SAMPLE_INS) in header.patient_ids


def test_without_ins_the_ipp_is_still_listed():
    header = read_header(make_cda(ins=None))
    assert header.ins == "" and header.ins_oid == ""
    assert header.patient_ids == ((SAMPLE_IPP_ROOT, SAMPLE_IPP),)


def test_recordtarget_ids_are_cx_with_nh_for_ins_and_pi_for_local_ids():
    assert recordtarget_ids(read_header(make_cda())) == (
        f"{SAMPLE_INS}^^^&{SAMPLE_INS_OID}&ISO^NH", f"{SAMPLE_IPP}^^^&{SAMPLE_IPP_ROOT}&ISO^PI")


def test_family_prefers_the_birth_name_over_the_used_name():
    cda = make_cda().replace(b'<family qualifier="CL">MARTIN</family>', b'<family qualifier="CL">DUPONT</family>')
    # put the used name first so document order alone would pick it
    cda = cda.replace(b'<family qualifier="BR">MARTIN</family>', b'').replace(
        b'<given qualifier="CL">CAMILLE</given>',
        b'<given qualifier="CL">CAMILLE</given><family qualifier="BR">MARTIN</family>')
    cda = cda.replace(b'<name>', b'<name><family qualifier="SP">DUPONT</family>', 1)
    assert read_header(cda).patient_family == "MARTIN"


def test_given_prefers_the_first_birth_given_name():
    header = read_header(make_cda())
    assert header.patient_given == "CAMILLE"          # not "CAMILLE LOUISE" (all birth given names)


def test_names_without_qualifiers_are_used_when_there_is_no_birth_name():
    cda = make_cda().replace(b' qualifier="BR"', b'').replace(b' qualifier="CL"', b' qualifier="XX"')
    header = read_header(cda)
    assert (header.patient_family, header.patient_given) == ("MARTIN", "CAMILLE LOUISE")


_TRAIT_REMOVALS = {
    "birth family": (b'<family qualifier="BR">MARTIN</family>', b''),
    "first birth given": (b'<given qualifier="BR">CAMILLE</given>', b''),
    "all birth givens": (b'<given>CAMILLE LOUISE</given>', b''),
    "birth time": (b'<birthTime value="19850714"/>', b''),
    "sex": (b'<administrativeGenderCode code="F"', b'<administrativeGenderCode nullFlavor="UNK"'),
}


@pytest.mark.parametrize("trait", sorted(_TRAIT_REMOVALS))
def test_ins_traits_are_incomplete_when_one_is_missing(trait):
    old, new = _TRAIT_REMOVALS[trait]
    cda = make_cda()
    assert old in cda
    assert read_header(cda.replace(old, new)).ins_traits_complete is False


def test_ins_traits_are_incomplete_without_the_birthplace_county():
    assert read_header(make_cda(birthplace_county=None)).ins_traits_complete is False


def test_parent_document_id_comes_from_the_rplc_relation():
    assert read_header(make_cda(parent_document_id="1.2.250.1.999.1.3^CRB-0")).parent_document_id == \
        "1.2.250.1.999.1.3^CRB-0"


def _level_one(cda: bytes, media_type: str | None) -> bytes:
    doc = etree.fromstring(cda)
    component = doc.find(f"{{{HL7}}}component")
    component.remove(component[0])
    body = etree.SubElement(component, f"{{{HL7}}}nonXMLBody")
    text = etree.SubElement(body, f"{{{HL7}}}text", representation="B64")
    if media_type:
        text.set("mediaType", media_type)
    text.text = "JVBERi0xLjQK"
    return etree.tostring(doc)


@pytest.mark.parametrize("media_type, expected", [
    ("application/pdf", "urn:ihe:iti:xds-sd:pdf:2008"),
    ("text/plain", "urn:ihe:iti:xds-sd:text:2008"),
    ("image/jpeg", "urn:ihe:iti-fr:xds-sd:jpeg:2010"),
    (None, "urn:ihe:iti:xds-sd:text:2008"),            # HL7 ED default media type
])
def test_a_level_one_body_takes_its_format_code_from_the_media_type(media_type, expected):
    assert read_header(_level_one(make_cda(), media_type)).format_code == expected


def test_a_structured_body_of_an_unknown_model_gets_the_documented_default():
    assert format_code_for(("2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.1", "1.2.3.4"), None) == \
        "urn:asipSante:modelesHorsProfils:2011"


@pytest.mark.parametrize("template, expected", [
    ("1.2.250.1.213.1.1.1.29", "urn:asip:ci-sis:ldl-ses:2017"),
    ("1.2.250.1.213.1.1.1.55", "urn:ihe:lab:xd-lab:2008"),
    ("1.3.6.1.4.1.19376.1.3.3", "urn:ihe:lab:xd-lab:2008"),
])
def test_format_code_follows_the_model_template(template, expected):
    assert format_code_for(("1.2.250.1.213.1.1.1.1", template), None) == expected


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty"),
    (b"not xml at all", "not well-formed"),
    (b"<ClinicalDocument><id root='1'/></ClinicalDocument>", "not a CDA"),
    (b"<x:ClinicalDocument xmlns:x='urn:other'/>", "not a CDA"),
])
def test_input_that_is_not_a_cda_is_a_validation_error(raw, reason):
    with pytest.raises(ValidationError, match=reason):
        read_header(raw)


def test_malformed_xml_reports_the_line():
    with pytest.raises(ValidationError) as caught:
        read_header(b'<?xml version="1.0"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3">\n'
                    b'<id root="1"></ClinicalDocument>')
    assert caught.value.details and caught.value.details[0].startswith("line ")


def test_a_document_without_id_is_rejected():
    with pytest.raises(ValidationError, match="ClinicalDocument/id"):
        read_header(b'<ClinicalDocument xmlns="urn:hl7-org:v3"><title>x</title></ClinicalDocument>')


def test_external_entities_are_never_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    cda = (f'<?xml version="1.0"?><!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file://{secret}">]>'
           f'<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.3"/><title>&x;</title>'
           f'</ClinicalDocument>').encode()
    header = read_header(cda)
    assert "TOP-SECRET" not in header.title


def test_internal_entities_are_not_expanded_either():
    cda = (b'<?xml version="1.0"?><!DOCTYPE ClinicalDocument [<!ENTITY x "EXPANDED">]>'
           b'<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.3"/><title>&x;</title></ClinicalDocument>')
    assert "EXPANDED" not in read_header(cda).title


def test_parse_cda_returns_the_clinical_document_element():
    assert parse_cda(make_cda()).tag == f"{{{HL7}}}ClinicalDocument"


# --- the ANS examples ------------------------------------------------------------------------

def _example_names() -> list[str]:
    directory = FIXTURES.joinpath(*EXAMPLES) if FIXTURES else None
    if directory is None or not directory.is_dir():
        return ["<fixtures absent>"]
    return sorted(p.name for p in directory.glob("*.xml"))


def _expected_format(name: str) -> str:
    if name.startswith("LDL-SES"):
        return "urn:asip:ci-sis:ldl-ses:2017"
    if name.startswith("BIO-CR-BIO_2024"):
        return "urn:ihe:lab:xd-lab:2008"
    if "N1" in name or "Niveau-1" in name:
        return "urn:ihe:iti:xds-sd:pdf:2008"
    return "urn:asip:ci-sis:vsm:2012"          # 01_Modèles_contenus_CDA: the VSM model


@pytest.mark.fixtures
@pytest.mark.parametrize("name", _example_names())
def test_reads_the_header_of_each_ans_example(name):
    path = require_fixture(*EXAMPLES, name)
    header = read_header(path.read_bytes())

    assert header.document_id.startswith(("1.2.250.1.213.1.1.1.", "1.3.6.1.4.1.19376.1.2.20."))
    assert header.set_id and header.version >= 1
    assert header.type_code in {"11490-0", "11502-2", "60591-5"}
    assert (header.ins, header.ins_oid) == ("279035121518989", "1.2.250.1.213.1.4.10")
    assert header.patient_family == "PAT-TROIS" and header.patient_given == "DOMINIQUE"
    assert header.ins_traits_complete is True
    assert header.authors and header.authors[0].identifier
    assert header.legal_authenticator is not None and header.custodian is not None
    assert header.facility_type_code.startswith("SA")
    assert header.practice_setting_code in {"ETABLISSEMENT", "AMBULATOIRE"}
    assert header.service_start
    assert header.format_code == _expected_format(name)
