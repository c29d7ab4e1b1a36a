"""The VIHF: the signed SAML 2.0 assertion that vouches for every DMP request.

The DMP does not authenticate a person behind an automated deposit: the care structure
vouches for it with a VIHF ("Vecteur d'Identification et d'Habilitation Formelles") placed
in the WS-Security header and signed with the structure's *certificat de cachet*
(french-interop.md §4; ANS IG "transmission de documents CDA en HL7 v2", mapping.md, whose
anonymised example fixes the shape copied here):

- ``Assertion`` (default namespace SAML 2.0, ``xsi`` declared), ``ID`` = ``_<uuid>``,
  ``IssueInstant`` in UTC with milliseconds, ``Version="2.0"``;
- ``Issuer`` (Format X509SubjectName) = the cachet certificate's subject DN, its RDNs in
  certificate order as the example writes it (``C=FR, ST=..., O=..., OU=..., CN=...``),
  each RDN escaped as RFC 4514 says;
- ``Signature`` right after ``Issuer`` (the place SAML requires): enveloped XML-DSig,
  exclusive c14n, RSA-SHA256, SHA-256 digest, ``Reference URI="#<ID>"``, the certificate in
  ``KeyInfo/X509Data``;
- ``Subject/NameID`` = the person responsible for the automated processing;
  ``Conditions`` NotBefore / NotOnOrAfter (optional in the IG; a short life limits replay);
  ``AuthnStatement`` with ``AuthnContextClassRef`` "unspecified";
- ``AttributeStatement``: attributes without NameFormat, plain-text values, and HL7 ``CE``
  elements (``xsi:type="CE"``, namespace ``urn:hl7-org:v3``) for purposeofuse, role and
  confidentiality-code, in the example's order.

Choices where the sources are silent or disagree:

- ``VIHF_Version`` defaults to ``3.0`` as in the IG's example; the IG's table says ``4.0``.
  The DSFT DMP (not in our corpus) decides: ``vihf_version`` accepts both.
- The example's reference transform carries ``InclusiveNamespaces PrefixList="ds saml #default
  xsi"``. It is left out here: those prefixes make the digest depend on namespace
  declarations of the SOAP envelope around the assertion (an envelope declaring ``ds`` or
  ``saml`` would break the signature), and nothing in the assertion needs them (the ``xsi``
  and default declarations sit on the assertion itself). Plain exclusive c14n keeps the
  signature valid wherever the assertion is embedded.
- Connexion secrète: the confidentiality-code attribute holds
  ``INVISIBLE_REPRESENTANTS_LEGAUX`` / ``1.2.250.1.213.1.1.4.13`` (TRE_A07), the one code the
  DMP handles there per third-party DMP clients; the element name ``ConfidentialityCode``
  follows the pattern of ``PurposeOfUse`` / ``Role``.
- The assertion carries no patient data but the INS (the DMP needs it as resource-id); the INS
  never appears in a log line or an error message.

Configuration: :mod:`channels.xds.vihf_settings`.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml import (CanonicalizationMethod, DigestAlgorithm, InvalidCertificate, InvalidDigest, InvalidInput,
                     InvalidSignature, SignatureConfiguration, SignatureConstructionMethod, SignatureMethod,
                     XMLSigner, XMLVerifier)
from signxml.exceptions import SignXMLException

from channels.xds.vihf_settings import (AUTOMATE, OID_PATTERN, PURPOSES, VIHF_VERSIONS, CodedValue, SigningMaterial,
                                        VihfSettings, from_config)
from router.errors import ValidationError
from router.identity import INS_KINDS, nir_key_ok

__all__ = [
    "AUTOMATE", "PURPOSES", "SECRET_CONNECTION", "VIHF_VERSIONS", "CodedValue", "SigningMaterial",
    "VerifiedVihf", "VihfError", "VihfSettings", "build_vihf", "from_config", "issuer_dn", "sign_vihf",
    "verify_vihf",
]

log = structlog.get_logger(__name__)


def _drop_canonical_dumps(record: logging.LogRecord) -> bool:
    """signxml logs whole canonicalised documents at DEBUG: with a VIHF that would log the INS."""
    return not str(record.msg).startswith("Canonicalized string")


logging.getLogger("signxml.processor").addFilter(_drop_canonical_dumps)

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
HL7 = "urn:hl7-org:v3"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
X509_SUBJECT_NAME = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
AUTHN_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"

VIHF_VERSION = "VIHF_Version"
AUTHENTIFICATION_MODE = "Authentification_Mode"
SECTEUR_ACTIVITE = "Secteur_Activite"
RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
RESSOURCE_URN = "Ressource_URN"
SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
IDENTIFIANT_STRUCTURE = "Identifiant_Structure"
LPS_VERSION = "LPS_Version"
LPS_ID = "LPS_ID"
LPS_NOM = "LPS_Nom"
LPS_ID_HOMOLOGATION_DMP = "LPS_ID_HOMOLOGATION_DMP"
PURPOSE_OF_USE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
CONFIDENTIALITY_CODE = "urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code"

DEFAULT_VALIDITY = timedelta(minutes=5)

#: The confidentiality code of a connexion secrète (TRE_A07-StatutVisibiliteDocument).
SECRET_CONNECTION = CodedValue("INVISIBLE_REPRESENTANTS_LEGAUX", "1.2.250.1.213.1.1.4.13",
                               "Non visible par les représentants légaux du patient")


class VihfError(ValidationError):
    """A VIHF that does not verify: bad signature, untrusted certificate, expired, malformed."""


# --- building ----------------------------------------------------------------------

def issuer_dn(cert_pem: bytes | x509.Certificate) -> str:
    """The certificate's subject as the VIHF Issuer writes it: RDNs in certificate order, ", "-separated."""
    cert = cert_pem if isinstance(cert_pem, x509.Certificate) else x509.load_pem_x509_certificate(cert_pem)
    return ", ".join(rdn.rfc4514_string() for rdn in cert.subject.rdns)


def _instant(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _attribute(statement: etree._Element, name: str, value: str | tuple[str, CodedValue]) -> None:
    attribute = etree.SubElement(statement, f"{{{SAML}}}Attribute", Name=name)
    holder = etree.SubElement(attribute, f"{{{SAML}}}AttributeValue")
    if isinstance(value, str):
        holder.text = value
        return
    element_name, coded = value
    ce = etree.SubElement(holder, f"{{{HL7}}}{element_name}", nsmap={None: HL7})
    ce.set("code", coded.code)
    ce.set("codeSystem", coded.code_system)
    if coded.code_system_name:
        ce.set("codeSystemName", coded.code_system_name)
    if coded.display:
        ce.set("displayName", coded.display)
    ce.set(f"{{{XSI}}}type", "CE")


def build_vihf(settings: VihfSettings, *, ins: str, ins_oid: str, secret_connection: bool, now: datetime,
               assertion_id: str | None = None, validity: timedelta = DEFAULT_VALIDITY) -> etree._Element:
    """The unsigned assertion for one request about the patient ``ins`` (15-character matricule)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if ins_oid not in INS_KINDS:
        raise ValidationError(f"VIHF: {ins_oid!r} is not an INS OID ({', '.join(INS_KINDS)})")
    if not nir_key_ok(ins):
        raise ValidationError("VIHF: the INS is not a 15-character matricule with a valid key")
    if validity <= timedelta(0):
        raise ValueError("validity must be positive")
    assertion_id = assertion_id or f"_{uuid.uuid4()}"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", assertion_id):
        raise ValueError(f"assertion_id must be an XML NCName, got {assertion_id!r}")
    issued = _instant(now)

    assertion = etree.Element(f"{{{SAML}}}Assertion", nsmap={None: SAML, "xsi": XSI})
    assertion.set("ID", assertion_id)
    assertion.set("IssueInstant", issued)
    assertion.set("Version", "2.0")
    issuer = etree.SubElement(assertion, f"{{{SAML}}}Issuer", Format=X509_SUBJECT_NAME)
    issuer.text = issuer_dn(settings.signing_cert.read_bytes())
    subject = etree.SubElement(assertion, f"{{{SAML}}}Subject")
    etree.SubElement(subject, f"{{{SAML}}}NameID").text = settings.subject_id
    etree.SubElement(assertion, f"{{{SAML}}}Conditions", NotBefore=issued, NotOnOrAfter=_instant(now + validity))
    authn = etree.SubElement(assertion, f"{{{SAML}}}AuthnStatement", AuthnInstant=issued)
    context = etree.SubElement(authn, f"{{{SAML}}}AuthnContext")
    etree.SubElement(context, f"{{{SAML}}}AuthnContextClassRef").text = AUTHN_UNSPECIFIED

    statement = etree.SubElement(assertion, f"{{{SAML}}}AttributeStatement")
    values: list[tuple[str, str | tuple[str, CodedValue]]] = [
        (VIHF_VERSION, settings.vihf_version),
        (AUTHENTIFICATION_MODE, "INDIRECTE"),
        (SECTEUR_ACTIVITE, settings.activity_sector),
        (RESOURCE_ID, f"{ins.upper()}^^^&{ins_oid}&ISO^NH"),
        (RESSOURCE_URN, "urn:dmp"),
        (SUBJECT_ID, settings.subject_name),
        (IDENTIFIANT_STRUCTURE, settings.structure_id),
        (LPS_VERSION, settings.lps_version),
    ]
    if settings.lps_id:
        values.append((LPS_ID, settings.lps_id))
    values += [(LPS_NOM, settings.lps_name), (LPS_ID_HOMOLOGATION_DMP, settings.lps_homologation_id),
               (PURPOSE_OF_USE, ("PurposeOfUse", settings.purpose_of_use))]
    values += [(ROLE, ("Role", role)) for role in settings.roles]
    if secret_connection:
        values.append((CONFIDENTIALITY_CODE, ("ConfidentialityCode", SECRET_CONNECTION)))
    for name, value in values:
        _attribute(statement, name, value)
    return assertion


# --- signing -----------------------------------------------------------------------

def sign_vihf(assertion: etree._Element, key: bytes | rsa.RSAPrivateKey, cert_pem: bytes,
              password: bytes | None = None) -> etree._Element:
    """A signed copy of ``assertion``: enveloped signature placed right after ``Issuer``.

    ``key`` is the PEM (with its ``password``) or the key already parsed (:attr:`SigningMaterial.private_key`,
    what the DMP channel passes: parsing it is the costly part)."""
    if assertion.tag != f"{{{SAML}}}Assertion" or not assertion.get("ID"):
        raise ValueError("sign_vihf takes a SAML 2.0 Assertion with an ID")
    document = etree.fromstring(etree.tostring(assertion, with_tail=False))
    for old in document.findall(f"{{{DS}}}Signature"):
        document.remove(old)
    issuer = document.find(f"{{{SAML}}}Issuer")
    if issuer is None:
        raise ValueError("the assertion has no Issuer")
    placeholder = etree.Element(f"{{{DS}}}Signature", nsmap={None: DS}, Id="placeholder")
    issuer.addnext(placeholder)
    signer = XMLSigner(method=SignatureConstructionMethod.enveloped,
                       signature_algorithm=SignatureMethod.RSA_SHA256,
                       digest_algorithm=DigestAlgorithm.SHA256,
                       c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signer.namespaces = {None: DS}          # <Signature xmlns="...xmldsig#">, as in the ANS example
    try:
        signed = signer.sign(document, key=key, passphrase=password, cert=cert_pem,
                             reference_uri=f"#{document.get('ID')}", id_attribute="ID")
    except (SignXMLException, ValueError, TypeError) as exc:
        raise ValueError(f"cannot sign the VIHF: {exc}") from exc
    # Serialise once and parse back so callers get a plain tree whose namespaces match the bytes.
    result = etree.fromstring(etree.tostring(signed))
    log.info("vihf.signed", assertion_id=result.get("ID"), issuer=issuer.text)
    return result


# --- verifying (the DMP test double) ---------------------------------------------------

@dataclass(frozen=True)
class VerifiedVihf:
    """What a verified VIHF says; attribute values are text or :class:`CodedValue`."""

    assertion_id: str
    issuer: str
    subject_id: str
    issue_instant: datetime
    not_before: datetime
    not_on_or_after: datetime
    signer: x509.Certificate = field(repr=False)
    attributes: dict[str, tuple[str | CodedValue, ...]] = field(repr=False)

    def value(self, name: str) -> str | CodedValue | None:
        """The single value of attribute ``name`` (None when absent)."""
        values = self.attributes.get(name, ())
        return values[0] if values else None

    @property
    def ins(self) -> tuple[str, str]:
        """(matricule, OID) from the resource-id ``<INS>^^^&<oid>&ISO^NH``."""
        value = self.value(RESOURCE_ID)
        text = value if isinstance(value, str) else ""
        match = re.fullmatch(r"([0-9AB]{15})\^\^\^&(" + OID_PATTERN + r")&ISO\^NH", text)
        if not match:
            raise VihfError("VIHF: resource-id is not an INS in CX form <INS>^^^&<oid>&ISO^NH")
        return match.group(1), match.group(2)

    @property
    def secret_connection(self) -> bool:
        return any(isinstance(v, CodedValue) and v.code == SECRET_CONNECTION.code
                   for v in self.attributes.get(CONFIDENTIALITY_CODE, ()))


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _find_assertion(data: etree._Element | bytes) -> etree._Element:
    try:
        root = etree.fromstring(bytes(data), _PARSER) if isinstance(data, (bytes, bytearray)) else data
    except etree.XMLSyntaxError as exc:
        raise VihfError(f"VIHF: not well-formed XML ({exc})") from exc
    if root.tag == f"{{{SAML}}}Assertion":
        found = [root]
    else:
        found = root.findall(f".//{{{SAML}}}Assertion")
    if len(found) != 1:
        raise VihfError(f"VIHF: expected one SAML 2.0 Assertion, found {len(found)}")
    # Verify the assertion on its own: exclusive c14n makes its signature independent of the envelope.
    return etree.fromstring(etree.tostring(found[0], with_tail=False), _PARSER)


def _time(value: str | None, what: str) -> datetime:
    if not value:
        raise VihfError(f"VIHF: {what} is missing")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise VihfError(f"VIHF: {what} is not an xs:dateTime") from exc
    if moment.tzinfo is None:
        raise VihfError(f"VIHF: {what} has no time zone")
    return moment


def _trusted_signer(signature: etree._Element, ca_cert_pem: bytes, now: datetime) -> x509.Certificate:
    """The certificate in KeyInfo, once it chains to the CA and allows digital signatures at ``now``."""
    try:
        certs = [x509.load_der_x509_certificate(base64.b64decode("".join((c.text or "").split()), validate=True))
                 for c in signature.findall(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")]
    except ValueError as exc:          # binascii.Error is a ValueError
        raise VihfError("VIHF: an X509Certificate in KeyInfo is not a base64 DER certificate") from exc
    if not certs:
        raise VihfError("VIHF: no X509Certificate in the signature's KeyInfo")

    def digital_signature(policy: Any, cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
        if usage is None or not usage.digital_signature:
            raise ValueError("KeyUsage does not allow digitalSignature")

    ee_policy = x509.verification.ExtensionPolicy.permit_all().require_present(
        x509.KeyUsage, x509.verification.Criticality.AGNOSTIC, digital_signature)
    verifier = (x509.verification.PolicyBuilder()
                .store(x509.verification.Store(x509.load_pem_x509_certificates(ca_cert_pem)))
                .time(now)
                .extension_policies(ee_policy=ee_policy,
                                    ca_policy=x509.verification.ExtensionPolicy.webpki_defaults_ca())
                .build_client_verifier())
    try:
        verifier.verify(certs[0], certs[1:])
    except x509.verification.VerificationError as exc:
        raise VihfError(f"VIHF: the signing certificate does not chain to the trusted CA ({exc})") from exc
    return certs[0]


def _values(attribute: etree._Element) -> tuple[str | CodedValue, ...]:
    values: list[str | CodedValue] = []
    for holder in attribute.findall(f"{{{SAML}}}AttributeValue"):
        children = [c for c in holder if isinstance(c.tag, str)]
        if children:
            ce = children[0]
            values.append(CodedValue(ce.get("code", ""), ce.get("codeSystem", ""), ce.get("displayName", ""),
                                     ce.get("codeSystemName", "")))
        else:
            values.append((holder.text or "").strip())
    return tuple(values)


def verify_vihf(data: etree._Element | bytes, ca_cert_pem: bytes, *, now: datetime | None = None,
                leeway: timedelta = timedelta(0)) -> VerifiedVihf:
    """Check a VIHF (alone or inside a SOAP envelope) as the DMP would; raise :class:`VihfError` otherwise.

    Checks: one enveloped RSA-SHA256 / SHA-256 exclusive-c14n signature whose reference is the
    assertion itself; the KeyInfo certificate chains to ``ca_cert_pem`` and is valid at ``now``;
    Issuer = that certificate's DN; IssueInstant and Conditions hold at ``now`` (± ``leeway``).
    Everything returned is read from the signed bytes, not from the input document.
    """
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    assertion = _find_assertion(data)
    assertion_id = assertion.get("ID") or ""
    signature = assertion.find(f"{{{DS}}}Signature")
    if signature is None:
        raise VihfError("VIHF: the assertion is not signed (no Signature child)")
    signer = _trusted_signer(signature, ca_cert_pem, now)
    config = SignatureConfiguration(
        location="./", expect_references=1,
        signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
        verification_time=now)
    try:
        result = XMLVerifier().verify(assertion, x509_cert=signer, id_attribute="ID", expect_config=config)
    except (InvalidSignature, InvalidDigest, InvalidCertificate, InvalidInput) as exc:
        raise VihfError(f"VIHF: signature does not verify ({exc})") from exc
    except SignXMLException as exc:
        raise VihfError(f"VIHF: signature cannot be checked ({exc})") from exc
    signed = result.signed_xml
    signed_info = result.signature_xml.find(f"{{{DS}}}SignedInfo")
    reference = signed_info.find(f"{{{DS}}}Reference") if signed_info is not None else None
    c14n = signed_info.find(f"{{{DS}}}CanonicalizationMethod") if signed_info is not None else None
    if signed is None or signed.tag != f"{{{SAML}}}Assertion" or not assertion_id \
            or reference is None or reference.get("URI") != f"#{assertion_id}" \
            or signed.get("ID") != assertion_id:
        raise VihfError("VIHF: the signature does not cover the assertion itself")
    if c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise VihfError("VIHF: SignedInfo is not canonicalised with exclusive c14n")

    issuer = (signed.findtext(f"{{{SAML}}}Issuer") or "").strip()
    if issuer != issuer_dn(signer):
        raise VihfError("VIHF: Issuer is not the signing certificate's DN")
    issued = _time(signed.get("IssueInstant"), "IssueInstant")
    conditions = signed.find(f"{{{SAML}}}Conditions")
    not_before = _time(conditions.get("NotBefore"), "Conditions/@NotBefore") \
        if conditions is not None and conditions.get("NotBefore") else issued
    not_after = _time(conditions.get("NotOnOrAfter"), "Conditions/@NotOnOrAfter") \
        if conditions is not None and conditions.get("NotOnOrAfter") else issued + DEFAULT_VALIDITY
    if issued > now + leeway or not_before > now + leeway:
        raise VihfError(f"VIHF: not valid yet at {now.isoformat()}")
    if not_after <= now - leeway:
        raise VihfError(f"VIHF: expired at {not_after.isoformat()}")

    attributes: dict[str, tuple[str | CodedValue, ...]] = {}
    for attribute in signed.iterfind(f"{{{SAML}}}AttributeStatement/{{{SAML}}}Attribute"):
        name = attribute.get("Name", "")
        attributes[name] = attributes.get(name, ()) + _values(attribute)
    verified = VerifiedVihf(
        assertion_id=assertion_id, issuer=issuer,
        subject_id=(signed.findtext(f"{{{SAML}}}Subject/{{{SAML}}}NameID") or "").strip(),
        issue_instant=issued, not_before=not_before, not_on_or_after=not_after, signer=signer,
        attributes=attributes)
    log.info("vihf.verified", assertion_id=assertion_id, issuer=issuer)
    return verified
