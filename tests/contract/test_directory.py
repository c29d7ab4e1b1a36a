"""The Directory contract: every adapter, and every composition of adapters, must pass each test here.

Adapters, each seeded with the same fictitious data set (:data:`EVERYONE`):

- ``static``: ``StaticDirectory`` from ``[[correspondents]]`` tables;
- ``index``: ``IndexDirectory`` over an index the importer builds from extraction files;
- ``fhir``: ``FhirDirectory`` against the local Annuaire Santé FHIR API (``tests.support.fhir_server``);
- ``cache``: ``CachedDirectory`` in front of the FHIR directory;
- ``fallback``: ``FallbackDirectory``, the FHIR API first and the index behind it;
- ``layered``: what ``build_directory`` makes of ``[[correspondents]]`` (the structures) over
  ``[directory]`` with both the FHIR API and the index (the professionals).

The FHIR API is reached through a :class:`~tests.support.tcp_proxy.TcpProxy`, so a test can make it
unreachable and bring it back; the index is made unreachable by moving its file away. The static
directory has no source that can fail, so it is left out of the outage tests only.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from channels.directory.cache import CachedDirectory
from channels.directory.compose import build_directory
from channels.directory.fallback import FallbackDirectory
from channels.directory.fhir import FhirDirectory
from channels.directory.importer import import_extraction
from channels.directory.index import IndexDirectory
from channels.directory.static import StaticDirectory
from router.errors import PeerUnavailable
from router.ports import Directory
from tests.support import directory_files as files
from tests.support.fhir_server import FhirServer, mss, organization, practitioner
from tests.support.tcp_proxy import TcpProxy

# ---------------------------------------------------------------------------- the data set


@dataclass(frozen=True)
class Holder:
    """A professional (``number`` gives the RPPS) or a structure, and the mailboxes it has."""

    name: str
    mailboxes: tuple[tuple[str, str], ...]          # (address, kind)
    number: int = 0
    structure: str = ""

    @property
    def identifier(self) -> str:
        return "8" + files.rpps(self.number) if self.number else self.structure


MARTIN = Holder("MARTIN Sophie", ((f"sophie.martin@{files.DOMAIN}", "PER"),
                                  (f"cabinet.martin@{files.DOMAIN}", "CAB")), number=1)
DURAND = Holder("DURAND Chloé", ((f"chloe.durand@{files.DOMAIN}", "PER"),), number=2)
LEFEVRE = Holder("LEFÈVRE Étienne", (), number=3)                 # a professional without a mailbox
CLINIQUE = Holder("CLINIQUE FICTIVE", ((f"secretariat@clinique.{files.DOMAIN}", "ORG"),), structure="1990000015")
UNKNOWN = "8" + files.rpps(4)

PROFESSIONALS = (MARTIN, DURAND, LEFEVRE)
STRUCTURES = (CLINIQUE,)
EVERYONE = PROFESSIONALS + STRUCTURES
WITH_MAILBOXES = (MARTIN, DURAND, CLINIQUE)


def correspondents(holders) -> list[dict[str, str]]:
    """``[[correspondents]]`` tables for the holders' mailboxes."""
    return [{**({"rpps": files.rpps(h.number)} if h.number else {"idnat": h.structure}),
             "address": address, "kind": kind, "name": h.name}
            for h in holders for address, kind in h.mailboxes]


def build_index(directory: Path, holders) -> Path:
    """An index imported from an MSSanté extraction and a PS_LibreAcces one (who exists without a mailbox)."""
    rows = []
    for h in holders:
        for address, kind in h.mailboxes:
            if h.number:
                family, given = h.name.split()
                rows.append({**files.per(h.number, family=family, given=given, address=address), "Type de BAL": kind})
            else:
                rows.append(files.org(h.structure, address, kind=kind, name=h.name))
    people = [files.person(h.number, family=h.name.split()[0], given=h.name.split()[1]) for h in holders if h.number]
    index = directory / "directory.sqlite"
    import_extraction(files.write_mssante(directory, rows), index)
    import_extraction(files.write_people(directory, people), index)
    return index


def fhir_resources(holders) -> list[dict]:
    found = []
    for h in holders:
        telecom = [mss(address, kind) for address, kind in h.mailboxes]
        if h.number:
            family, given = h.name.split()
            found.append(practitioner(f"p-{h.number}", files.rpps(h.number), family, given, telecom=telecom))
        else:
            found.append(organization(f"o-{h.structure}", h.structure, h.name, telecom=telecom))
    return found


# ---------------------------------------------------------------------------- adapters


@dataclass
class Kit:
    """A seeded directory, and (when it has a source that can fail) how to cut that source and mend it."""

    directory: Directory
    outage: Callable[[], Awaitable[None]] | None = None
    mend: Callable[[], Awaitable[None]] | None = None


class IndexFile:
    """The index file, which an outage moves away and a mend puts back."""

    def __init__(self, path: Path):
        self.path = path
        self.away = path.with_name(path.name + ".away")

    async def hide(self) -> None:
        os.replace(self.path, self.away)

    async def restore(self) -> None:
        os.replace(self.away, self.path)


async def fhir_api(stack: AsyncExitStack, holders) -> tuple[str, str, TcpProxy]:
    """A local FHIR API seeded with ``holders``, behind a proxy: (base URL, API key, proxy)."""
    server = await stack.enter_async_context(FhirServer(resources=fhir_resources(holders)))
    proxy = await stack.enter_async_context(TcpProxy(server.port))
    return f"http://127.0.0.1:{proxy.port}/fhir/v2", server.api_key, proxy


def both(*steps: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        for step in steps:
            await step()
    return run


async def static_kit(stack: AsyncExitStack, tmp_path: Path) -> Kit:
    return Kit(StaticDirectory.from_config(correspondents(EVERYONE)))


async def index_kit(stack: AsyncExitStack, tmp_path: Path) -> Kit:
    index = IndexFile(build_index(tmp_path, EVERYONE))
    directory = IndexDirectory(index.path)
    stack.push_async_callback(directory.close)
    return Kit(directory, index.hide, index.restore)


async def fhir_kit(stack: AsyncExitStack, tmp_path: Path) -> Kit:
    base_url, key, proxy = await fhir_api(stack, EVERYONE)
    directory = FhirDirectory(base_url, key, timeout=5.0)
    stack.push_async_callback(directory.close)
    return Kit(directory, proxy.stop, proxy.start)


async def cache_kit(stack: AsyncExitStack, tmp_path: Path) -> Kit:
    base_url, key, proxy = await fhir_api(stack, EVERYONE)
    directory = CachedDirectory(FhirDirectory(base_url, key, timeout=5.0), ttl_seconds=3600)
    stack.push_async_callback(directory.close)
    return Kit(directory, proxy.stop, proxy.start)


async def fallback_kit(stack: AsyncExitStack, tmp_path: Path) -> Kit:
    base_url, key, proxy = await fhir_api(stack, EVERYONE)
    index = IndexFile(build_index(tmp_path, EVERYONE))
    directory = FallbackDirectory(FhirDirectory(base_url, key, timeout=5.0), IndexDirectory(index.path))
    stack.push_async_callback(directory.close)
    return Kit(directory, both(proxy.stop, index.hide), both(proxy.start, index.restore))


async def layered_kit(stack: AsyncExitStack, tmp_path: Path) -> Kit:
    base_url, key, proxy = await fhir_api(stack, PROFESSIONALS)
    index = IndexFile(build_index(tmp_path, PROFESSIONALS))
    directory = build_directory(correspondents(STRUCTURES),
                                {"index": str(index.path), "fhir": {"base_url": base_url, "timeout": 5.0}},
                                env={"ESANTE_API_KEY": key})
    stack.push_async_callback(directory.close)
    return Kit(directory, both(proxy.stop, index.hide), both(proxy.start, index.restore))


ADAPTERS = {"static": static_kit, "index": index_kit, "fhir": fhir_kit, "cache": cache_kit,
            "fallback": fallback_kit, "layered": layered_kit}
#: The adapters whose source can be cut (the static directory has none).
FALLIBLE = sorted(set(ADAPTERS) - {"static"})


@asynccontextmanager
async def seeded(name: str, tmp_path: Path) -> AsyncIterator[Kit]:
    async with AsyncExitStack() as stack:
        yield await ADAPTERS[name](stack, tmp_path)


@pytest.fixture(params=sorted(ADAPTERS))
async def kit(request, tmp_path) -> AsyncIterator[Kit]:
    async with seeded(request.param, tmp_path) as made:
        yield made


@pytest.fixture(params=FALLIBLE)
async def fallible(request, tmp_path) -> AsyncIterator[Kit]:
    async with seeded(request.param, tmp_path) as made:
        yield made


def pairs(mailboxes) -> list[tuple[str, str]]:
    return sorted((m.address, m.kind) for m in mailboxes)


# ---------------------------------------------------------------------------- lookups


@pytest.mark.parametrize("holder", WITH_MAILBOXES, ids=["two-mailboxes", "one-mailbox", "structure"])
async def test_a_known_identifier_gets_exactly_its_mailboxes(kit, holder):
    assert pairs(await kit.directory.mailboxes(holder.identifier)) == sorted(holder.mailboxes)


@pytest.mark.parametrize("holder", WITH_MAILBOXES, ids=["two-mailboxes", "one-mailbox", "structure"])
async def test_each_mailbox_names_the_identifier_it_was_found_under(kit, holder):
    found = await kit.directory.mailboxes(holder.identifier)
    assert {m.identifier for m in found} == {holder.identifier}


async def test_each_mailbox_says_where_it_came_from(kit):
    for holder in WITH_MAILBOXES:
        assert all(m.source for m in await kit.directory.mailboxes(holder.identifier))


async def test_a_professional_without_a_mailbox_has_none(kit):
    assert await kit.directory.mailboxes(LEFEVRE.identifier) == []


async def test_an_unknown_identifier_is_an_empty_answer_not_an_error(kit):
    assert await kit.directory.mailboxes(UNKNOWN) == []


async def test_the_answer_belongs_to_the_caller(kit):
    (await kit.directory.mailboxes(MARTIN.identifier)).clear()
    assert pairs(await kit.directory.mailboxes(MARTIN.identifier)) == sorted(MARTIN.mailboxes)


async def test_concurrent_lookups_each_get_their_own_answer(kit):
    asked = [*EVERYONE, *EVERYONE, MARTIN, MARTIN]
    answers = await asyncio.gather(*(kit.directory.mailboxes(h.identifier) for h in asked),
                                   kit.directory.mailboxes(UNKNOWN))
    assert [pairs(found) for found in answers] == [sorted(h.mailboxes) for h in asked] + [[]]


# ---------------------------------------------------------------------------- an unreachable source


@pytest.mark.parametrize("identifier", [MARTIN.identifier, UNKNOWN], ids=["known", "unknown"])
async def test_an_unreachable_source_is_a_transient_error_never_an_empty_answer(fallible, identifier):
    await fallible.outage()
    with pytest.raises(PeerUnavailable):
        await fallible.directory.mailboxes(identifier)


async def test_a_failed_lookup_is_not_remembered_once_the_source_is_back(fallible):
    await fallible.outage()
    with pytest.raises(PeerUnavailable):
        await fallible.directory.mailboxes(MARTIN.identifier)
    await fallible.mend()
    assert pairs(await fallible.directory.mailboxes(MARTIN.identifier)) == sorted(MARTIN.mailboxes)
