"""A throw-away PKI for tests and ``liaison demo``: never for production.

MSSanté relays authenticate the platform with a client certificate issued by
IGC-Santé and show a server certificate from the same hierarchy. Nothing of
that exists on a developer's machine, so the test suite and the demo mint a
small look-alike with ``cryptography``:

- a test CA that signs the server certificate (``serverAuth``, SANs for the
  names and IPs the client dials) and the client certificate (``clientAuth``);
- a second, unrelated CA that signs ``untrusted_client_*``, to show a relay
  refusing a certificate it cannot chain to its CA.

Keys are EC P-256 (fast to generate on slow machines; accepted by Postfix,
OpenSSL and Python's ``ssl``). Files are PEM; keys are unencrypted and
written with mode 0600 (Postfix loads them as root before dropping privileges).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestPki", "make_test_pki"]

_VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True)
class TestPki:
    """Paths of the PEM files written by :func:`make_test_pki`."""

    __test__ = False  # not a pytest test class, whatever its name says

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    untrusted_ca_cert: Path
    untrusted_client_cert: Path
    untrusted_client_key: Path


def make_test_pki(directory: Path, *, server_names: Sequence[str] = ("localhost",),
                  server_ips: Sequence[str] = ("127.0.0.1",)) -> TestPki:
    """Write a test CA, a server and a client certificate, and an untrusted client, into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)

    ca_key = _new_key()
    ca = ca_certificate("Liaison Test CA", ca_key, now)
    other_ca_key = _new_key()
    other_ca = ca_certificate("Untrusted Test CA", other_ca_key, now)

    server_key = _new_key()
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
    server = _leaf_certificate(
        common_name=(list(server_names) or list(server_ips) or ["localhost"])[0],
        key=server_key, issuer=ca, issuer_key=ca_key, now=now,
        usage=ExtendedKeyUsageOID.SERVER_AUTH, alt_names=alt_names,
    )
    client_key = _new_key()
    client = _leaf_certificate(
        common_name="pfi.hopital-test.mssante.fr", key=client_key, issuer=ca, issuer_key=ca_key,
        now=now, usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        alt_names=[x509.DNSName("pfi.hopital-test.mssante.fr")],
    )
    rogue_key = _new_key()
    rogue = _leaf_certificate(
        common_name="pfi.hopital-test.mssante.fr", key=rogue_key, issuer=other_ca,
        issuer_key=other_ca_key, now=now, usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        alt_names=[x509.DNSName("pfi.hopital-test.mssante.fr")],
    )

    pki = TestPki(
        directory=directory,
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        untrusted_ca_cert=directory / "untrusted-ca.pem",
        untrusted_client_cert=directory / "untrusted-client.pem",
        untrusted_client_key=directory / "untrusted-client.key",
    )
    _write_cert(pki.ca_cert, ca)
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.server_cert, server)
    _write_key(pki.server_key, server_key)
    _write_cert(pki.client_cert, client)
    _write_key(pki.client_key, client_key)
    _write_cert(pki.untrusted_ca_cert, other_ca)
    _write_cert(pki.untrusted_client_cert, rogue)
    _write_key(pki.untrusted_client_key, rogue_key)
    return pki


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Liaison test"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def ca_certificate(common_name: str, key, now: dt.datetime) -> x509.Certificate:
    """A self-signed test CA (EC or RSA key), valid from ``now`` for the test validity."""
    name = _name(common_name)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_certificate(*, common_name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate,
                      issuer_key: ec.EllipticCurvePrivateKey, now: dt.datetime,
                      usage: x509.ObjectIdentifier, alt_names: list[x509.GeneralName]) -> x509.Certificate:
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(issuer.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                       critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o644)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.chmod(0o600)
