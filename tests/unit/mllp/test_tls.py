"""MLLP over TLS and mutual TLS, with the throw-away test PKI of channels.testing.pki."""

import ssl

import pytest

from channels.mllp.sender import MllpSender
from channels.testing.pki import TestPki, make_test_pki
from router.errors import PeerUnavailable
from tests.unit.hl7.samples import oru


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def server_context(pki: TestPki, *, require_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        ctx.load_verify_locations(pki.ca_cert)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(pki: TestPki, *, with_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca_cert))
    if with_cert:
        ctx.load_cert_chain(pki.client_cert, pki.client_key)
    return ctx


async def test_tls_listener_answers_over_tls(make_server, handler, pki):
    server = await make_server(handler, ssl_context=server_context(pki))
    async with MllpSender("127.0.0.1", server.port, ssl_context=client_context(pki), timeout=5) as sender:
        ack = await sender.send(oru("TLS1").encode())
    assert b"MSA|AA|TLS1" in ack


async def test_tls_listener_refuses_plain_tcp_client(make_server, handler, pki):
    server = await make_server(handler, ssl_context=server_context(pki))
    async with MllpSender("127.0.0.1", server.port, timeout=2) as sender:
        with pytest.raises(PeerUnavailable):
            await sender.send(oru("PLAIN").encode())
    assert handler.frames == []


async def test_mtls_accepts_a_client_with_a_certificate(make_server, handler, pki):
    server = await make_server(handler, ssl_context=server_context(pki, require_client_cert=True))
    async with MllpSender("127.0.0.1", server.port, ssl_context=client_context(pki, with_cert=True),
                          timeout=5) as sender:
        ack = await sender.send(oru("MTLS").encode())
    assert b"MSA|AA|MTLS" in ack


async def test_mtls_refuses_a_client_without_certificate(make_server, handler, pki):
    server = await make_server(handler, ssl_context=server_context(pki, require_client_cert=True))
    async with MllpSender("127.0.0.1", server.port, ssl_context=client_context(pki), timeout=5) as sender:
        with pytest.raises(PeerUnavailable):
            await sender.send(oru("NOCERT").encode())
    assert handler.frames == []
