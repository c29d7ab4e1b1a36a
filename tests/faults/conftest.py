"""The fault suite's servers, started once per session; the suite runs only in the test command.

Every test here is marked ``faults``. Outside ``deploy/scripts/test.sh`` (which sets
``LIAISON_REQUIRE_FAULTS=1``) the suite is skipped, saying so: it starts its own RabbitMQ cluster
(127.0.0.1:5801-5803), PostgreSQL and Postfix, which needs root and a few minutes. With
``LIAISON_REQUIRE_FAULTS=1`` a missing prerequisite fails the suite instead of skipping it.
"""

from __future__ import annotations

import os

import pytest

from tests.faults.servers import Servers, start_servers, unavailable

REQUIRED = os.environ.get("LIAISON_REQUIRE_FAULTS") == "1"


@pytest.fixture(scope="session")
def servers() -> Servers:
    if not REQUIRED:
        pytest.skip("the fault suite runs in the test command (deploy/scripts/test.sh sets LIAISON_REQUIRE_FAULTS=1):"
                    " it starts and kills its own RabbitMQ cluster on 5801-5803, PostgreSQL and Postfix (as root)")
    reason = unavailable()
    if reason is not None:
        pytest.fail(f"LIAISON_REQUIRE_FAULTS=1 but {reason}", pytrace=False)
    stops: list = []
    try:
        yield start_servers(stops)
    finally:
        for stop in reversed(stops):
            try:
                stop()
            except Exception as exc:   # noqa: BLE001 - stop the others anyway, then say so
                print(f"fault suite: stopping a server failed: {exc}")
