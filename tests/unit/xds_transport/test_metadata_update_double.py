"""The DMP double's ITI-57 Update DocumentEntry Metadata: what it accepts and what it refuses, through XdsClient."""

from __future__ import annotations

import pytest

from channels.xds import soap
from mappings.xds_metadata import DE_UNIQUE_ID, RIM, build_metadata_update, entry_uuid
from router.errors import RejectedByPeer
from router.model import Flags
from channels.testing.cda import SAMPLE_DOCUMENT_IDS, make_job
from tests.unit.xds_transport.conftest import SENDER, SOURCE_ID, WHEN, make_assertion, submission_for

UNIQUE_ID = SAMPLE_DOCUMENT_IDS["cr-bio"]
MASKED = Flags(dest_dmp=True, modif_conf_code=True, masque_ps=True)


def masking(cda: bytes, *, previous_version: str = "1"):
    job = make_job(cda, flags=MASKED, sender=SENDER)
    return build_metadata_update(job, submission_time=WHEN, source_id=SOURCE_ID, previous_version=previous_version)


async def deposit(client, cda: bytes) -> None:
    _, request, documents = submission_for(cda)
    assert (await client.provide_and_register(request, documents, make_assertion())).ok


async def test_an_update_stores_a_new_version_and_deprecates_the_old(double, make_client, cda):
    client = make_client(double)
    await deposit(client, cda)
    assert (await client.update_document_set(masking(cda), make_assertion())).ok
    old, new = double.versions(entry_uuid(UNIQUE_ID))
    assert (old.status, new.status) == (soap.DEPRECATED, soap.APPROVED)
    assert new.confidentiality_codes == ["N", "MASQUE_PS"] and new.version == "2"
    assert double.by_unique_id(UNIQUE_ID) is new


async def test_an_unknown_logical_id_is_refused(double, make_client, cda):
    with pytest.raises(RejectedByPeer, match="UnresolvedReferenceException"):
        await make_client(double).update_document_set(masking(cda), make_assertion())
    assert double.documents == {}


async def test_a_unique_id_that_is_not_the_entry_s_is_refused(double, make_client, cda):
    client = make_client(double)
    await deposit(client, cda)
    request = masking(cda)
    [ext] = [e for e in request.iter(f"{{{RIM}}}ExternalIdentifier") if e.get("identificationScheme") == DE_UNIQUE_ID]
    ext.set("value", "1.2.250.1.999.1.3^SOMETHING-ELSE")
    with pytest.raises(RejectedByPeer, match="XDSMetadataIdentifierError"):
        await client.update_document_set(request, make_assertion())
    assert [d.status for d in double.versions(entry_uuid(UNIQUE_ID))] == [soap.APPROVED]


async def test_a_stale_previous_version_is_refused(double, make_client, cda):
    client = make_client(double)
    await deposit(client, cda)
    with pytest.raises(RejectedByPeer, match="XDSMetadataVersionError"):
        await client.update_document_set(masking(cda, previous_version="2"), make_assertion())
    assert double.by_unique_id(UNIQUE_ID).version == "1"
