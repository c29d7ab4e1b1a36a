"""channels.xds.vihf.from_config: the [dmp.vihf] table, its defaults, and errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.xds.vihf import AUTOMATE, PURPOSES, CodedValue, from_config
from router.errors import ConfigError
from channels.testing.cachet_pki import KEY_PASSWORD, STRUCTURE_ID
from tests.unit.xds_vihf.conftest import table


def test_defaults(pki):
    settings = from_config(table(pki, subject_name=None, lps_id=None), env={})
    assert settings.roles == (AUTOMATE,)
    assert settings.roles[0] == CodedValue("AUTOMATE", "1.2.250.1.213.1.1.4.6", "AUTOMATE")
    assert settings.purpose_of_use == PURPOSES["normal"]
    assert settings.purpose_of_use.code_system == "1.2.250.1.213.1.1.4.248"
    assert settings.lps_name == "Liaison" == settings.subject_name
    assert settings.lps_version == "0.1.0"            # the installed package (pyproject.toml)
    assert settings.vihf_version == "3.0"             # the IG's example; its table says 4.0
    assert settings.lps_id is None
    assert settings.signing_key_password_env is None


def test_every_key_is_read(pki):
    settings = from_config(table(
        pki, role_code="10", role_system="1.2.250.1.71.1.2.7", role_display="Médecin",          # TRE_G15
        specialty_code="SPEC01", specialty_system="1.2.250.1.999.7.1", specialty_display="Spécialité fictive",
        lps_name="Liaison-H", lps_version="9.9.9", vihf_version="4.0", purpose_of_use="normal",
        activity_sector="SA03^1.2.250.1.71.4.2.4"), env={})
    assert settings.structure_id == STRUCTURE_ID
    assert settings.activity_sector == "SA03^1.2.250.1.71.4.2.4"
    assert (settings.subject_id, settings.subject_name) == \
        (f"{STRUCTURE_ID}/DSI-DMP", "Liaison, moteur d'intégration, DSI")
    assert settings.roles == (CodedValue("10", "1.2.250.1.71.1.2.7", "Médecin"),
                              CodedValue("SPEC01", "1.2.250.1.999.7.1", "Spécialité fictive"))
    assert (settings.lps_id, settings.lps_name, settings.lps_version, settings.lps_homologation_id) == \
        ("1.2.250.1.999.42.1", "Liaison-H", "9.9.9", "HOMOL-TEST-0001")
    assert settings.vihf_version == "4.0"
    assert settings.signing_cert == Path(pki.cachet_cert) and settings.signing_key == Path(pki.cachet_key)


def test_an_encrypted_key_is_opened_with_the_password_from_the_environment(pki):
    settings = from_config(table(pki, signing_key=str(pki.cachet_key_encrypted),
                                 signing_key_password_env="CACHET_PW"), env={"CACHET_PW": KEY_PASSWORD.decode()})
    material = settings.signing_material({"CACHET_PW": KEY_PASSWORD.decode()})
    assert material.password == KEY_PASSWORD
    assert b"ENCRYPTED" in material.key_pem
    assert material.private_key.key_size == 2048
    assert KEY_PASSWORD.decode() not in repr(material) and KEY_PASSWORD.decode() not in repr(settings)


def test_the_signing_key_is_parsed_once_not_per_signature(settings):
    # Parsing an RSA key (OpenSSL 3 checks it) cost the DMP channel more than all the rest of a deposit.
    material = settings.signing_material({})
    assert material.private_key is material.private_key


@pytest.mark.parametrize(("overrides", "env", "key"), [
    ({"structure_id": None}, {}, "dmp.vihf.structure_id"),
    ({"structure_id": "1-750"}, {}, "dmp.vihf.structure_id"),
    ({"structure_id": "175000001"}, {}, "dmp.vihf.structure_id"),          # "1" + FINESS is 10 characters
    ({"activity_sector": None}, {}, "dmp.vihf.activity_sector"),           # required: no safe default
    ({"activity_sector": "SA01"}, {}, "dmp.vihf.activity_sector"),
    ({"subject_id": None}, {}, "dmp.vihf.subject_id"),
    ({"subject_id": "  "}, {}, "dmp.vihf.subject_id"),
    ({"lps_homologation_id": None}, {}, "dmp.vihf.lps_homologation_id"),
    ({"vihf_version": "5.0"}, {}, "dmp.vihf.vihf_version"),
    ({"purpose_of_use": "bris_de_glace"}, {}, "dmp.vihf.purpose_of_use"),
    ({"role_code": "10"}, {}, "dmp.vihf.role_system"),                     # a new code needs its system
    ({"role_system": "not-an-oid"}, {}, "dmp.vihf.role_system"),
    ({"specialty_code": "SPEC01"}, {}, "dmp.vihf.specialty_system"),
    ({"lps_name": 42}, {}, "dmp.vihf.lps_name"),
    ({"colour": "blue"}, {}, "dmp.vihf.colour"),
    ({"signing_cert": None}, {}, "dmp.vihf.signing_cert"),
    ({"signing_cert": "/nonexistent/cachet.pem"}, {}, "dmp.vihf.signing_cert"),
    ({"signing_key": "/nonexistent/cachet.key"}, {}, "dmp.vihf.signing_key"),
    ({"signing_key_password_env": "CACHET_PW"}, {}, "dmp.vihf.signing_key_password_env"),
])
def test_errors_name_the_key(pki, overrides, env, key):
    with pytest.raises(ConfigError) as caught:
        from_config(table(pki, **overrides), env=env)
    assert caught.value.key == key
    assert str(caught.value).startswith(key)


def test_a_key_that_does_not_match_the_certificate_is_refused(pki):
    with pytest.raises(ConfigError, match="does not match") as caught:
        from_config(table(pki, signing_key=str(pki.untrusted_cachet_key)), env={})
    assert caught.value.key == "dmp.vihf.signing_key"


def test_a_wrong_password_is_refused(pki):
    with pytest.raises(ConfigError) as caught:
        from_config(table(pki, signing_key=str(pki.cachet_key_encrypted), signing_key_password_env="PW"),
                    env={"PW": "not-the-password"})
    assert caught.value.key == "dmp.vihf.signing_key"


def test_a_non_rsa_key_is_refused(pki):
    with pytest.raises(ConfigError, match="RSA") as caught:
        from_config(table(pki, signing_cert=str(pki.ec_cert), signing_key=str(pki.ec_key)), env={})
    assert caught.value.key == "dmp.vihf.signing_key"


def test_a_file_that_is_not_a_certificate_is_refused(pki, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as caught:
        from_config(table(pki, signing_cert=str(junk)), env={})
    assert caught.value.key == "dmp.vihf.signing_cert"


def test_a_table_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError) as caught:
        from_config(["structure_id"], env={})     # type: ignore[arg-type]
    assert caught.value.key == "dmp.vihf"
