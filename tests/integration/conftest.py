"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from tests.contract.conftest import _check_rabbitmq
from tests.integration.harness import Pipeline, dmp_pipeline


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
    pipe, double = await dmp_pipeline(tmp_path, bus_kind=request.param)
    yield pipe, double
    await pipe.stop()
    await double.stop()
