"""sign_vihf / verify_vihf, cross-checked with the independent verifier xmlsec1."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
import structlog
from lxml import etree

from channels.xds.vihf import (AUTOMATE, CONFIDENTIALITY_CODE, DS, PURPOSES, RESOURCE_ID, ROLE, SAML,
                               SECRET_CONNECTION, VihfError, build_vihf, sign_vihf, verify_vihf)
from router.identity import nir_key
from channels.testing.cachet_pki import CACHET_DN, KEY_PASSWORD
from tests.unit.xds_vihf.conftest import INS, INS_TEST_OID
from tests.unit.xds_vihf.xmlsec import xmlsec1_verify

OTHER_INS = "1920133012045" + f"{nir_key('1920133012045'):02d}"


@pytest.fixture
def now() -> datetime:
    # The test certificates are valid from (run time - 5 min) for 30 days; xmlsec1 checks them at run time.
    return datetime.now(timezone.utc)


@pytest.fixture
def material(settings):
    return settings.signing_material({})


def signed_bytes(settings, material, now, *, secret=False, edit=None) -> bytes:
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=secret, now=now)
    if edit is not None:
        edit(assertion)
    return etree.tostring(sign_vihf(assertion, material.key_pem, material.cert_pem))


def resource_id(assertion) -> etree._Element:
    return assertion.find(f".//{{{SAML}}}Attribute[@Name='{RESOURCE_ID}']/{{{SAML}}}AttributeValue")


def test_a_signed_vihf_verifies_and_reads_back(settings, material, pki, now):
    verified = verify_vihf(signed_bytes(settings, material, now), pki.ca_cert.read_bytes(), now=now)
    assert verified.ins == (INS, INS_TEST_OID)
    assert verified.issuer == CACHET_DN
    assert verified.subject_id == settings.subject_id
    assert verified.secret_connection is False
    assert verified.value("Identifiant_Structure") == settings.structure_id
    assert verified.value("Authentification_Mode") == "INDIRECTE"
    assert verified.attributes[ROLE] == (AUTOMATE,)
    assert verified.value("urn:oasis:names:tc:xspa:1.0:subject:purposeofuse") == PURPOSES["normal"]
    assert verified.not_on_or_after - verified.not_before == timedelta(minutes=5)
    assert verified.signer.subject.rfc4514_string().startswith("CN=DMP SIGN TEST")


def test_a_signed_vihf_verifies_with_xmlsec1(settings, material, pki, now, tmp_path):
    ok, output = xmlsec1_verify(signed_bytes(settings, material, now, secret=True), pki.ca_cert, tmp_path)
    assert ok, output


def test_the_secret_connection_flag_survives_signing(settings, material, pki, now):
    verified = verify_vihf(signed_bytes(settings, material, now, secret=True), pki.ca_cert.read_bytes(), now=now)
    assert verified.secret_connection is True
    assert verified.attributes[CONFIDENTIALITY_CODE][0].code == SECRET_CONNECTION.code


def test_the_signature_sits_right_after_the_issuer(settings, material, now):
    signed = etree.fromstring(signed_bytes(settings, material, now))
    assert [etree.QName(c).localname for c in signed][:3] == ["Issuer", "Signature", "Subject"]
    assert len(signed.findall(f".//{{{DS}}}Signature")) == 1


def test_an_ins_changed_after_signing_fails_both_verifiers(settings, material, pki, now, tmp_path):
    signed = etree.fromstring(signed_bytes(settings, material, now))
    resource_id(signed).text = f"{OTHER_INS}^^^&{INS_TEST_OID}&ISO^NH"
    tampered = etree.tostring(signed)
    with pytest.raises(VihfError, match="signature does not verify") as caught:
        verify_vihf(tampered, pki.ca_cert.read_bytes(), now=now)
    assert OTHER_INS not in str(caught.value) and INS not in str(caught.value)
    ok, output = xmlsec1_verify(tampered, pki.ca_cert, tmp_path)
    assert not ok, output


def test_an_added_attribute_fails_verification(settings, material, pki, now):
    signed = etree.fromstring(signed_bytes(settings, material, now))
    statement = signed.find(f"{{{SAML}}}AttributeStatement")
    extra = etree.SubElement(statement, f"{{{SAML}}}Attribute", Name=CONFIDENTIALITY_CODE)
    etree.SubElement(extra, f"{{{SAML}}}AttributeValue").text = "INVISIBLE_REPRESENTANTS_LEGAUX"
    with pytest.raises(VihfError):
        verify_vihf(etree.tostring(signed), pki.ca_cert.read_bytes(), now=now)


def test_an_expired_assertion_is_refused(settings, material, pki, now):
    data = signed_bytes(settings, material, now)
    with pytest.raises(VihfError, match="expired"):
        verify_vihf(data, pki.ca_cert.read_bytes(), now=now + timedelta(minutes=5))
    assert verify_vihf(data, pki.ca_cert.read_bytes(), now=now + timedelta(minutes=4, seconds=59))
    assert verify_vihf(data, pki.ca_cert.read_bytes(), now=now + timedelta(minutes=5, seconds=10),
                       leeway=timedelta(seconds=30))


def test_an_assertion_from_the_future_is_refused(settings, material, pki, now):
    data = signed_bytes(settings, material, now)
    with pytest.raises(VihfError, match="not valid yet"):
        verify_vihf(data, pki.ca_cert.read_bytes(), now=now - timedelta(seconds=5))


def test_a_certificate_from_another_ca_fails_both_verifiers(settings, pki, now, tmp_path):
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=now)
    rogue = etree.tostring(sign_vihf(assertion, pki.untrusted_cachet_key.read_bytes(),
                                     pki.untrusted_cachet_cert.read_bytes()))
    with pytest.raises(VihfError, match="does not chain"):
        verify_vihf(rogue, pki.ca_cert.read_bytes(), now=now)
    ok, output = xmlsec1_verify(rogue, pki.ca_cert, tmp_path)
    assert not ok, output
    # The same document is fine for a verifier that trusts the other CA: only the trust failed.
    assert verify_vihf(rogue, pki.untrusted_ca_cert.read_bytes(), now=now).issuer == CACHET_DN


def test_an_issuer_that_is_not_the_signer_is_refused(settings, material, pki, now, tmp_path):
    def forge(assertion):
        assertion.find(f"{{{SAML}}}Issuer").text = "C=FR, O=AUTRE STRUCTURE, CN=DMP SIGN"

    data = signed_bytes(settings, material, now, edit=forge)
    ok, output = xmlsec1_verify(data, pki.ca_cert, tmp_path)
    assert ok, output                                   # the signature itself is sound...
    with pytest.raises(VihfError, match="Issuer"):      # ...but the DMP checks who says it
        verify_vihf(data, pki.ca_cert.read_bytes(), now=now)


def test_an_unsigned_assertion_is_refused(settings, pki, now):
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=now)
    with pytest.raises(VihfError, match="not signed"):
        verify_vihf(assertion, pki.ca_cert.read_bytes(), now=now)


def test_garbage_is_refused_with_a_vihf_error(pki, now):
    with pytest.raises(VihfError, match="well-formed"):
        verify_vihf(b"<Assertion", pki.ca_cert.read_bytes(), now=now)


WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
#: An envelope whose ancestors declare ``ds``, ``saml``, ``xsi`` and a default namespace: with the ANS
#: example's InclusiveNamespaces ("ds saml #default xsi") they would enter the digest and break it.
ENVELOPE = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:ds="urn:example:not-dsig" '
            b'xmlns:saml="urn:example:not-saml" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            b'xmlns="urn:example:default"><s:Header><wsse:Security xmlns:wsse="' + WSSE.encode() +
            b'" s:mustUnderstand="true">{assertions}</wsse:Security></s:Header><s:Body><Payload/></s:Body>'
            b'</s:Envelope>')


def embed(*assertions: bytes, envelope: bytes = ENVELOPE) -> bytes:
    """The assertions spliced byte for byte into the envelope's Security header (no re-serialisation)."""
    return envelope.replace(b"{assertions}", b"".join(assertions))


def test_the_signature_survives_an_envelope_declaring_ds_saml_xsi_and_a_default_namespace(
        settings, material, pki, now, tmp_path):
    envelope = embed(signed_bytes(settings, material, now))
    assert verify_vihf(envelope, pki.ca_cert.read_bytes(), now=now).ins == (INS, INS_TEST_OID)
    ok, output = xmlsec1_verify(envelope, pki.ca_cert, tmp_path)
    assert ok, output
    # Appended as an element by lxml (as channels.xds.soap does) under the same ancestors, it still verifies:
    # lxml only folds the assertion's declarations into an ancestor's for the *same* namespace URI (xsi here).
    built = etree.fromstring(embed(b""))
    built.find(f".//{{{WSSE}}}Security").append(etree.fromstring(signed_bytes(settings, material, now)))
    assert verify_vihf(etree.tostring(built), pki.ca_cert.read_bytes(), now=now)


def test_the_signature_survives_an_envelope_declaring_the_real_dsig_and_saml_namespaces(
        settings, material, pki, now, tmp_path):
    envelope = embed(signed_bytes(settings, material, now), envelope=ENVELOPE
                     .replace(b"urn:example:not-dsig", DS.encode()).replace(b"urn:example:not-saml", SAML.encode()))
    assert verify_vihf(envelope, pki.ca_cert.read_bytes(), now=now)
    ok, output = xmlsec1_verify(envelope, pki.ca_cert, tmp_path)
    assert ok, output


def test_an_envelope_with_a_second_assertion_is_refused(settings, material, pki, now):
    genuine = signed_bytes(settings, material, now)
    forged = etree.fromstring(genuine)
    forged.remove(forged.find(f"{{{DS}}}Signature"))
    resource_id(forged).text = f"{OTHER_INS}^^^&{INS_TEST_OID}&ISO^NH"
    with pytest.raises(VihfError, match="expected one"):
        verify_vihf(embed(etree.tostring(forged), genuine), pki.ca_cert.read_bytes(), now=now)


def test_a_key_parsed_once_signs_as_its_pem_does(settings, material, pki, now, tmp_path):
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=now)
    data = etree.tostring(sign_vihf(assertion, material.private_key, material.cert_pem))
    assert verify_vihf(data, pki.ca_cert.read_bytes(), now=now).issuer == CACHET_DN
    ok, output = xmlsec1_verify(data, pki.ca_cert, tmp_path)
    assert ok, output


def test_an_encrypted_key_signs_with_its_password(settings, pki, now, tmp_path):
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=now)
    data = etree.tostring(sign_vihf(assertion, pki.cachet_key_encrypted.read_bytes(),
                                    pki.cachet_cert.read_bytes(), password=KEY_PASSWORD))
    assert verify_vihf(data, pki.ca_cert.read_bytes(), now=now).issuer == CACHET_DN
    ok, output = xmlsec1_verify(data, pki.ca_cert, tmp_path)
    assert ok, output


def test_signing_with_a_key_that_is_not_the_certificates_fails_verification(settings, pki, now):
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=now)
    mismatched = etree.tostring(sign_vihf(assertion, pki.untrusted_cachet_key.read_bytes(),
                                          pki.cachet_cert.read_bytes()))
    with pytest.raises(VihfError, match="signature does not verify"):
        verify_vihf(mismatched, pki.ca_cert.read_bytes(), now=now)


def test_logs_never_hold_the_ins(settings, material, pki, now, caplog):
    caplog.set_level(logging.DEBUG)          # signxml dumps canonical XML (with the INS) at DEBUG: filtered
    with structlog.testing.capture_logs() as logs:
        data = signed_bytes(settings, material, now, secret=True)
        verify_vihf(data, pki.ca_cert.read_bytes(), now=now)
    assert [entry["event"] for entry in logs] == ["vihf.signed", "vihf.verified"]
    assert all(INS not in repr(entry) for entry in logs)
    assert INS not in caplog.text


def test_an_element_inside_a_parsed_envelope_is_accepted(settings, material, pki, now):
    envelope = etree.fromstring(embed(signed_bytes(settings, material, now) + b"trailing text"))
    assertion = envelope.find(f".//{{{SAML}}}Assertion")
    assert verify_vihf(assertion, pki.ca_cert.read_bytes(), now=now).ins == (INS, INS_TEST_OID)


def test_a_corrupt_certificate_is_a_vihf_error(settings, material, pki, now):
    signed = etree.fromstring(signed_bytes(settings, material, now))
    signed.find(f".//{{{DS}}}X509Certificate").text = "not*base64"
    with pytest.raises(VihfError, match="X509Certificate"):
        verify_vihf(etree.tostring(signed), pki.ca_cert.read_bytes(), now=now)


def test_a_cachet_certificate_expired_at_the_time_of_use_is_refused(settings, material, pki, now):
    later = now + timedelta(days=31)                    # the test certificates live 30 days
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=later)
    data = etree.tostring(sign_vihf(assertion, material.key_pem, material.cert_pem))
    with pytest.raises(VihfError, match="does not chain"):
        verify_vihf(data, pki.ca_cert.read_bytes(), now=later)
