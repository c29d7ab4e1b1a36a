"""The SharedRecord contract: deposit, replace, withdraw and re-mask a document, and the two error families.

Adapters (one today; another joins :data:`ADAPTERS` with a :class:`Registry` of its own):

- ``dmp``: ``DmpRecord`` (``channels.xds.dmp``, as ``dmp_record`` builds it from ``[dmp]`` settings)
  against the DMP test double (``channels.testing.dmp_double``): mutual TLS on 127.0.0.1, each VIHF
  verified against the test cachet CA, the metadata checked against the CDA.

The adapter reaches its registry through a :class:`~tests.support.tcp_proxy.TcpProxy`, so a test can
make it unreachable. What the registry holds is read through :meth:`Registry.held`, and its answers
scripted through the ``*_next`` methods, so the tests name no double.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from channels.testing.pki import TestPki, make_test_pki
from channels.xds.dmp import dmp_record, dmp_settings
from channels.xds.vihf import verify_vihf
from router.errors import PeerUnavailable, RejectedByPeer
from router.model import Action, DocumentJob, Flags
from router.ports import DepositReceipt, DmpEntry, SharedRecord
from channels.testing.cachet_pki import CachetPki, make_cachet_pki, vihf_table
from channels.testing.cda import make_cda, make_job
from channels.testing.dmp_double import AnswerLost, DmpDouble, Hang, HttpError, RegistryFailure
from tests.support.tcp_proxy import TcpProxy

FIRST = "1.2.250.1.999.1.3^CONTRAT-DOC-1"
SECOND = "1.2.250.1.999.1.3^CONTRAT-DOC-2"
SET_ID = "1.2.250.1.999.1.4^CONTRAT-SET"
SOURCE_ID = "1.2.250.1.999.1.9"
DUPLICATE = "XDSDuplicateUniqueIdInRegistry"


def document(document_id: str = FIRST, *, action: Action = Action.PUBLISH, flags: Flags | None = None
             ) -> DocumentJob:
    """A job for version 1 (FIRST) or its replacement, version 2 (SECOND), of one fictitious document."""
    second = document_id == SECOND
    cda = make_cda(document_id=document_id, set_id=SET_ID, version=2 if second else 1,
                   parent_document_id=FIRST if second else None)
    return make_job(cda, action=action, flags=flags or Flags(dest_dmp=True))


def masking(document_id: str = FIRST, **codes: bool) -> DocumentJob:
    """A MODIF_CONF_CODE=Y job: the document stays, its confidentiality codes change (MASQUE_PS by default)."""
    return document(document_id, flags=Flags(dest_dmp=True, modif_conf_code=True, **(codes or {"masque_ps": True})))


# ---------------------------------------------------------------------------- registries


@dataclass(frozen=True)
class Held:
    """An entry as the registry holds it."""

    unique_id: str
    status: str                      # Approved, Deprecated, Deleted
    version: str
    content: bytes
    confidentiality: tuple[str, ...]


@dataclass
class Registry:
    """A SharedRecord adapter, the registry behind it, and what the tests can ask of that registry."""

    record: SharedRecord
    impatient: SharedRecord                              # the same, giving up after a fraction of a second
    proxy: TcpProxy                                      # between the adapter and the registry
    held: Callable[[str], Held | None]                   # entryUUID -> the entry, if the registry has it
    entries: Callable[[], dict[str, str]]                # every entryUUID -> its status
    refuse_next: Callable[[str, str], None]              # (error code, reason): the next call is refused
    busy_next: Callable[[], None]                        # the next call gets HTTP 503
    silent_next: Callable[[], None]                      # the next call gets no answer at all
    lose_next_answer: Callable[[], None]                 # the next call is done, but its answer never comes


@pytest.fixture(scope="session")
def dmp_pkis(tmp_path_factory) -> tuple[TestPki, CachetPki]:
    """The TLS PKI (client and server certificates) and the cachet PKI that signs and checks the VIHF."""
    return make_test_pki(tmp_path_factory.mktemp("dmp-pki")), make_cachet_pki(tmp_path_factory.mktemp("cachet"))


async def dmp_registry(request) -> AsyncIterator[Registry]:
    pki, cachet = request.getfixturevalue("dmp_pkis")
    ca = cachet.ca_cert.read_bytes()
    async with DmpDouble.from_pki(pki, verify_assertion=lambda assertion: verify_vihf(assertion, ca)) as double, \
            TcpProxy(double.port) as proxy:

        def record(timeout: float) -> SharedRecord:
            base = f"https://localhost:{proxy.port}"
            return dmp_record(dmp_settings({
                "url": f"{base}/repository", "registry_url": f"{base}/registry", "client_cert": str(pki.client_cert),
                "client_key": str(pki.client_key), "ca_file": str(pki.ca_cert), "timeout": timeout,
                "vihf": vihf_table(cachet)}, env={}), source_id=SOURCE_ID)

        def held(entry_uuid: str) -> Held | None:
            stored = double.by_entry_uuid(entry_uuid)
            if stored is None:
                return None
            return Held(stored.unique_id, stored.status.rpartition(":")[2], stored.version, stored.content,
                        tuple(stored.confidentiality_codes))

        records = [record(10.0), record(0.5)]
        yield Registry(
            record=records[0], impatient=records[1], proxy=proxy, held=held,
            entries=lambda: {uuid: stored.status for uuid, stored in double.documents.items()},
            refuse_next=lambda code, reason: double.fail_next(RegistryFailure(code, reason)),
            busy_next=lambda: double.fail_next(HttpError(503)),
            silent_next=lambda: double.fail_next(Hang()),
            lose_next_answer=lambda: double.fail_next(AnswerLost()))
        for made in records:
            await made.close()


ADAPTERS = {"dmp": dmp_registry}


@pytest.fixture(params=sorted(ADAPTERS))
async def registry(request) -> AsyncIterator[Registry]:
    async for made in ADAPTERS[request.param](request):
        yield made


# ---------------------------------------------------------------------------- what each call does


async def test_a_deposit_returns_a_receipt_naming_the_entry_that_now_holds_the_document(registry):
    job = document()

    receipt = await registry.record.deposit(job)

    assert receipt.detail
    assert (receipt.entry.document_id, receipt.entry.version) == (FIRST, 1)
    held = registry.held(receipt.entry.entry_uuid)
    assert (held.unique_id, held.status, held.content) == (FIRST, "Approved", job.cda)


async def test_a_replacement_deprecates_the_entry_it_replaces(registry):
    first = await registry.record.deposit(document())
    job = document(SECOND, action=Action.REPLACE)

    second = await registry.record.deposit(job, replaces=first.entry)

    assert registry.held(first.entry.entry_uuid).status == "Deprecated"
    held = registry.held(second.entry.entry_uuid)
    assert (held.unique_id, held.status, held.content) == (SECOND, "Approved", job.cda)


async def test_a_replacement_whose_parent_entry_is_unknown_replaces_the_parents_first_entry(registry):
    first = await registry.record.deposit(document())

    second = await registry.record.deposit(document(SECOND, action=Action.REPLACE), replaces=None)

    assert registry.held(first.entry.entry_uuid).status == "Deprecated"
    assert registry.held(second.entry.entry_uuid).status == "Approved"


async def test_a_replacement_after_a_masking_change_replaces_the_current_version(registry):
    deposited = await registry.record.deposit(document())
    masked = await registry.record.update_confidentiality(masking(), current=deposited.entry)

    second = await registry.record.deposit(document(SECOND, action=Action.REPLACE), replaces=masked.entry)

    assert registry.held(masked.entry.entry_uuid).status == "Deprecated"
    assert registry.held(second.entry.entry_uuid).status == "Approved"


async def test_a_withdrawal_deletes_the_entry_and_leaves_no_current_one(registry):
    deposited = await registry.record.deposit(document())

    receipt = await registry.record.withdraw(document(action=Action.DELETE), current=deposited.entry)

    assert receipt.detail and receipt.entry is None
    assert registry.held(deposited.entry.entry_uuid).status == "Deleted"


async def test_a_masking_change_makes_a_new_version_of_the_entry_and_deprecates_the_old(registry):
    deposited = await registry.record.deposit(document())

    receipt = await registry.record.update_confidentiality(masking(), current=deposited.entry)

    assert (receipt.entry.document_id, receipt.entry.version) == (FIRST, 2)
    assert registry.held(deposited.entry.entry_uuid).status == "Deprecated"
    held = registry.held(receipt.entry.entry_uuid)
    assert (held.unique_id, held.status, held.version) == (FIRST, "Approved", "2")
    assert "MASQUE_PS" in held.confidentiality


async def test_a_second_masking_change_updates_the_current_version_not_the_first(registry):
    deposited = await registry.record.deposit(document())
    masked = await registry.record.update_confidentiality(masking(), current=deposited.entry)

    receipt = await registry.record.update_confidentiality(masking(invisible_patient=True), current=masked.entry)

    assert receipt.entry.version == 3
    assert registry.held(masked.entry.entry_uuid).status == "Deprecated"
    held = registry.held(receipt.entry.entry_uuid)
    assert held.status == "Approved" and "INVISIBLE_PATIENT" in held.confidentiality
    assert "MASQUE_PS" not in held.confidentiality


async def test_a_withdrawal_after_a_masking_change_deletes_the_current_version(registry):
    deposited = await registry.record.deposit(document())
    masked = await registry.record.update_confidentiality(masking(), current=deposited.entry)

    await registry.record.withdraw(document(action=Action.DELETE), current=masked.entry)

    assert registry.held(masked.entry.entry_uuid).status == "Deleted"


# ---------------------------------------------------------------------------- errors, for every call

Call = Callable[[SharedRecord], Awaitable[DepositReceipt]]


async def prepare(registry: Registry, operation: str) -> Call:
    """Put the registry in the state ``operation`` needs; return the call under test."""
    if operation == "deposit":
        return lambda record: record.deposit(document())
    entry: DmpEntry = (await registry.record.deposit(document())).entry
    if operation == "replace":
        return lambda record: record.deposit(document(SECOND, action=Action.REPLACE), replaces=entry)
    if operation == "withdraw":
        return lambda record: record.withdraw(document(action=Action.DELETE), current=entry)
    return lambda record: record.update_confidentiality(masking(), current=entry)


OPERATIONS = ["deposit", "replace", "withdraw", "mask"]


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_refusal_is_permanent_carries_the_registrys_reason_and_changes_nothing(registry, operation):
    call = await prepare(registry, operation)
    before = registry.entries()
    registry.refuse_next("DMPClosed", "le DMP du patient est fermé")

    with pytest.raises(RejectedByPeer) as refused:
        await call(registry.record)

    assert "DMPClosed" in refused.value.reason and "le DMP du patient est fermé" in refused.value.reason
    assert registry.entries() == before


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_busy_registry_is_transient_and_the_same_call_succeeds_later(registry, operation):
    call = await prepare(registry, operation)
    before = registry.entries()
    registry.busy_next()

    with pytest.raises(PeerUnavailable):
        await call(registry.record)
    assert registry.entries() == before

    assert (await call(registry.record)).detail


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_an_unreachable_registry_is_transient_and_the_same_call_succeeds_once_it_is_back(registry, operation):
    call = await prepare(registry, operation)
    await registry.proxy.stop()

    with pytest.raises(PeerUnavailable):
        await call(registry.record)

    await registry.proxy.start()
    assert (await call(registry.record)).detail


async def test_a_registry_that_does_not_answer_is_given_up_on_as_transient(registry):
    registry.silent_next()

    with pytest.raises(PeerUnavailable):
        await registry.impatient.deposit(document())


async def test_a_deposit_retried_after_a_lost_answer_is_refused_as_a_recognisable_duplicate(registry):
    """The deposit stage counts this refusal, on a retry, as the deposit it is (router/stages/deposit.py)."""
    registry.lose_next_answer()
    with pytest.raises(PeerUnavailable):
        await registry.impatient.deposit(document())
    stored = registry.entries()

    with pytest.raises(RejectedByPeer) as refused:
        await registry.record.deposit(document())

    assert refused.value.code == DUPLICATE
    assert registry.entries() == stored and len(stored) == 1
