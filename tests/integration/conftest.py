"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from channels.testing.pki import make_test_pki
from channels.xds.dmp import dmp_settings
from channels.xds.vihf import verify_vihf
from tests.contract.conftest import _check_rabbitmq
from tests.integration.harness import Pipeline
from tests.support.cachet_pki import make_cachet_pki, vihf_table
from tests.support.dmp_double import DmpDouble


@pytest.fixture(params=["embedded", "amqp"])
async def pipeline(request, postfix, tmp_path):
    """A whole engine relaying to the module's Postfix, once on the embedded bus and once on RabbitMQ."""
    if request.param == "amqp":
        await _check_rabbitmq()
    pipe = Pipeline(tmp_path, postfix.pki, postfix.port, bus_kind=request.param)
    await pipe.start()
    yield pipe
    await pipe.stop()


@pytest.fixture(params=["embedded", "amqp"])
async def dmp(request, tmp_path):
    """An engine whose DMP channel is a DMP test double (mutual TLS, VIHF checked against the test CA),
    on the embedded bus and on RabbitMQ."""
    if request.param == "amqp":
        await _check_rabbitmq()
    pki = make_test_pki(tmp_path / "pki")
    cachet = make_cachet_pki(tmp_path / "cachet")
    ca = cachet.ca_cert.read_bytes()
    double = DmpDouble.from_pki(pki, verify_assertion=lambda assertion: verify_vihf(assertion, ca))
    await double.start()
    settings = dmp_settings({"url": double.url("/repository"), "registry_url": double.url("/registry"),
                             "client_cert": str(pki.client_cert), "client_key": str(pki.client_key),
                             "ca_file": str(pki.ca_cert), "timeout": 5, "vihf": vihf_table(cachet)}, env={})
    pipe = Pipeline(tmp_path, pki, relay_port=9, relay_host="127.0.0.1", dmp=settings, bus_kind=request.param)
    await pipe.start()
    yield pipe, double
    await pipe.stop()
    await double.stop()
