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

The builders below (:func:`ca_certificate`, :func:`issue_certificate`,
:func:`write_certificate`, :func:`write_key`) are also how the VIHF tests mint
their *certificat de cachet* (``channels/testing/cachet_pki.py``), so both test
PKIs share one way of making a CA and a certificate and differ only in names,
key types and key usages.
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

__all__ = ["TestPki", "ca_certificate", "issue_certificate", "issue_time", "key_usage", "make_test_pki",
           "new_ec_key", "subject_name", "write_certificate", "write_key"]

_VALIDITY = dt.timedelta(days=30)
_PLATFORM = "pfi.hopital-test.mssante.fr"     # the name the platform's client certificate carries


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
    now = issue_time()

    ca_key = new_ec_key()
    ca = ca_certificate("Liaison Test CA", ca_key, now)
    other_ca_key = new_ec_key()
    other_ca = ca_certificate("Untrusted Test CA", other_ca_key, now)

    server_key = new_ec_key()
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
    server = _tls_certificate((list(server_names) or list(server_ips) or ["localhost"])[0], server_key,
                              ca, ca_key, now, ExtendedKeyUsageOID.SERVER_AUTH, alt_names)
    client_key = new_ec_key()
    client = _tls_certificate(_PLATFORM, client_key, ca, ca_key, now, ExtendedKeyUsageOID.CLIENT_AUTH,
                              [x509.DNSName(_PLATFORM)])
    rogue_key = new_ec_key()
    rogue = _tls_certificate(_PLATFORM, rogue_key, other_ca, other_ca_key, now, ExtendedKeyUsageOID.CLIENT_AUTH,
                             [x509.DNSName(_PLATFORM)])

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
    write_certificate(pki.ca_cert, ca)
    write_key(pki.ca_key, ca_key)
    write_certificate(pki.server_cert, server)
    write_key(pki.server_key, server_key)
    write_certificate(pki.client_cert, client)
    write_key(pki.client_key, client_key)
    write_certificate(pki.untrusted_ca_cert, other_ca)
    write_certificate(pki.untrusted_client_cert, rogue)
    write_key(pki.untrusted_client_key, rogue_key)
    return pki


def issue_time() -> dt.datetime:
    """Now, less five minutes: a certificate minted now is already valid for a peer whose clock lags a little."""
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    """An EC P-256 key: quick to generate, accepted by Postfix, OpenSSL and Python's ``ssl``."""
    return ec.generate_private_key(ec.SECP256R1())


def subject_name(common_name: str) -> x509.Name:
    """``C=FR, O=Liaison test, CN=<common_name>``, the DN of every certificate of the mail PKI."""
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Liaison test"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def key_usage(*granted: str) -> x509.KeyUsage:
    """A KeyUsage extension granting only the named bits (``"digital_signature"``, ``"key_cert_sign"``...)."""
    bits = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                          "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
    unknown = set(granted) - bits.keys()
    if unknown:
        raise ValueError(f"unknown key usage: {', '.join(sorted(unknown))}")
    return x509.KeyUsage(**{**bits, **dict.fromkeys(granted, True)})


def ca_certificate(common_name: str, key, now: dt.datetime) -> x509.Certificate:
    """A self-signed test CA (EC or RSA key), valid from ``now`` for the test validity."""
    name = subject_name(common_name)
    public = key.public_key()
    return (
        _valid_from(now, name, name, public)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage("digital_signature", "key_cert_sign", "crl_sign"), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue_certificate(subject: x509.Name, key, *, issuer: x509.Certificate, issuer_key, now: dt.datetime,
                      usage: x509.KeyUsage, extended_usage: Sequence[x509.ObjectIdentifier] = (),
                      alt_names: Sequence[x509.GeneralName] = ()) -> x509.Certificate:
    """An end-entity certificate for ``key`` signed by ``issuer``, valid from ``now`` for the test validity.

    ``usage`` is marked critical; ``extended_usage`` and ``alt_names`` are added
    only when given.
    """
    public = key.public_key()
    builder = (
        _valid_from(now, subject, issuer.subject, public)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
    )
    if extended_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_usage)), critical=False)
    builder = (
        builder
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                       critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(alt_names)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def write_certificate(path: Path, cert: x509.Certificate) -> None:
    """The certificate as PEM, readable by all (mode 0644)."""
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o644)


def write_key(path: Path, key, password: bytes | None = None) -> None:
    """The private key as PKCS#8 PEM, encrypted with ``password`` when given; readable by its owner only (0600)."""
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    path.chmod(0o600)


def _tls_certificate(common_name: str, key, issuer: x509.Certificate, issuer_key, now: dt.datetime,
                     purpose: x509.ObjectIdentifier, alt_names: list[x509.GeneralName]) -> x509.Certificate:
    """A TLS server or client certificate of the mail PKI (ECDSA signing and ECDH key agreement)."""
    return issue_certificate(subject_name(common_name), key, issuer=issuer, issuer_key=issuer_key, now=now,
                             usage=key_usage("digital_signature", "key_agreement"), extended_usage=[purpose],
                             alt_names=alt_names)


def _valid_from(now: dt.datetime, subject: x509.Name, issuer: x509.Name, public) -> x509.CertificateBuilder:
    """What every test certificate shares: names, key, a random serial and the test validity from ``now``."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + _VALIDITY)
    )
