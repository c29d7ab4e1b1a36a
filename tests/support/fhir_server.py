"""A local stand-in for the Annuaire Santé FHIR API (french-interop.md §3.2), for the directory tests.

An HTTP/1.1 server on 127.0.0.1 (plain ``asyncio.start_server``: one request
per connection, ``Connection: close``) under ``/fhir/v2`` that answers GET
searches the way the real API does: searchset Bundles with ``entry[].resource``
and ``search.mode`` match/include, ``link`` self/next, paging through
``[base]?_getpages=…&_getpagesoffset=…`` links (HAPI style), 401 with an
OperationOutcome without the right ``ESANTE-API-KEY`` header.

Supported searches: ``Practitioner?identifier=`` (value or system|value,
comma = or), ``PractitionerRole?practitioner=<ids>`` with
``_include=PractitionerRole:organization``, ``Organization?identifier=``.
:meth:`FhirServer.fail_next` scripts the next answers (429 with Retry-After,
500, 503, a hang until the server stops); :attr:`FhirServer.requests` records
what was asked. The builders below make resources with fictitious data shaped
like the directory's (FR Core emailType and ``as-ext-mailbox-mss-metadata``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
ID_TYPE_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
EMAIL_TYPE_URL = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"
MESSAGING_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie"
METADATA_URL = "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata"
TYPE_BAL_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL"
PROFESSION_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
BASE_PATH = "/fhir/v2"


# ------------------------------------------------------------------ resource builders

def mss(address: str, kind: str = "PER", *, service: str = "", red_list: bool | None = None,
        description: str = "") -> dict[str, Any]:
    """An MSSanté mailbox as a ``telecom`` (profile as-mailbox-mss)."""
    meta: list[dict[str, Any]] = [{"url": "type", "valueCodeableConcept": {
        "coding": [{"system": TYPE_BAL_SYSTEM, "code": kind}]}}]
    if description:
        meta.append({"url": "description", "valueString": description})
    if service:
        meta.append({"url": "service", "valueString": service})
    if red_list is not None:
        meta.append({"url": "listeRouge", "valueBoolean": red_list})
    return {"extension": [
        {"url": EMAIL_TYPE_URL, "valueCoding": {"system": MESSAGING_SYSTEM, "code": "MSSANTE"}},
        {"url": METADATA_URL, "extension": meta}], "system": "email", "value": address}


def email(address: str, email_type: str = "") -> dict[str, Any]:
    """An ordinary contact email (no emailType, or another type such as APICRYPT)."""
    telecom: dict[str, Any] = {"system": "email", "value": address}
    if email_type:
        telecom["extension"] = [{"url": EMAIL_TYPE_URL,
                                 "valueCoding": {"system": MESSAGING_SYSTEM, "code": email_type}}]
    return telecom


def practitioner(id_: str, rpps: str, family: str, given: str, *, civility: str = "DR",
                 telecom: Iterable[dict[str, Any]] = (), profession: tuple[str, str] = ("10", "Médecin")
                 ) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": id_, "identifier": [
        {"use": "official", "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "IDNPS"}]},
         "system": IDNPS_SYSTEM, "value": "8" + rpps},
        {"use": "official", "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "RPPS"}]},
         "system": RPPS_SYSTEM, "value": rpps}],
        "active": True, "name": [{"family": family, "given": [given], "suffix": [civility] if civility else []}],
        "telecom": list(telecom),
        "qualification": [{"code": {"coding": [
            {"system": PROFESSION_SYSTEM, "code": profession[0], "display": profession[1]}]}}]}


def practitioner_role(id_: str, practitioner_id: str, organization_id: str = "", *,
                      telecom: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    role: dict[str, Any] = {"resourceType": "PractitionerRole", "id": id_, "active": True,
                            "practitioner": {"reference": f"Practitioner/{practitioner_id}"},
                            "telecom": list(telecom)}
    if organization_id:
        role["organization"] = {"reference": f"Organization/{organization_id}"}
    return role


def organization(id_: str, idnst: str, name: str, *, postal_code: str = "",
                 telecom: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    org: dict[str, Any] = {"resourceType": "Organization", "id": id_, "active": True, "identifier": [
        {"use": "official", "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "IDNST"}]},
         "system": IDNST_SYSTEM, "value": idnst}], "name": name, "telecom": list(telecom)}
    if postal_code:
        org["address"] = [{"postalCode": postal_code, "country": "FRA"}]
    return org


# ------------------------------------------------------------------ the server

@dataclass(frozen=True)
class Fault:
    """One scripted answer: an HTTP status (with headers), or ``hang`` (never answer)."""

    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]          # lower-case names


class FhirServer:
    """A scripted Annuaire Santé FHIR API on 127.0.0.1; ``async with FhirServer(...) as server``."""

    def __init__(self, api_key: str = "test-esante-key", *, page_size: int = 50,
                 resources: Iterable[dict[str, Any]] = (), links_base: str = ""):
        self.api_key = api_key
        self.links_base = links_base     # when set, paging links name this base (a misconfigured proxy)
        self.page_size = page_size
        self.resources: list[dict[str, Any]] = list(resources)
        self.requests: list[Request] = []
        self._faults: deque[Fault] = deque()
        self._served_before_faults = 0
        self._pages: dict[str, list[list[dict[str, Any]]]] = {}
        self._tokens = itertools.count(1)
        self._server: asyncio.AbstractServer | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{BASE_PATH}"

    def add(self, *resources: dict[str, Any]) -> None:
        self.resources.extend(resources)

    def fail_next(self, *faults: Fault, after: int = 0) -> None:
        """The next requests get these answers, in order, once ``after`` requests were served normally."""
        self._faults.extend(faults)
        self._served_before_faults = after

    async def __aenter__(self) -> FhirServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stopping.set()
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    # ---------------------------------------------------------------- HTTP

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            request = await _read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            status, headers, body = await self._answer(request)
            head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
                    "Content-Type: application/fhir+json;charset=utf-8",
                    f"Content-Length: {len(body)}", "Connection: close",
                    *(f"{name}: {value}" for name, value in headers.items())]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        if request.headers.get("esante-api-key") != self.api_key:
            return 401, {}, _outcome("security", "Invalid or missing ESANTE-API-KEY")
        if self._faults and self._served_before_faults:
            self._served_before_faults -= 1
        elif self._faults:
            fault = self._faults.popleft()
            if fault.hang:
                await self._stopping.wait()
                raise ConnectionError("server stopping")
            return fault.status, dict(fault.headers), _outcome("transient", f"scripted {fault.status}")
        if request.method != "GET" or not request.path.startswith(BASE_PATH):
            return 404, {}, _outcome("not-found", "unknown path")
        resource_type = request.path[len(BASE_PATH):].strip("/")
        if not resource_type and "_getpages" in request.query:
            return self._page(request.query["_getpages"], int(request.query.get("_getpagesoffset", "0")))
        if resource_type not in ("Practitioner", "PractitionerRole", "Organization"):
            return 404, {}, _outcome("not-found", f"unknown resource type {resource_type!r}")
        matches = [r for r in self.resources
                   if r["resourceType"] == resource_type and _matches(r, request.query)]
        pages = [self._with_includes(matches[i:i + self.page_size], request.query)
                 for i in range(0, len(matches), self.page_size)] or [[]]
        token = str(next(self._tokens))
        self._pages[token] = pages
        return self._page(token, 0, total=len(matches))

    def _page(self, token: str, offset: int, total: int | None = None) -> tuple[int, dict[str, str], bytes]:
        pages = self._pages.get(token)
        index = offset // self.page_size
        if pages is None or index >= len(pages):
            return 410, {}, _outcome("not-found", "search expired")
        bundle: dict[str, Any] = {"resourceType": "Bundle", "id": f"{token}-{index}", "type": "searchset",
                                  "link": [{"relation": "self", "url": self._page_url(token, offset)}],
                                  "entry": pages[index]}
        if total is not None:
            bundle["total"] = total
        if index + 1 < len(pages):
            bundle["link"].append({"relation": "next", "url": self._page_url(token, offset + self.page_size)})
        return 200, {}, json.dumps(bundle).encode()

    def _page_url(self, token: str, offset: int) -> str:
        return f"{self.links_base or self.base_url}?" + urlencode({"_getpages": token, "_getpagesoffset": offset,
                                                "_count": self.page_size, "_bundletype": "searchset"})

    def _with_includes(self, matches: list[dict[str, Any]], query: Mapping[str, str]) -> list[dict[str, Any]]:
        entries = [_entry(r, "match") for r in matches]
        if query.get("_include") == "PractitionerRole:organization":
            wanted = {(r.get("organization") or {}).get("reference") for r in matches}
            entries += [_entry(r, "include") for r in self.resources
                        if f"{r['resourceType']}/{r['id']}" in wanted]
        return entries


def _matches(resource: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    if "identifier" in query:
        tokens = query["identifier"].split(",")
        have = [(i.get("system", ""), i.get("value", "")) for i in resource.get("identifier", ())]
        if not any(_token_ok(token, system, value) for token in tokens for system, value in have):
            return False
    if "practitioner" in query:
        wanted = {ref if "/" in ref else f"Practitioner/{ref}" for ref in query["practitioner"].split(",")}
        if (resource.get("practitioner") or {}).get("reference") not in wanted:
            return False
    return True


def _token_ok(token: str, system: str, value: str) -> bool:
    if "|" in token:
        want_system, want_value = token.split("|", 1)
        return want_system == system and want_value == value
    return token == value


def _entry(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    return {"fullUrl": f"https://gateway.example.invalid{BASE_PATH}/{resource['resourceType']}/{resource['id']}",
            "resource": resource, "search": {"mode": mode}}


def _outcome(code: str, text: str) -> bytes:
    return json.dumps({"resourceType": "OperationOutcome",
                       "issue": [{"severity": "error", "code": code, "diagnostics": text}]}).encode()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if int(headers.get("content-length", "0") or 0):
        await reader.readexactly(int(headers["content-length"]))
    parts = urlsplit(target)
    query = {name: values[-1] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
    return Request(method, parts.path, query, headers)


_REASONS = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 410: "Gone",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}
