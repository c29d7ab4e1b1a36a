"""The site identity from configuration: FINESS key, OIDs, facility type (J02) and practice setting (J04)."""

from __future__ import annotations

import pytest

from mappings.site import Site, finess_key_ok
from router.errors import ConfigError
from tests.support.fixtures import require_fixture

REAL_SHAPE = {"finess": "999000029", "name": "CH Exemple", "document_id_root": "1.2.250.1.999.2.3",
              "set_id_root": "1.2.250.1.999.2.4", "ipp_root": "1.2.250.1.999.2.1",
              "encounter_root": "1.2.250.1.999.2.2"}


@pytest.fixture(scope="module")
def jdv_dir():
    return require_fixture("TestContenuCDA-3-0", "jeuxDeValeurs")


@pytest.fixture()
def no_jdv():
    """No JDV files: codes are then left unchecked."""
    return False


def test_the_fictitious_default_is_itself_a_valid_site(jdv_dir):
    assert Site.from_config({}, jdv_dir=jdv_dir) == Site()
    assert finess_key_ok(Site().finess)


@pytest.mark.parametrize("finess", ["750803447", "999000011", "2A0000001", "2B1234567"])
def test_finess_with_its_key_is_accepted(finess, no_jdv):
    assert Site.from_config({"finess": finess}, jdv_dir=no_jdv).idnat_struct == "1" + finess


@pytest.mark.parametrize("finess", ["750803448", "999000017", "75080344", "7508034470", "2C0000001", "75O803447"])
def test_a_finess_with_a_wrong_key_or_shape_is_refused(finess, no_jdv):
    with pytest.raises(ConfigError, match="Luhn key") as caught:
        Site.from_config({"finess": finess}, jdv_dir=no_jdv)
    assert caught.value.key == "site.finess"


@pytest.mark.parametrize("key", ["document_id_root", "set_id_root", "ipp_root", "encounter_root"])
@pytest.mark.parametrize("bad", ["1.2.250.1.x", "urn:oid:1.2.3", "1.2..3", "1.02.3", "3.1", ""])
def test_an_id_root_must_be_an_oid(key, bad, no_jdv):
    with pytest.raises(ConfigError, match="not an OID") as caught:
        Site.from_config({key: bad}, jdv_dir=no_jdv)
    assert caught.value.key == f"site.{key}"


def test_unknown_keys_and_non_strings_are_refused(no_jdv):
    with pytest.raises(ConfigError, match="unknown key") as caught:
        Site.from_config({"finnes": "999000011"}, jdv_dir=no_jdv)
    assert caught.value.key == "site.finnes"
    with pytest.raises(ConfigError, match="expected a string, got int"):
        Site.from_config({"finess": 999000011}, jdv_dir=no_jdv)
    with pytest.raises(ConfigError, match="name is required"):
        Site.from_config({"name": " "}, jdv_dir=no_jdv)


def test_codes_fill_their_display_names_from_the_jdv(jdv_dir):
    site = Site.from_config({**REAL_SHAPE, "facility_type_code": "SA03", "practice_setting_code": "HAD"},
                            jdv_dir=jdv_dir)
    assert (site.facility_type_display, site.practice_setting_display) == \
        ("Etablissement privé PSPH", "Hospitalisation à domicile")
    assert site.fictitious_keys() == ("document_id_root", "set_id_root", "ipp_root", "encounter_root")


def test_an_explicit_display_name_is_kept(jdv_dir):
    site = Site.from_config({"facility_type_code": "SA01", "facility_type_display": "CHU"}, jdv_dir=jdv_dir)
    assert site.facility_type_display == "CHU"


@pytest.mark.parametrize("key, code, jdv", [("facility_type_code", "SA99", "JDV_J02"),
                                             ("facility_type_code", "EXP_PATIENT", "JDV_J02"),   # other system
                                             ("practice_setting_code", "CLINIQUE", "JDV_J04")])
def test_a_code_outside_its_jdv_is_refused(key, code, jdv, jdv_dir):
    with pytest.raises(ConfigError, match=f"'{code}' is not a code of {jdv}") as caught:
        Site.from_config({key: code}, jdv_dir=jdv_dir)
    assert caught.value.key == f"site.{key}"


def test_without_jdv_files_codes_are_taken_as_given(no_jdv):
    site = Site.from_config({"facility_type_code": "SA99"}, jdv_dir=no_jdv)
    assert (site.facility_type_code, site.facility_type_display) == ("SA99", Site().facility_type_display)


def test_a_fully_configured_site_is_no_longer_fictitious(no_jdv):
    site = Site.from_config({**REAL_SHAPE, "finess": "750803447", "document_id_root": "1.2.250.1.1234.3",
                             "set_id_root": "1.2.250.1.1234.4", "ipp_root": "1.2.250.1.1234.1",
                             "encounter_root": "1.2.250.1.1234.2"}, jdv_dir=no_jdv)
    assert site.fictitious_keys() == ()
    assert Site().fictitious_keys() == ("finess", "document_id_root", "set_id_root", "ipp_root", "encounter_root")


def test_a_jdv_directory_without_j02_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="JDV_J02_XdsHealthcareFacilityTypeCode_CISIS not found") as caught:
        Site.from_config({}, jdv_dir=tmp_path)
    assert caught.value.key == "site.facility_type_code"
