"""A throw-away "certificat de cachet" PKI for the VIHF tests (and the DMP test double).

IGC-Santé issues each care structure an organisation signing certificate (*cachet*) that
signs its VIHF assertions. This mints a look-alike with ``cryptography``: an RSA test CA,
a cachet certificate under it (subject in the ANS example's order ``C, ST, O, OU, CN``), the
same key again encrypted with :data:`KEY_PASSWORD`, a cachet from an unrelated CA, and an
EC cachet (which the settings must refuse). RSA because the VIHF is signed with RSA-SHA256;
2048 bits to stay quick. The CA and certificates come from the builders of
:mod:`channels.testing.pki`; only the cachet's DN, key usage and RSA keys are its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from channels.testing.pki import (ca_certificate, issue_certificate, issue_time, key_usage, new_ec_key,
                                  write_certificate, write_key)

__all__ = ["CACHET_DN", "KEY_PASSWORD", "CachetPki", "make_cachet_pki"]

KEY_PASSWORD = b"cachet-test-password"
STRUCTURE_ID = "1750000012"
#: The Issuer the cachet certificate must produce (RDNs in certificate order, as the ANS example).
CACHET_DN = f"C=FR, ST=Paris (75), O=HOPITAL TEST LIAISON, OU={STRUCTURE_ID}, CN=DMP SIGN TEST"
CACHET_DN_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
    x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Paris (75)"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HOPITAL TEST LIAISON"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, STRUCTURE_ID),
    x509.NameAttribute(NameOID.COMMON_NAME, "DMP SIGN TEST"),
])
#: A cachet signs (digitalSignature) and stands behind what it signed (nonRepudiation); no TLS use.
_CACHET_USAGE = key_usage("digital_signature", "content_commitment")


@dataclass(frozen=True)
class CachetPki:
    """Paths of the PEM files written by :func:`make_cachet_pki`."""

    directory: Path
    ca_cert: Path
    cachet_cert: Path
    cachet_key: Path
    cachet_key_encrypted: Path
    untrusted_ca_cert: Path
    untrusted_cachet_cert: Path
    untrusted_cachet_key: Path
    ec_cert: Path
    ec_key: Path


def make_cachet_pki(directory: Path) -> CachetPki:
    """Write the CA, the cachet certificate and key, and an untrusted cachet into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = issue_time()
    ca_key = _rsa()
    ca = ca_certificate("Liaison Test IGC-Sante CA", ca_key, now)
    cachet_key = _rsa()
    cachet = _cachet(cachet_key, ca, ca_key, now)
    other_key = _rsa()
    other_ca = ca_certificate("Untrusted Test CA", other_key, now)
    rogue_key = _rsa()
    rogue = _cachet(rogue_key, other_ca, other_key, now)
    ec_key = new_ec_key()
    ec_cert = _cachet(ec_key, ca, ca_key, now)

    pki = CachetPki(
        directory=directory, ca_cert=directory / "ca.pem",
        cachet_cert=directory / "cachet.pem", cachet_key=directory / "cachet.key",
        cachet_key_encrypted=directory / "cachet-encrypted.key",
        untrusted_ca_cert=directory / "untrusted-ca.pem",
        untrusted_cachet_cert=directory / "untrusted-cachet.pem",
        untrusted_cachet_key=directory / "untrusted-cachet.key",
        ec_cert=directory / "ec-cachet.pem", ec_key=directory / "ec-cachet.key",
    )
    for path, cert in ((pki.ca_cert, ca), (pki.cachet_cert, cachet), (pki.untrusted_ca_cert, other_ca),
                       (pki.untrusted_cachet_cert, rogue), (pki.ec_cert, ec_cert)):
        write_certificate(path, cert)
    write_key(pki.cachet_key, cachet_key)
    write_key(pki.cachet_key_encrypted, cachet_key, KEY_PASSWORD)
    write_key(pki.untrusted_cachet_key, rogue_key)
    write_key(pki.ec_key, ec_key)
    return pki


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cachet(key, issuer: x509.Certificate, issuer_key, now) -> x509.Certificate:
    """A cachet certificate (the ANS example's DN and usages) for ``key``, signed by ``issuer``."""
    return issue_certificate(CACHET_DN_NAME, key, issuer=issuer, issuer_key=issuer_key, now=now,
                             usage=_CACHET_USAGE)


def vihf_table(pki: CachetPki, **overrides: Any) -> dict[str, Any]:
    """A complete ``[dmp.vihf]`` table for the test cachet; ``key=None`` removes a key."""
    values: dict[str, Any] = {
        "structure_id": STRUCTURE_ID,
        "activity_sector": "SA01^1.2.250.1.71.4.2.4",
        "subject_id": f"{STRUCTURE_ID}/DSI-DMP",
        "subject_name": "Liaison, moteur d'intégration, DSI",
        "lps_id": "1.2.250.1.999.42.1",
        "lps_homologation_id": "HOMOL-TEST-0001",
        "signing_cert": str(pki.cachet_cert),
        "signing_key": str(pki.cachet_key),
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}
