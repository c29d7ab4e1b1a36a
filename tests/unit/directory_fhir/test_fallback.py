"""FallbackDirectory: the FHIR API first, the local copy when it is unavailable, and the reason kept."""

import pytest
from structlog.testing import capture_logs

from channels.directory.fallback import FallbackDirectory
from channels.directory.fhir import FhirDirectory
from channels.directory.static import StaticDirectory
from router.errors import ConfigError, PeerUnavailable
from router.ports import Mailbox
from channels.testing.adt_messages import DR_LEFEVRE, DR_MARTIN
from tests.support.fhir_server import Fault

MARTIN = "8" + DR_MARTIN.rpps

LOCAL_INDEX = StaticDirectory([
    Mailbox(address="sophie.martin@medecin.mssante.fr", identifier=MARTIN, name="DR Sophie MARTIN",
            source="annuaire extraction"),
])


@pytest.fixture
def directory_with_fallback(directory):
    return FallbackDirectory(directory, LOCAL_INDEX)


async def test_primary_answers_when_it_can(directory_with_fallback):
    found = await directory_with_fallback.mailboxes(MARTIN)
    assert {m.source for m in found} == {"annuaire santé FHIR API"}
    assert len(found) == 2


async def test_timeout_falls_back_and_the_source_says_why(server):
    server.fail_next(Fault(hang=True))
    async with FhirDirectory(server.base_url, server.api_key, timeout=0.2) as fhir:
        found = await FallbackDirectory(fhir, LOCAL_INDEX).mailboxes(MARTIN)
    assert [m.address for m in found] == ["sophie.martin@medecin.mssante.fr"]
    assert found[0].source == "annuaire extraction (Annuaire Santé FHIR API unavailable: timeout after 0.2 s)"


@pytest.mark.parametrize(("fault", "said"), [
    (Fault(429, {"Retry-After": "5"}), "rate limited (HTTP 429, Retry-After 5 s)"),
    (Fault(500), "HTTP 500"),
    (Fault(503), "HTTP 503"),
])
async def test_transient_answers_fall_back(directory_with_fallback, server, fault, said):
    server.fail_next(fault)
    found = await directory_with_fallback.mailboxes(MARTIN)
    assert found[0].source == f"annuaire extraction (Annuaire Santé FHIR API unavailable: {said})"


async def test_fallback_logs_a_warning_with_the_identifier_only(directory_with_fallback, server):
    server.fail_next(Fault(503))
    with capture_logs() as logs:
        await directory_with_fallback.mailboxes(MARTIN)
    assert logs == [{"event": "directory.fallback", "log_level": "warning", "identifier": MARTIN,
                     "reason": "Annuaire Santé FHIR API unavailable: HTTP 503"}]


async def test_refused_key_is_not_hidden_by_the_fallback(server):
    async with FhirDirectory(server.base_url, "wrong-key", timeout=1) as fhir:
        with pytest.raises(ConfigError, match="API key"):
            await FallbackDirectory(fhir, LOCAL_INDEX).mailboxes(MARTIN)


async def test_fallback_knowing_nothing_keeps_the_error_transient(directory_with_fallback, server):
    server.fail_next(Fault(503))
    with pytest.raises(PeerUnavailable, match="HTTP 503"):
        await directory_with_fallback.mailboxes("8" + DR_LEFEVRE.rpps)


async def test_fallback_failing_too_names_both_reasons(directory, server):
    class BrokenIndex:
        async def mailboxes(self, identifier):
            raise ConfigError("directory.index", "the index file is missing")

    server.fail_next(Fault(503))
    with pytest.raises(PeerUnavailable) as raised:
        await FallbackDirectory(directory, BrokenIndex()).mailboxes(MARTIN)
    assert raised.value.reason == ("Annuaire Santé FHIR API unavailable: HTTP 503; the fallback directory "
                                   "failed too: directory.index: the index file is missing")
