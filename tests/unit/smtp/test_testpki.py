"""The throw-away PKI: the right usages, names and issuers, so TLS tests test what they claim."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from channels.testing.pki import make_test_pki


def _load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_server_certificate_names_the_host_and_is_for_servers(tmp_path):
    pki = make_test_pki(tmp_path, server_names=("localhost", "relay.test"), server_ips=("127.0.0.1",))
    server = _load(pki.server_cert)

    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "relay.test"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usages = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    server.verify_directly_issued_by(_load(pki.ca_cert))


def test_client_certificates_are_for_clients_and_only_one_chains_to_the_test_ca(tmp_path):
    pki = make_test_pki(tmp_path)
    ca = _load(pki.ca_cert)
    client, rogue = _load(pki.client_cert), _load(pki.untrusted_client_cert)

    for cert in (client, rogue):
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    client.verify_directly_issued_by(ca)
    assert rogue.issuer != ca.subject
    rogue.verify_directly_issued_by(_load(pki.untrusted_ca_cert))


def test_private_keys_are_readable_by_their_owner_only(tmp_path):
    pki = make_test_pki(tmp_path)

    for key in (pki.ca_key, pki.server_key, pki.client_key, pki.untrusted_client_key):
        assert key.stat().st_mode & 0o077 == 0
