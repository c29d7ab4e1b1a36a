"""Shared fixtures for the XDS transport tests: a test PKI, a stand-in VIHF assertion, jobs, the DMP double."""

from __future__ import annotations

import ssl
from datetime import datetime, timezone

import pytest
from lxml import etree

from channels.xds.client import XdsClient
from mappings.xds_metadata import build_submission, entry_uuid
from router.model import Action, Participant
from channels.testing.cda import make_cda, make_job
from channels.testing.dmp_double import DmpDouble
from channels.testing.pki import TestPki, make_test_pki

SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
ISSUER = "CN=cachet.ch-test.fr,O=CH de Test,C=FR"
SOURCE_ID = "1.2.250.1.999.1.9"
WHEN = datetime(2024, 3, 12, 16, 45, 30, tzinfo=timezone.utc)
SENDER = Participant(identifier="810000543214", family="BERNARD", given="Louise",
                     organisation_id="1990000014", organisation_name="CH de Test")


def make_assertion(issuer: str = ISSUER) -> etree._Element:
    """A stand-in for the signed VIHF (the real one comes from channels.xds.vihf); whitespace kept on purpose."""
    return etree.fromstring(
        f'<saml2:Assertion xmlns:saml2="{SAML2}" ID="_a1" IssueInstant="2024-03-12T16:45:30Z" Version="2.0">\n'
        f'  <saml2:Issuer Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName">{issuer}</saml2:Issuer>\n'
        f'  <saml2:Subject><saml2:NameID>810000543214</saml2:NameID></saml2:Subject>\n'
        f'</saml2:Assertion>'.encode())


class IssuerCheck:
    """The tests' assertion verifier: accepts only our issuer, and remembers what it saw."""

    def __init__(self):
        self.seen: list[etree._Element] = []

    def __call__(self, element: etree._Element) -> bool:
        self.seen.append(element)
        issuer = element.findtext(f"{{{SAML2}}}Issuer")
        if issuer != ISSUER:
            raise ValueError(f"unknown issuer {issuer}")
        return True


def submission_for(cda: bytes, *, action: Action = Action.PUBLISH, replaced: str | None = None):
    """(job, SubmitObjectsRequest, documents) for an ITI-41 of ``cda``, as the DMP channel will build them."""
    job = make_job(cda, action=action, sender=SENDER)
    request = build_submission(job, submission_time=WHEN, source_id=SOURCE_ID, document_filename=None,
                               xdm_action=False, replaced_entry_uuid=replaced)
    return job, request, {entry_uuid(job.header.document_id): job.cda}


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("xds-pki"))


@pytest.fixture
def verifier() -> IssuerCheck:
    return IssuerCheck()


@pytest.fixture
async def double(pki, verifier):
    dmp = DmpDouble.from_pki(pki, verify_assertion=verifier)
    await dmp.start()
    yield dmp
    await dmp.stop()


def client_tls(pki: TestPki, *, with_cert: bool = True, untrusted: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca_cert))
    if untrusted:
        context.load_cert_chain(str(pki.untrusted_client_cert), str(pki.untrusted_client_key))
    elif with_cert:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


@pytest.fixture
async def make_client(pki):
    """``make_client(double, **options)`` → an XdsClient on the double's repository/registry, closed after."""
    clients: list[XdsClient] = []

    def make(dmp: DmpDouble, *, with_cert: bool = True, untrusted: bool = False, timeout: float = 10.0,
             **options) -> XdsClient:
        client = XdsClient(dmp.url("/repository"), registry_url=dmp.url("/registry"),
                           ssl_context=client_tls(pki, with_cert=with_cert, untrusted=untrusted),
                           timeout=timeout, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def cda() -> bytes:
    return make_cda()
