"""mappings.codes: the XDS code tables and their lookups."""

from __future__ import annotations

import pytest

from mappings import codes


@pytest.mark.parametrize("type_code, expected", [
    ("11490-0", ("11", "Synthèse", "1.2.250.1.213.1.1.4.1")),
    ("11502-2", ("10", "Compte rendu", "1.2.250.1.213.1.1.4.1")),
    ("34133-9", ("10", "Compte rendu", "1.2.250.1.213.1.1.4.1")),      # unmapped: documented default
])
def test_class_code_follows_the_type_code(type_code, expected):
    assert codes.class_code_for(type_code) == expected


@pytest.mark.parametrize("patient_class, code", [("I", "03"), ("O", "07"), ("R", "19"), ("N", "97"),
                                                  ("E", "07"), ("", "97"), ("Z", "97"), (" i ", "03")])
def test_content_type_follows_the_patient_class(patient_class, code):
    assert codes.content_type_for_patient_class(patient_class)[::2] == (code, "1.2.250.1.213.2.2")


@pytest.mark.parametrize("code, scheme", [
    ("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3"),
    ("urn:ihe:lab:xd-lab:2008", "1.3.6.1.4.1.19376.1.2.3"),
    ("urn:asip:ci-sis:ldl-ses:2017", "1.2.250.1.213.1.1.4.2.282"),
    ("urn:ans:ci-sis:img-da:2022", "1.2.250.1.213.1.1.4.2.282"),
    ("urn:asipSante:modelesHorsProfils:2011", "1.2.250.1.213.1.1.4.2.282"),
])
def test_format_code_scheme_depends_on_the_code_family(code, scheme):
    assert codes.format_code(code)[2] == scheme


def test_format_code_carries_its_label():
    assert codes.format_code("urn:asip:ci-sis:ldl-ses:2017")[1] == \
        "Lettre de Liaison à la sortie de l'établissement de santé"


@pytest.mark.parametrize("code, scheme", [("N", "2.16.840.1.113883.5.25"), ("V", "2.16.840.1.113883.5.25"),
                                          ("MASQUE_PS", "1.2.250.1.213.1.1.4.13"),
                                          ("INVISIBLE_REPRESENTANTS_LEGAUX", "1.2.250.1.213.1.1.4.13")])
def test_confidentiality_codes_have_their_scheme(code, scheme):
    assert codes.confidentiality_code(code)[2] == scheme


def test_every_table_names_its_source():
    for name in ("format_codes", "class_codes", "confidentiality", "content_types"):
        assert codes.load(name)["_source"]


def test_tables_are_loaded_once():
    assert codes.load("format_codes") is codes.load("format_codes")
