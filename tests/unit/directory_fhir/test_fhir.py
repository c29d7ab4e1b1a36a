"""FhirDirectory against the local Annuaire Santé FHIR API: lookups, paging, typed errors."""

import socket

import pytest
from structlog.testing import capture_logs

from channels.directory.fhir import SOURCE, DirectoryUnavailable, FhirDirectory
from router.errors import ConfigError, PeerUnavailable, PermanentError, RejectedByPeer
from channels.testing.adt_messages import DR_DURAND, DR_LEFEVRE, DR_MARTIN
from tests.support.fhir_server import Fault, FhirServer, mss, organization, practitioner, practitioner_role

from .conftest import CHU_IDNST


def by_address(mailboxes):
    return {mailbox.address: mailbox for mailbox in mailboxes}


# ------------------------------------------------------------------ lookups

async def test_idnat_finds_practitioner_and_role_mailboxes(directory):
    found = by_address(await directory.mailboxes("8" + DR_MARTIN.rpps))
    assert set(found) == {"sophie.martin@medecin.mssante.fr", "sophie.martin@chu-fictif.mssante.fr"}
    personal = found["sophie.martin@medecin.mssante.fr"]
    assert (personal.kind, personal.identifier, personal.name, personal.profession, personal.source) == (
        "PER", "8" + DR_MARTIN.rpps, "DR Sophie MARTIN", "Médecin", SOURCE)
    assert personal.organisation == "" and personal.red_list is False


async def test_role_mailbox_carries_its_organisation(directory):
    role = by_address(await directory.mailboxes("8" + DR_MARTIN.rpps))["sophie.martin@chu-fictif.mssante.fr"]
    assert (role.organisation, role.structure_id, role.postal_code, role.service) == (
        "CHU FICTIF DE TEST", CHU_IDNST, "99999", "Cardiologie")


async def test_bare_rpps_is_looked_up_as_idnat(directory, server):
    found = await directory.mailboxes(DR_MARTIN.rpps)
    assert {m.identifier for m in found} == {"8" + DR_MARTIN.rpps}
    assert server.requests[0].query["identifier"] == "8" + DR_MARTIN.rpps


async def test_role_search_includes_the_organisation(directory, server):
    await directory.mailboxes("8" + DR_MARTIN.rpps)
    role_search = server.requests[1]
    assert role_search.path.endswith("/PractitionerRole")
    assert role_search.query == {"practitioner": "p-martin", "_include": "PractitionerRole:organization"}


async def test_ordinary_and_other_messaging_emails_are_ignored(directory):
    addresses = {m.address for m in await directory.mailboxes("8" + DR_MARTIN.rpps)}
    assert "sophie.martin@example.org" not in addresses
    assert "s.martin@apicrypt.example.org" not in addresses


async def test_practitioner_without_mailbox_has_none(directory):
    assert await directory.mailboxes("8" + DR_LEFEVRE.rpps) == []


async def test_unknown_practitioner_has_none_and_skips_the_role_search(directory, server):
    assert await directory.mailboxes("810000000005") == []
    assert len(server.requests) == 1


async def test_red_list_is_flagged_and_cabinet_kind_kept(directory):
    found = by_address(await directory.mailboxes("8" + DR_DURAND.rpps))
    assert found["chloe.durand@medecin.mssante.fr"].red_list is True
    cabinet = found["cabinet.durand@medecin.mssante.fr"]
    assert (cabinet.kind, cabinet.red_list) == ("CAB", False)


async def test_structure_id_finds_org_and_app_mailboxes(directory, server):
    found = by_address(await directory.mailboxes(CHU_IDNST))
    assert {(m.address, m.kind) for m in found.values()} == {
        ("cardiologie@chu-fictif.mssante.fr", "ORG"), ("dpi@chu-fictif.mssante.fr", "APP")}
    org = found["cardiologie@chu-fictif.mssante.fr"]
    assert (org.identifier, org.organisation, org.service, org.postal_code) == (
        CHU_IDNST, "CHU FICTIF DE TEST", "Cardiologie", "99999")
    assert server.requests[0].path.endswith("/Organization")


async def test_unknown_structure_has_none(directory):
    assert await directory.mailboxes("1990000999") == []


async def test_api_key_travels_in_its_header(directory, server):
    await directory.mailboxes("8" + DR_MARTIN.rpps)
    assert all(r.headers["esante-api-key"] == server.api_key for r in server.requests)


# ------------------------------------------------------------------ paging

def crowded_server(roles: int) -> FhirServer:
    """One practitioner with ``roles`` activities, each with its own mailbox, in pages of 2."""
    resources = [practitioner("p-many", DR_MARTIN.rpps, "MARTIN", "Sophie"),
                 organization("o-many", CHU_IDNST, "CENTRE FICTIF")]
    resources += [practitioner_role(f"r-{n}", "p-many", "o-many", telecom=[mss(f"activite{n}@fictif.mssante.fr")])
                  for n in range(roles)]
    return FhirServer(page_size=2, resources=resources)


async def test_paging_follows_next_links_over_three_pages():
    async with crowded_server(5) as server, FhirDirectory(server.base_url, server.api_key, timeout=1) as fhir:
        found = await fhir.mailboxes("8" + DR_MARTIN.rpps)
    assert {m.address for m in found} == {f"activite{n}@fictif.mssante.fr" for n in range(5)}
    assert all(m.organisation == "CENTRE FICTIF" for m in found)
    assert sum("_getpages" in r.query for r in server.requests) == 2


async def test_paging_stops_at_the_page_limit_and_says_so():
    async with crowded_server(5) as server, \
            FhirDirectory(server.base_url, server.api_key, timeout=1, page_limit=2) as fhir:
        with capture_logs() as logs:
            found = await fhir.mailboxes("8" + DR_MARTIN.rpps)
    assert len(found) == 4
    assert [e for e in logs if e["event"] == "fhir_directory.page_limit"] == [
        {"event": "fhir_directory.page_limit", "log_level": "warning", "resource": "PractitionerRole", "pages": 2}]


async def test_next_link_to_another_host_is_not_followed():
    server = crowded_server(5)
    server.links_base = "http://127.0.0.2:9/fhir/v2"
    async with server, FhirDirectory(server.base_url, server.api_key, timeout=1) as fhir:
        with capture_logs() as logs:
            found = await fhir.mailboxes("8" + DR_MARTIN.rpps)
    assert len(found) == 2
    assert any(e["event"] == "fhir_directory.foreign_next_link" for e in logs)


# ------------------------------------------------------------------ errors

async def test_wrong_api_key_is_a_config_error_naming_the_key(server):
    async with FhirDirectory(server.base_url, "not-the-key", timeout=1) as fhir:
        with pytest.raises(ConfigError) as raised:
            await fhir.mailboxes("8" + DR_MARTIN.rpps)
    assert isinstance(raised.value, PermanentError)
    assert raised.value.key == "directory.fhir.api_key"
    assert "HTTP 401" in raised.value.reason and "API key" in raised.value.reason


async def test_forbidden_is_a_config_error_too(directory, server):
    server.fail_next(Fault(403))
    with pytest.raises(ConfigError, match="HTTP 403"):
        await directory.mailboxes("8" + DR_MARTIN.rpps)


def test_missing_api_key_is_refused_at_construction():
    with pytest.raises(ConfigError, match="no Annuaire Santé API key"):
        FhirDirectory("http://127.0.0.1:9/fhir/v2", "")


async def test_rate_limit_is_transient_with_retry_after(directory, server):
    server.fail_next(Fault(429, {"Retry-After": "30"}))
    with pytest.raises(DirectoryUnavailable) as raised:
        await directory.mailboxes("8" + DR_MARTIN.rpps)
    assert isinstance(raised.value, PeerUnavailable)
    assert (raised.value.code, raised.value.retry_after) == (429, 30.0)
    assert "HTTP 429, Retry-After 30 s" in raised.value.reason


@pytest.mark.parametrize("status", [500, 502, 503, 410])
async def test_server_errors_are_transient(directory, server, status):
    server.fail_next(Fault(status))
    with pytest.raises(PeerUnavailable, match=f"HTTP {status}") as raised:
        await directory.mailboxes(CHU_IDNST)
    assert raised.value.code == status


async def test_error_on_a_later_page_is_transient_too():
    async with crowded_server(5) as server, FhirDirectory(server.base_url, server.api_key, timeout=1) as fhir:
        server.fail_next(Fault(503), after=2)           # Practitioner, PractitionerRole page 1, then page 2 fails
        with pytest.raises(PeerUnavailable, match="HTTP 503"):
            await fhir.mailboxes("8" + DR_MARTIN.rpps)
    assert "_getpages" in server.requests[2].query


async def test_bad_request_is_a_permanent_refusal(directory, server):
    server.fail_next(Fault(400))
    with pytest.raises(RejectedByPeer, match="HTTP 400"):
        await directory.mailboxes(CHU_IDNST)


async def test_timeout_is_transient_and_says_how_long(server):
    server.fail_next(Fault(hang=True))
    async with FhirDirectory(server.base_url, server.api_key, timeout=0.2) as fhir:
        with pytest.raises(PeerUnavailable, match="timeout after 0.2 s") as raised:
            await fhir.mailboxes("8" + DR_MARTIN.rpps)
    assert raised.value.code == "timeout"


async def test_connection_refused_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with FhirDirectory(f"http://127.0.0.1:{port}/fhir/v2", "key", timeout=1) as fhir:
        with pytest.raises(PeerUnavailable, match="connection refused") as raised:
            await fhir.mailboxes("8" + DR_MARTIN.rpps)
    assert raised.value.code == "connection"


async def test_not_found_means_no_mailboxes(server):
    async with FhirDirectory(server.base_url.replace("/fhir/v2", "/fhir/v9"), server.api_key, timeout=1) as fhir:
        assert await fhir.mailboxes("8" + DR_MARTIN.rpps) == []
