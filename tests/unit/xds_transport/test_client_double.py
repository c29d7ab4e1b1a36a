"""XdsClient against the DMP double, over TLS with client certificates, on 127.0.0.1."""

from __future__ import annotations

import hashlib
import ssl
import time

import pytest

from channels.xds import soap
from channels.xds.client import XdsClient
from mappings.xds_metadata import DE_PATIENT_ID, RIM, SS_PATIENT_ID, entry_uuid
from router.errors import MappingError, PeerUnavailable, RejectedByPeer
from router.model import Action
from channels.testing.cda import SAMPLE_DOCUMENT_IDS, make_cda, nir_with_key
from channels.testing.local import free_port
from channels.testing.dmp_double import DmpDouble, Fault, Hang, HttpError, RegistryFailure
from tests.unit.xds_transport.conftest import make_assertion, submission_for

UNIQUE_ID = SAMPLE_DOCUMENT_IDS["cr-bio"]
OTHER_INS = nir_with_key("1730275112233")


def set_slot(request, name: str, value: str) -> None:
    for slot in request.iter(f"{{{RIM}}}Slot"):
        if slot.get("name") == name:
            slot.find(f"{{{RIM}}}ValueList/{{{RIM}}}Value").text = value


def set_patient_id(request, value: str) -> None:
    for ext in request.iter(f"{{{RIM}}}ExternalIdentifier"):
        if ext.get("identificationScheme") in (DE_PATIENT_ID, SS_PATIENT_ID):
            ext.set("value", value)


async def deposit(client, cda: bytes, **kwargs):
    _, request, documents = submission_for(cda, **kwargs)
    return await client.provide_and_register(request, documents, make_assertion())


# --- happy path ------------------------------------------------------------------------------

async def test_deposit_is_stored_byte_for_byte(double, make_client, cda, verifier):
    result = await deposit(make_client(double), cda)
    assert result.ok
    stored = double.by_unique_id(UNIQUE_ID)
    assert stored.content == cda
    assert stored.entry_uuid == entry_uuid(UNIQUE_ID)
    assert stored.status == soap.APPROVED
    assert stored.patient_id.startswith("285076938304209^^^&")
    assert len(verifier.seen) == 1


async def test_request_is_mtom_with_addressing_and_the_assertion(double, make_client, cda):
    await deposit(make_client(double), cda)
    [received] = double.received
    assert received.mtom and received.path == "/repository"
    assert received.action == soap.ITI41_ACTION and received.message_id.startswith("urn:uuid:")
    assert received.assertion.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer").startswith("CN=cachet")


async def test_large_document_arrives_intact(double, make_client):
    padding = "x" * (1024 * 1024)
    cda = make_cda(title=f"Compte rendu {padding}")
    assert len(cda) > 1024 * 1024
    assert (await deposit(make_client(double), cda)).ok
    assert hashlib.sha1(double.by_unique_id(UNIQUE_ID).content).digest() == hashlib.sha1(cda).digest()


async def test_stopped_dmp_is_unavailable(pki, verifier, make_client, cda):
    dmp = DmpDouble.from_pki(pki, verify_assertion=verifier)
    await dmp.start()
    client = make_client(dmp)
    await dmp.stop()
    with pytest.raises(PeerUnavailable, match="cannot connect"):
        await deposit(client, cda)


async def test_plain_soap_answers_are_read_too(pki, verifier, make_client, cda):
    async with DmpDouble.from_pki(pki, verify_assertion=verifier, mtom_responses=False) as plain:
        assert (await deposit(make_client(plain), cda)).ok


async def test_the_double_listens_on_the_port_it_is_given(pki, verifier, make_client, cda):
    # A double in a process of its own (bench/dmp_double.py) must be where the engine's config says.
    port = free_port()
    async with DmpDouble.from_pki(pki, verify_assertion=verifier, port=port) as fixed:
        assert fixed.port == port and fixed.url().startswith(f"https://localhost:{port}/")
        assert (await deposit(make_client(fixed), cda)).ok


# --- TLS -----------------------------------------------------------------------------------

async def test_no_client_certificate_no_service(double, make_client, cda):
    with pytest.raises(PeerUnavailable, match="client certificate refused"):
        await deposit(make_client(double, with_cert=False), cda)
    assert double.received == [] and double.documents == {}


async def test_certificate_from_another_ca_is_refused(double, make_client, cda):
    with pytest.raises(PeerUnavailable, match="client certificate refused"):
        await deposit(make_client(double, untrusted=True), cda)
    assert double.documents == {}


# --- assertion -----------------------------------------------------------------------------

async def test_assertion_refused_by_the_verifier_is_permanent(double, make_client, cda):
    _, request, documents = submission_for(cda)
    client = make_client(double)
    with pytest.raises(RejectedByPeer, match="FailedAuthentication") as caught:
        await client.provide_and_register(request, documents, make_assertion(issuer="CN=intruder"))
    assert caught.value.code == "Sender/FailedAuthentication"
    assert double.documents == {}


async def test_verifier_returning_false_refuses(pki, make_client, cda):
    async with DmpDouble.from_pki(pki, verify_assertion=lambda element: False) as strict:
        with pytest.raises(RejectedByPeer, match="FailedAuthentication"):
            await deposit(make_client(strict), cda)


# --- metadata checks -----------------------------------------------------------------------

async def test_wrong_hash_is_refused(double, make_client, cda):
    _, request, documents = submission_for(cda)
    set_slot(request, "hash", hashlib.sha1(b"another document").hexdigest())
    with pytest.raises(RejectedByPeer, match="XDSRepositoryMetadataError.*hash") as caught:
        await make_client(double).provide_and_register(request, documents, make_assertion())
    assert caught.value.code == "XDSRepositoryMetadataError"
    assert double.documents == {}


async def test_wrong_size_is_refused(double, make_client, cda):
    _, request, documents = submission_for(cda)
    set_slot(request, "size", str(len(cda) + 1))
    with pytest.raises(RejectedByPeer, match="size"):
        await make_client(double).provide_and_register(request, documents, make_assertion())


async def test_patient_id_other_than_the_cda_ins_is_refused(double, make_client, cda):
    _, request, documents = submission_for(cda)
    set_patient_id(request, f"{OTHER_INS}^^^&1.2.250.1.213.1.4.10&ISO^NH")
    with pytest.raises(RejectedByPeer, match="XDSPatientIdDoesNotMatch"):
        await make_client(double).provide_and_register(request, documents, make_assertion())


async def test_unique_id_other_than_the_cda_id_is_refused(double, make_client, cda):
    _, request, _ = submission_for(cda)
    other = make_cda(document_id="1.2.250.1.999.1.3^OTHER-1")
    _, other_request, _ = submission_for(other)
    # metadata of the sample, bytes of another CDA whose hash/size are patched in: only the id differs
    set_slot(request, "hash", hashlib.sha1(other).hexdigest())
    set_slot(request, "size", str(len(other)))
    with pytest.raises(RejectedByPeer, match="uniqueId is not the CDA id"):
        await make_client(double).provide_and_register(request, {entry_uuid(UNIQUE_ID): other}, make_assertion())


async def test_missing_required_classification_is_refused(double, make_client, cda):
    _, request, documents = submission_for(cda)
    [format_code] = [c for c in request.iter(f"{{{RIM}}}Classification")
                     if c.get("classificationScheme") == "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"]
    format_code.getparent().remove(format_code)
    with pytest.raises(RejectedByPeer, match="missing formatCode"):
        await make_client(double).provide_and_register(request, documents, make_assertion())


async def test_same_document_twice_is_a_duplicate(double, make_client, cda):
    client = make_client(double)
    await deposit(client, cda)
    with pytest.raises(RejectedByPeer) as caught:
        await deposit(client, cda)
    assert caught.value.code == "XDSDuplicateUniqueIdInRegistry"


async def test_unknown_patient_is_refused_when_the_double_knows_its_patients(pki, verifier, make_client, cda):
    async with DmpDouble.from_pki(pki, verify_assertion=verifier, known_patients={OTHER_INS}) as dmp:
        with pytest.raises(RejectedByPeer, match="DMP inexistant"):
            await deposit(make_client(dmp), cda)


async def test_documents_must_match_the_entries(double, make_client, cda):
    _, request, _ = submission_for(cda)
    with pytest.raises(MappingError, match="DocumentEntry ids"):
        await make_client(double).provide_and_register(request, {"urn:uuid:other": cda}, make_assertion())
    assert double.received == []


# --- replacement, deletion, archival ---------------------------------------------------------

async def test_replacement_deprecates_the_previous_version(double, make_client, cda):
    client = make_client(double)
    await deposit(client, cda)
    old = double.by_unique_id(UNIQUE_ID)
    new_cda = make_cda(document_id="1.2.250.1.999.1.3^CRB-240312-0001-V2", version=2, parent_document_id=UNIQUE_ID)
    assert (await deposit(client, new_cda, action=Action.REPLACE, replaced=old.entry_uuid)).ok
    new = double.by_unique_id("1.2.250.1.999.1.3^CRB-240312-0001-V2")
    assert old.status == soap.DEPRECATED and old.replaced_by == new.entry_uuid
    assert new.status == soap.APPROVED and new.replaces == old.entry_uuid


async def test_replacing_an_unknown_entry_is_refused(double, make_client):
    new_cda = make_cda(document_id="1.2.250.1.999.1.3^V2", parent_document_id=UNIQUE_ID)
    with pytest.raises(RejectedByPeer, match="UnresolvedReferenceException"):
        await deposit(make_client(double), new_cda, action=Action.REPLACE, replaced="urn:uuid:nowhere")
    assert double.documents == {}


async def test_delete_marks_the_entry_deleted(double, make_client, cda):
    client = make_client(double)
    await deposit(client, cda)
    job, submission, _ = submission_for(cda, action=Action.DELETE)
    result = await client.update_availability_status(submission, make_assertion(), entry_uuid=entry_uuid(UNIQUE_ID),
                                                     new_status=soap.DELETED)
    assert result.ok
    assert double.by_unique_id(UNIQUE_ID).status == "urn:asip:ci-sis:2010:StatusType:Deleted"
    assert double.received[-1].action == soap.ITI57_ACTION and double.received[-1].path == "/registry"
    assert not double.received[-1].mtom


async def test_archive_then_restore(double, make_client, cda):
    client = make_client(double)
    await deposit(client, cda)
    _, submission, _ = submission_for(cda, action=Action.DELETE)
    target = entry_uuid(UNIQUE_ID)
    await client.update_availability_status(submission, make_assertion(), entry_uuid=target, new_status=soap.ARCHIVED)
    assert double.by_entry_uuid(target).status == soap.ARCHIVED
    await client.update_availability_status(submission, make_assertion(), entry_uuid=target,
                                            new_status=soap.APPROVED, original_status=soap.ARCHIVED)
    assert double.by_entry_uuid(target).status == soap.APPROVED


async def test_deleting_an_unknown_document_is_refused(double, make_client, cda):
    _, submission, _ = submission_for(cda, action=Action.DELETE)
    with pytest.raises(RejectedByPeer, match="UnresolvedReferenceException"):
        await make_client(double).update_availability_status(submission, make_assertion(),
                                                              entry_uuid="urn:uuid:nowhere", new_status=soap.DELETED)


async def test_wrong_original_status_is_refused(double, make_client, cda):
    client = make_client(double)
    await deposit(client, cda)
    _, submission, _ = submission_for(cda, action=Action.DELETE)
    with pytest.raises(RejectedByPeer, match="XDSMetadataUpdateError"):
        await client.update_availability_status(submission, make_assertion(), entry_uuid=entry_uuid(UNIQUE_ID),
                                                new_status=soap.APPROVED, original_status=soap.ARCHIVED)
    assert double.by_unique_id(UNIQUE_ID).status == soap.APPROVED


# --- scripted failures -----------------------------------------------------------------------

async def test_registry_busy_is_transient_then_service_resumes(double, make_client, cda):
    double.fail_next(RegistryFailure("XDSRegistryBusy"))
    client = make_client(double)
    with pytest.raises(PeerUnavailable, match="XDSRegistryBusy"):
        await deposit(client, cda)
    assert double.documents == {}
    assert (await deposit(client, cda)).ok


async def test_scripted_dmp_closed_is_permanent(double, make_client, cda):
    double.fail_next(RegistryFailure("DMPClosed", "DMP fermé"))
    with pytest.raises(RejectedByPeer, match="DMP du patient fermé"):
        await deposit(make_client(double), cda)


async def test_partial_success_is_permanent(double, make_client, cda):
    double.fail_next(RegistryFailure("XDSRepositoryBusy", status="PartialSuccess"))
    with pytest.raises(RejectedByPeer, match="PartialSuccess"):
        await deposit(make_client(double), cda)


@pytest.mark.parametrize("behaviour, error", [
    (Fault("Receiver"), PeerUnavailable),
    (Fault("Sender", "wsse:InvalidSecurity"), RejectedByPeer),
    (HttpError(500), PeerUnavailable),
    (HttpError(503), PeerUnavailable),
    (HttpError(403), RejectedByPeer),
])
async def test_faults_and_http_errors_map_to_the_error_families(double, make_client, cda, behaviour, error):
    double.fail_next(behaviour)
    with pytest.raises(error):
        await deposit(make_client(double), cda)
    assert double.documents == {}


async def test_hanging_dmp_times_out_as_unavailable(double, make_client, cda):
    double.fail_next(Hang(30))
    started = time.monotonic()
    with pytest.raises(PeerUnavailable, match="within 0.5 s"):
        await deposit(make_client(double, timeout=0.5), cda)
    assert time.monotonic() - started < 5


async def test_dmp_certificate_we_do_not_trust_is_named(double, pki, cda):
    context = ssl.create_default_context(cafile=str(pki.untrusted_ca_cert))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    async with XdsClient(double.url(), ssl_context=context, timeout=5) as client:
        with pytest.raises(PeerUnavailable, match="DMP certificate was not accepted"):
            await deposit(client, cda)
