"""Shared fixtures for the SMTP channel tests: one throw-away PKI, sinks started on demand."""

from __future__ import annotations

import pytest

from channels.smtp.mailer import SmtpMailer
from channels.testing.pki import TestPki, make_test_pki
from tests.support.smtp_sink import SmtpSink


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def start_sink(pki, tmp_path):
    """``await start_sink(rcpt_script=...)`` → a started SmtpSink, stopped after the test."""
    sinks: list[SmtpSink] = []

    async def start(**options) -> SmtpSink:
        sink = SmtpSink.from_pki(pki, tmp_path / f"mail{len(sinks)}", **options)
        sinks.append(sink)
        await sink.start()
        return sink

    yield start
    for sink in sinks:
        sink.stop()


@pytest.fixture
async def make_mailer(pki):
    """``make_mailer(port, **options)`` → an SmtpMailer with the test client certificate, closed after the test."""
    mailers: list[SmtpMailer] = []

    def make(port: int, **options) -> SmtpMailer:
        options = {"client_cert": pki.client_cert, "client_key": pki.client_key, "ca_file": pki.ca_cert,
                   "timeout": 10.0, "helo": "pfi.hopital-test.mssante.fr", **options}
        mailer = SmtpMailer("localhost", port, **options)
        mailers.append(mailer)
        return mailer

    yield make
    for mailer in mailers:
        await mailer.close()
