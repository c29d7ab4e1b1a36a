"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from tests.contract.conftest import _check_rabbitmq
from tests.integration.harness import Pipeline


@pytest.fixture(params=["embedded", "amqp"])
async def pipeline(request, postfix, tmp_path):
    """A whole engine relaying to the module's Postfix, once on the embedded bus and once on RabbitMQ."""
    if request.param == "amqp":
        await _check_rabbitmq()
    pipe = Pipeline(tmp_path, postfix.pki, postfix.port, bus_kind=request.param)
    await pipe.start()
    yield pipe
    await pipe.stop()
