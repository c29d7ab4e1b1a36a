"""The Annuaire Santé FHIR API as a :class:`~router.ports.Directory` (french-interop.md §3.2).

URL form: ``https://gateway.api.esante.gouv.fr/fhir/v2`` with the API key in
the ``ESANTE-API-KEY`` header (from the environment variable the configuration
names, ``ESANTE_API_KEY`` by default). Read-only GET searches, searchset
Bundles of 50, paging through the Bundle's ``next`` link.

What is asked, for an IdNat_PS (``8``+RPPS, ``0``+ADELI; a bare 11-digit RPPS
is taken as ``8``+RPPS):

1. ``Practitioner?identifier=<IdNat>``: the PER/CAB mailboxes attached to the
   RPPS alone, the holder's name and profession, and the technical ids;
2. ``PractitionerRole?practitioner=<ids>&_include=PractitionerRole:organization``:
   the PER/CAB mailboxes attached to RPPS + structure, with the structure's
   name, id and postal code from the included Organization.

Two plain searches rather than one ``_revinclude`` + ``_include:iterate``: the
API documents ``practitioner`` (a reference to the technical id) and
``_include`` on PractitionerRole, not chained ``practitioner.identifier`` nor
iterated includes, so this only uses what it says it supports.

For anything else (a structure id): ``Organization?identifier=<id>`` gives the
ORG/APP mailboxes. Only ``telecom`` entries with ``system = email`` and the FR
Core ``emailType`` extension set to ``MSSANTE`` are mailboxes; an
Organization's ordinary contact emails are skipped. The ``as-ext-mailbox-mss-
metadata`` extension gives the type (PER/ORG/APP/CAB), the service and the
liste rouge flag; red-listed mailboxes are returned flagged, never dropped,
so the resolver can say why it did not use them.

Errors are translated here: timeouts, connection failures, 429, 5xx and an expired paging link (410) become
:class:`DirectoryUnavailable` (a ``PeerUnavailable``, so callers may fall back
or retry); 401/403 a :class:`~router.errors.ConfigError` naming the API key;
404 and empty Bundles mean no mailboxes; other 4xx a ``RejectedByPeer``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from router.errors import ConfigError, PeerUnavailable, RejectedByPeer
from router.identity import idnat_ps
from router.ports import Directory, Mailbox

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://gateway.api.esante.gouv.fr/fhir/v2"
API_KEY_HEADER = "ESANTE-API-KEY"
SOURCE = "annuaire santé FHIR API"

#: Last path segment of the FR Core emailType extension (FR Core 2.x, then the 1.x name).
EMAIL_TYPE_IDS = frozenset({"fr-core-contact-point-email-type", "FrContactPointEmailType"})
METADATA_ID = "as-ext-mailbox-mss-metadata"
MSSANTE_CODE = "MSSANTE"
KINDS = frozenset({"PER", "ORG", "APP", "CAB"})
#: Identifier system of the IdNat_Struct in the directory's Organization resources.
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"


class DirectoryUnavailable(PeerUnavailable):
    """The FHIR API cannot answer now; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, message: str, *, code: int | str | None = None, retry_after: float | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class FhirDirectory:
    """Mailboxes of a professional or a structure, asked of the Annuaire Santé FHIR API."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0, page_limit: int = 10):
        if not api_key:
            raise ConfigError("directory.fhir.api_key", "no Annuaire Santé API key (ESANTE-API-KEY) was given")
        if page_limit < 1:
            raise ConfigError("directory.fhir.max_pages", f"{page_limit!r} must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.page_limit = page_limit
        self._api_key = api_key
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> FhirDirectory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def mailboxes(self, identifier: str) -> list[Mailbox]:
        ident = idnat_ps(identifier)
        if _is_idnat_ps(ident):
            return await self._practitioner_mailboxes(ident)
        return await self._organization_mailboxes(ident)

    # ---------------------------------------------------------------- lookups

    async def _practitioner_mailboxes(self, idnat: str) -> list[Mailbox]:
        practitioners = [r for r in await self._search("Practitioner", {"identifier": idnat})
                         if r.get("resourceType") == "Practitioner"]
        if not practitioners:
            return []
        found: list[Mailbox] = []
        people: dict[str, tuple[str, str]] = {}
        for practitioner in practitioners:
            name, profession = _display_name(practitioner), _profession(practitioner)
            people[f"Practitioner/{practitioner.get('id', '')}"] = (name, profession)
            found += _mailboxes(practitioner, "PER", identifier=idnat, name=name, profession=profession)
        ids = ",".join(str(p["id"]) for p in practitioners if p.get("id"))
        if ids:
            resources = await self._search("PractitionerRole", {
                "practitioner": ids, "_include": "PractitionerRole:organization"})
            organizations = {f"Organization/{r.get('id', '')}": r for r in resources
                             if r.get("resourceType") == "Organization"}
            for role in resources:
                if role.get("resourceType") != "PractitionerRole":
                    continue
                name, profession = people.get(_reference(role, "practitioner"), ("", ""))
                organization = organizations.get(_reference(role, "organization"), {})
                found += _mailboxes(role, "PER", identifier=idnat, name=name, profession=profession,
                                    **_structure(organization))
        return _unique(found)

    async def _organization_mailboxes(self, structure_id: str) -> list[Mailbox]:
        found: list[Mailbox] = []
        for organization in await self._search("Organization", {"identifier": structure_id}):
            if organization.get("resourceType") == "Organization":
                found += _mailboxes(organization, "ORG", identifier=structure_id, **_structure(organization))
        return _unique(found)

    # ---------------------------------------------------------------- transport

    async def _search(self, resource_type: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every resource of every page of one search, up to ``page_limit`` pages."""
        url: str | None = f"{self.base_url}/{resource_type}"
        query: Mapping[str, str] | None = params
        resources: list[dict[str, Any]] = []
        for page in range(self.page_limit):
            bundle = await self._get(url, query)
            if bundle is None:
                return resources
            resources += [entry["resource"] for entry in bundle.get("entry") or ()
                          if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)]
            url, query = _next_link(bundle), None
            if url is None:
                return resources
            if not self._same_origin(url):
                log.warning("fhir_directory.foreign_next_link", resource=resource_type, pages=page + 1)
                return resources
        log.warning("fhir_directory.page_limit", resource=resource_type, pages=self.page_limit)
        return resources

    async def _get(self, url: str, params: Mapping[str, str] | None) -> dict[str, Any] | None:
        client = self._http()
        try:
            response = await client.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise DirectoryUnavailable(f"Annuaire Santé FHIR API unavailable: timeout after {self.timeout:g} s",
                                       code="timeout") from exc
        except httpx.TransportError as exc:
            raise DirectoryUnavailable("Annuaire Santé FHIR API unavailable: "
                                       f"{_transport_reason(exc)}", code="connection") from exc
        status = response.status_code
        if status == 404:
            return None
        if status in (401, 403):
            raise ConfigError("directory.fhir.api_key",
                              f"the Annuaire Santé FHIR API refused the API key (HTTP {status}); "
                              "check the ESANTE-API-KEY subscription on portal.api.esante.gouv.fr")
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            hint = f", Retry-After {retry_after:g} s" if retry_after is not None else ""
            raise DirectoryUnavailable(f"Annuaire Santé FHIR API unavailable: rate limited (HTTP 429{hint})",
                                       code=429, retry_after=retry_after)
        if status >= 500 or status == 410:      # 410: a paging link expired; searching again will do
            raise DirectoryUnavailable(f"Annuaire Santé FHIR API unavailable: HTTP {status}", code=status)
        if status >= 400:
            raise RejectedByPeer(f"Annuaire Santé FHIR API refused the search: HTTP {status}", code=status)
        try:
            bundle = response.json()
        except ValueError as exc:
            raise DirectoryUnavailable("Annuaire Santé FHIR API unavailable: the answer is not JSON",
                                       code=status) from exc
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise DirectoryUnavailable("Annuaire Santé FHIR API unavailable: the answer is not a FHIR Bundle",
                                       code=status)
        return bundle

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers={API_KEY_HEADER: self._api_key, "Accept": "application/fhir+json"},
                timeout=httpx.Timeout(self.timeout), follow_redirects=False)
        return self._client

    def _same_origin(self, url: str) -> bool:
        """Whether a ``next`` link stays on the API's host (the API key is never sent elsewhere)."""
        here, there = urlsplit(self.base_url), urlsplit(url)
        return (here.scheme, here.netloc) == (there.scheme, there.netloc)


def from_config(mapping: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Directory:
    """Build the FHIR directory (cached unless ``cache_ttl`` is 0) from a ``[directory.fhir]`` table.

    Keys: ``base_url`` (default the production gateway), ``api_key_env`` (the
    name of the environment variable holding the key, default
    ``ESANTE_API_KEY``), ``timeout`` (seconds, default 5), ``cache_ttl``
    (seconds, default 21600 = 6 h; the directory is refreshed daily),
    ``negative_ttl`` (default 300 s), ``cache_size`` (default 10000) and
    ``max_pages`` (default 10).
    """
    from channels.directory.cache import CachedDirectory

    env = os.environ if environ is None else environ
    key_env = str(mapping.get("api_key_env", "ESANTE_API_KEY"))
    api_key = env.get(key_env, "").strip()
    if not api_key:
        raise ConfigError("directory.fhir.api_key_env",
                          f"environment variable {key_env} (the Annuaire Santé API key) is not set")
    base_url = str(mapping.get("base_url", DEFAULT_BASE_URL))
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise ConfigError("directory.fhir.base_url", f"{base_url!r} is not an http(s) URL")
    directory = FhirDirectory(base_url, api_key, timeout=_number(mapping, "timeout", 5.0),
                              page_limit=int(_number(mapping, "max_pages", 10)))
    ttl = _number(mapping, "cache_ttl", 21600.0)
    if ttl <= 0:
        return directory
    return CachedDirectory(directory, ttl_seconds=ttl, max_entries=int(_number(mapping, "cache_size", 10000)),
                           negative_ttl_seconds=min(ttl, _number(mapping, "negative_ttl", 300.0)))


# -------------------------------------------------------------------- reading resources

def _mailboxes(resource: Mapping[str, Any], default_kind: str, **fields: Any) -> Iterator[Mailbox]:
    """The MSSanté mailboxes among a resource's ``telecom`` entries."""
    for telecom in resource.get("telecom") or ():
        if not isinstance(telecom, dict) or telecom.get("system") != "email" or not _is_mssante(telecom):
            continue
        address = str(telecom.get("value", "")).strip()
        if not address:
            continue
        meta = _metadata(telecom)
        kind = str(meta.get("type", "")).upper()
        yield Mailbox(address=address, kind=kind if kind in KINDS else default_kind,
                      service=meta.get("service", ""), red_list=meta.get("listeRouge") is True,
                      source=SOURCE, **fields)


def _is_mssante(telecom: Mapping[str, Any]) -> bool:
    return any(_extension_id(ext) in EMAIL_TYPE_IDS and (ext.get("valueCoding") or {}).get("code") == MSSANTE_CODE
               for ext in _extensions(telecom))


def _metadata(telecom: Mapping[str, Any]) -> dict[str, Any]:
    """The sub-extensions of ``as-ext-mailbox-mss-metadata`` we use: type code, service, listeRouge."""
    found: dict[str, Any] = {}
    for ext in _extensions(telecom):
        if _extension_id(ext) != METADATA_ID:
            continue
        for sub in _extensions(ext):
            name = sub.get("url")
            if name == "type":
                codings = (sub.get("valueCodeableConcept") or {}).get("coding") or [{}]
                found["type"] = str(codings[0].get("code", ""))
            elif name == "service":
                found["service"] = str(sub.get("valueString", ""))
            elif name == "listeRouge":
                found["listeRouge"] = sub.get("valueBoolean")
    return found


def _extensions(element: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    return [ext for ext in element.get("extension") or () if isinstance(ext, dict)]


def _extension_id(ext: Mapping[str, Any]) -> str:
    """The last path segment of an extension URL, without a ``|version``: IG canonicals move, ids stay."""
    return str(ext.get("url", "")).split("|")[0].rstrip("/").rsplit("/", 1)[-1]


def _display_name(practitioner: Mapping[str, Any]) -> str:
    """Civility of practice (``DR``) or civility, given names, family name; ``text`` when that is all."""
    for name in practitioner.get("name") or ():
        civility = (name.get("suffix") or name.get("prefix") or [])[:1]
        parts = [*civility, *(name.get("given") or []), name.get("family", "")]
        text = " ".join(str(part) for part in parts if part) or str(name.get("text", ""))
        if text:
            return text
    return ""


def _profession(practitioner: Mapping[str, Any]) -> str:
    """The profession's display (TRE_G15-ProfessionSante) from the qualifications, if the API gives it."""
    for qualification in practitioner.get("qualification") or ():
        for coding in (qualification.get("code") or {}).get("coding") or ():
            if "ProfessionSante" in str(coding.get("system", "")) and coding.get("display"):
                return str(coding["display"])
    return ""


def _structure(organization: Mapping[str, Any]) -> dict[str, str]:
    if not organization:
        return {}
    identifiers = [i for i in organization.get("identifier") or () if isinstance(i, dict) and i.get("value")]
    preferred = [i for i in identifiers if i.get("system") == IDNST_SYSTEM] or identifiers
    postal = next((str(a["postalCode"]) for a in organization.get("address") or () if a.get("postalCode")), "")
    return {"organisation": str(organization.get("name", "")),
            "structure_id": str(preferred[0]["value"]) if preferred else "", "postal_code": postal}


def _reference(resource: Mapping[str, Any], field: str) -> str:
    return str((resource.get(field) or {}).get("reference", ""))


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _unique(mailboxes: Iterable[Mailbox]) -> list[Mailbox]:
    """One mailbox per address, the most specific first seen (a role's copy carries the structure)."""
    by_address: dict[str, Mailbox] = {}
    for mailbox in mailboxes:
        key = mailbox.address.lower()
        known = by_address.get(key)
        if known is None or (not known.organisation and mailbox.organisation):
            by_address[key] = mailbox
    return list(by_address.values())


def _is_idnat_ps(ident: str) -> bool:
    """``8``+RPPS (12 digits) or ``0``+ADELI (10 digits); anything else is a structure id."""
    return ident.isdigit() and ((len(ident) == 12 and ident[0] == "8") or (len(ident) == 10 and ident[0] == "0"))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (an HTTP date is not worth parsing here)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was closed mid-answer"
    return f"network error ({type(exc).__name__})"


def _number(mapping: Mapping[str, Any], key: str, default: float) -> float:
    value = mapping.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"directory.fhir.{key}", f"{value!r} is not a number")
    return float(value)
