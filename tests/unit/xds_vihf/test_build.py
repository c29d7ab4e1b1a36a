"""channels.xds.vihf.build_vihf / sign_vihf: the assertion's shape, compared with the ANS example."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from channels.xds.vihf import (CONFIDENTIALITY_CODE, DS, HL7, RESOURCE_ID, ROLE, SAML, XSI, CodedValue, build_vihf,
                               from_config, sign_vihf)
from router.errors import ValidationError
from tests.support.fixtures import require_fixture
from channels.testing.cachet_pki import CACHET_DN
from tests.unit.xds_vihf.conftest import INS, INS_PROD_OID, INS_TEST_OID, table

NOW = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=timezone.utc)

#: The attributes of french-interop.md §4 (confidentiality-code only for a connexion secrète).
SPEC_ATTRIBUTES = [
    "VIHF_Version", "Authentification_Mode", "Secteur_Activite",
    "urn:oasis:names:tc:xacml:2.0:resource:resource-id", "Ressource_URN",
    "urn:oasis:names:tc:xspa:1.0:subject:subject-id", "Identifiant_Structure", "LPS_Version", "LPS_ID",
    "LPS_Nom", "LPS_ID_HOMOLOGATION_DMP", "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
    "urn:oasis:names:tc:xacml:2.0:subject:role",
    "urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code",
]


def q(local: str, ns: str = SAML) -> str:
    return f"{{{ns}}}{local}"


def attributes(assertion) -> dict[str, list[etree._Element]]:
    found: dict[str, list[etree._Element]] = {}
    for attribute in assertion.iter(q("Attribute")):
        found.setdefault(attribute.get("Name"), []).append(attribute)
    return found


def only_value(assertion, name: str):
    (attribute,) = attributes(assertion)[name]
    (value,) = attribute.findall(q("AttributeValue"))
    return value


def local_names(element) -> list[str]:
    return [etree.QName(child).localname for child in element if isinstance(child.tag, str)]


@pytest.fixture(scope="module")
def ans_example():
    path = require_fixture("ig-extracts", "VIHF_assertion_example__from_input_pagecontent_mapping.md.xml")
    return etree.parse(str(path)).getroot().find(q("Assertion"))


@pytest.fixture
def signed(settings):
    material = settings.signing_material({})
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=NOW)
    return sign_vihf(assertion, material.key_pem, material.cert_pem)


def test_assertion_frame_matches_the_ans_example(signed, ans_example):
    assert signed.tag == ans_example.tag
    assert signed.nsmap == ans_example.nsmap == {None: SAML, "xsi": XSI}
    assert sorted(signed.attrib) == sorted(ans_example.attrib) == ["ID", "IssueInstant", "Version"]
    assert signed.get("Version") == ans_example.get("Version") == "2.0"
    instant = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(instant, signed.get("IssueInstant")) and re.fullmatch(instant, ans_example.get("IssueInstant"))
    # Ours adds Conditions (optional in the IG), in its schema place; everything else is in the example's order.
    assert local_names(signed) == ["Issuer", "Signature", "Subject", "Conditions", "AuthnStatement",
                                   "AttributeStatement"]
    assert [n for n in local_names(signed) if n != "Conditions"] == local_names(ans_example)
    assert signed.find(q("Issuer")).attrib == ans_example.find(q("Issuer")).attrib
    assert local_names(signed.find(q("Subject"))) == local_names(ans_example.find(q("Subject"))) == ["NameID"]
    name_id = f"{q('Subject')}/{q('NameID')}"
    assert dict(signed.find(name_id).attrib) == dict(ans_example.find(name_id).attrib) == {}   # no Format
    ref = "AuthnStatement/AuthnContext/AuthnContextClassRef"
    path = "/".join(q(p) for p in ref.split("/"))
    assert signed.findtext(path) == ans_example.findtext(path).strip()
    assert signed.find(q("AuthnStatement")).get("AuthnInstant") == signed.get("IssueInstant")


def test_every_example_attribute_has_the_example_name_format_and_value_type(settings, ans_example):
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=True, now=NOW)
    ours, theirs = attributes(assertion), attributes(ans_example)
    assert set(theirs) <= set(ours)
    assert set(ours) - set(theirs) == {CONFIDENTIALITY_CODE}
    assert list(ours)[:len(theirs)] == list(theirs)          # the example's order, then confidentiality-code
    for name, (example_attribute,) in theirs.items():
        (attribute,) = ours[name]
        assert dict(attribute.attrib) == dict(example_attribute.attrib) == {"Name": name}   # no NameFormat
        (value,) = attribute.findall(q("AttributeValue"))
        (example_value,) = example_attribute.findall(q("AttributeValue"))
        assert dict(value.attrib) == dict(example_value.attrib) == {}                       # no xsi:type
        example_children = [c for c in example_value if isinstance(c.tag, str)]
        children = list(value)
        if not example_children:
            assert children == [] and value.text and value.text.strip() == value.text, name
            continue
        (ce,), (example_ce,) = children, example_children
        assert ce.tag == example_ce.tag and etree.QName(ce).namespace == HL7
        assert ce.nsmap[None] == HL7
        assert sorted(ce.attrib) == sorted(example_ce.attrib), name
        for key in ("code", "codeSystem", "codeSystemName", "displayName", f"{{{XSI}}}type"):
            assert ce.get(key) == example_ce.get(key), (name, key)


def test_signature_uses_the_example_algorithms(signed, ans_example):
    ours, theirs = signed.find(q("Signature", DS)), ans_example.find(q("Signature", DS))
    assert ours.nsmap[None] == theirs.nsmap[None] == DS               # <Signature xmlns="...xmldsig#">
    assert local_names(ours) == local_names(theirs) == ["SignedInfo", "SignatureValue", "KeyInfo"]

    def algorithms(signature):
        info = signature.find(q("SignedInfo", DS))
        return (info.find(q("CanonicalizationMethod", DS)).get("Algorithm"),
                info.find(q("SignatureMethod", DS)).get("Algorithm"),
                [t.get("Algorithm") for t in info.iter(q("Transform", DS))],
                info.find(f"{q('Reference', DS)}/{q('DigestMethod', DS)}").get("Algorithm"))

    assert algorithms(ours) == algorithms(theirs)
    for assertion, signature in ((signed, ours), (ans_example, theirs)):
        reference = signature.find(f"{q('SignedInfo', DS)}/{q('Reference', DS)}")
        assert reference.get("URI") == "#" + assertion.get("ID")
        assert signature.find(f"{q('KeyInfo', DS)}/{q('X509Data', DS)}/{q('X509Certificate', DS)}") is not None
    # The example's InclusiveNamespaces is deliberately left out (see the module docstring).
    assert theirs.find(".//{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces") is not None
    assert ours.find(".//{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces") is None


def test_every_spec_attribute_is_present(settings):
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=True, now=NOW)
    assert list(attributes(assertion)) == SPEC_ATTRIBUTES
    assert only_value(assertion, "VIHF_Version").text == "3.0"
    assert only_value(assertion, "Authentification_Mode").text == "INDIRECTE"
    assert only_value(assertion, "Secteur_Activite").text == "SA01^1.2.250.1.71.4.2.4"
    assert only_value(assertion, "Ressource_URN").text == "urn:dmp"
    assert only_value(assertion, "Identifiant_Structure").text == settings.structure_id
    assert only_value(assertion, "urn:oasis:names:tc:xspa:1.0:subject:subject-id").text == settings.subject_name
    assert only_value(assertion, "LPS_Nom").text == "Liaison"
    assert only_value(assertion, "LPS_Version").text == settings.lps_version
    assert only_value(assertion, "LPS_ID").text == "1.2.250.1.999.42.1"
    assert only_value(assertion, "LPS_ID_HOMOLOGATION_DMP").text == "HOMOL-TEST-0001"
    assert assertion.findtext(f"{q('Subject')}/{q('NameID')}") == settings.subject_id


def test_lps_id_is_left_out_when_not_configured(pki):
    settings = from_config(table(pki, lps_id=None), env={})
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=NOW)
    assert "LPS_ID" not in attributes(assertion)


@pytest.mark.parametrize("oid", [INS_PROD_OID, INS_TEST_OID])
def test_resource_id_is_the_ins_in_cx_form_under_its_oid(settings, oid):
    assertion = build_vihf(settings, ins=INS, ins_oid=oid, secret_connection=False, now=NOW)
    assert only_value(assertion, RESOURCE_ID).text == f"{INS}^^^&{oid}&ISO^NH"
    assert f"{INS}^^^&amp;{oid}&amp;ISO^NH".encode() in etree.tostring(assertion)


def test_secret_connection_is_carried_by_the_confidentiality_code(settings):
    secret = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=True, now=NOW)
    ce = only_value(secret, CONFIDENTIALITY_CODE)[0]
    assert ce.tag == q("ConfidentialityCode", HL7)
    assert (ce.get("code"), ce.get("codeSystem"), ce.get(f"{{{XSI}}}type")) == \
        ("INVISIBLE_REPRESENTANTS_LEGAUX", "1.2.250.1.213.1.1.4.13", "CE")
    normal = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=NOW)
    assert CONFIDENTIALITY_CODE not in attributes(normal)


def test_a_second_role_occurrence_holds_the_specialty(settings):
    doctor = replace(settings, roles=(CodedValue("10", "1.2.250.1.71.1.2.7", "Médecin"),
                                      CodedValue("SPEC01", "1.2.250.1.999.7.1", "Spécialité fictive")))
    assertion = build_vihf(doctor, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=NOW)
    roles = [a.find(f"{q('AttributeValue')}/{q('Role', HL7)}") for a in attributes(assertion)[ROLE]]
    assert [(r.get("code"), r.get("codeSystem")) for r in roles] == [("10", "1.2.250.1.71.1.2.7"),
                                                                     ("SPEC01", "1.2.250.1.999.7.1")]


def test_issuer_is_the_cachet_dn_in_certificate_order(settings):
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=NOW)
    assert assertion.findtext(q("Issuer")) == CACHET_DN
    assert CACHET_DN.startswith("C=FR, ST=Paris (75), ") and CACHET_DN.endswith(", CN=DMP SIGN TEST")


def test_times_and_identifier(settings):
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=NOW,
                           assertion_id="_fixed-id", validity=timedelta(minutes=2))
    assert assertion.get("ID") == "_fixed-id"
    assert assertion.get("IssueInstant") == "2025-03-14T09:26:53.589Z"
    conditions = assertion.find(q("Conditions"))
    assert (conditions.get("NotBefore"), conditions.get("NotOnOrAfter")) == \
        ("2025-03-14T09:26:53.589Z", "2025-03-14T09:28:53.589Z")
    local = NOW.astimezone(timezone(timedelta(hours=1)))
    again = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=local)
    assert again.get("IssueInstant") == "2025-03-14T09:26:53.589Z"          # always written in UTC
    fresh = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=NOW)
    assert re.fullmatch(r"_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", fresh.get("ID"))


def test_vihf_version_4_can_be_chosen(pki):
    settings = from_config(table(pki, vihf_version="4.0"), env={})
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=NOW)
    assert only_value(assertion, "VIHF_Version").text == "4.0"


def test_the_ins_is_the_only_patient_datum(settings):
    assertion = build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=True, now=NOW)
    texts = [t for t in assertion.itertext() if t.strip()]
    values = [v for e in assertion.iter() for v in e.attrib.values()]
    assert [t for t in texts + values if INS in t] == [f"{INS}^^^&{INS_TEST_OID}&ISO^NH"]


@pytest.mark.parametrize(("ins", "oid"), [
    (INS[:13] + "00", INS_TEST_OID),             # wrong key
    (INS[:14], INS_TEST_OID),                    # too short
    (INS, "1.2.250.1.213.1.4.2"),                # the retired INS-C OID
])
def test_a_bad_ins_is_refused_without_echoing_it(settings, ins, oid):
    with pytest.raises(ValidationError) as caught:
        build_vihf(settings, ins=ins, ins_oid=oid, secret_connection=False, now=NOW)
    assert ins not in str(caught.value)


def test_a_naive_time_is_refused(settings):
    with pytest.raises(ValueError, match="timezone"):
        build_vihf(settings, ins=INS, ins_oid=INS_TEST_OID, secret_connection=False, now=datetime(2025, 3, 14))
