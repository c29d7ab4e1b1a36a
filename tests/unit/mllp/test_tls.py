import pytest

from channels.mllp.sender import MllpSender
from router.errors import PeerUnavailable
from tests.unit.hl7.samples import oru
from tests.unit.mllp.pki import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


async def test_tls_listener_answers_over_tls(make_server, handler, pki):
    server = await make_server(handler, ssl_context=pki.server_context())
    async with MllpSender("127.0.0.1", server.port, ssl_context=pki.client_context(), timeout=5) as sender:
        ack = await sender.send(oru("TLS1").encode())
    assert b"MSA|AA|TLS1" in ack


async def test_tls_listener_refuses_plain_tcp_client(make_server, handler, pki):
    server = await make_server(handler, ssl_context=pki.server_context())
    async with MllpSender("127.0.0.1", server.port, timeout=2) as sender:
        with pytest.raises(PeerUnavailable):
            await sender.send(oru("PLAIN").encode())
    assert handler.frames == []


async def test_mtls_accepts_a_client_with_a_certificate(make_server, handler, pki):
    server = await make_server(handler, ssl_context=pki.server_context(require_client_cert=True))
    async with MllpSender("127.0.0.1", server.port, ssl_context=pki.client_context(with_cert=True),
                          timeout=5) as sender:
        ack = await sender.send(oru("MTLS").encode())
    assert b"MSA|AA|MTLS" in ack


async def test_mtls_refuses_a_client_without_certificate(make_server, handler, pki):
    server = await make_server(handler, ssl_context=pki.server_context(require_client_cert=True))
    async with MllpSender("127.0.0.1", server.port, ssl_context=pki.client_context(), timeout=5) as sender:
        with pytest.raises(PeerUnavailable):
            await sender.send(oru("NOCERT").encode())
    assert handler.frames == []
