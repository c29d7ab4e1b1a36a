"""An async XDS.b client for the DMP: ITI-41 deposit (MTOM) and ITI-57 status update (delete/archive).

URL form: the DMP service base, e.g. ``https://lps2.dmp.gouv.fr/si-dmp-server/v2/services/repository``
for ITI-41 and ``.../registry`` for ITI-57 (``registry_url``, default: the same URL). Mutual TLS
through the ``ssl_context`` given (it must hold the IGC-Santé "ORG AUTH_CLI" certificate and trust
the DMP's chain). The signed VIHF assertion is made by the caller per request.

Every failure leaves as an engine error (:mod:`channels.xds.response` decides which):
connection, TLS and timeout problems → :class:`PeerUnavailable`; refusals → per the answer.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping

import aiohttp
import structlog
from lxml import etree

from channels.xds import mtom, soap
from channels.xds.response import (RegistryResult, ResponseFormatError, SoapFault, parse_response,
                                   raise_for_fault, raise_for_http, raise_for_result)
from mappings.xds_metadata import RIM
from router.errors import MappingError, PeerUnavailable

log = structlog.get_logger(__name__)

SessionFactory = Callable[[], aiohttp.ClientSession]


class XdsClient:
    """Sends ITI-41 and ITI-57 requests to one DMP endpoint; returns a Success or raises an engine error."""

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None, timeout: float = 60.0,
                 registry_url: str | None = None, session_factory: SessionFactory | None = None):
        self.url = url
        self.registry_url = registry_url or url
        self.timeout = timeout
        self._ssl = ssl_context
        self._session_factory = session_factory or self._default_session
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> XdsClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def provide_and_register(self, submit_objects_request: etree._Element, documents: Mapping[str, bytes],
                                   assertion: etree._Element | bytes) -> RegistryResult:
        """ITI-41: deposit ``documents`` (ExtrinsicObject id → bytes) with their metadata, as MTOM."""
        _check_documents(submit_objects_request, documents)
        content_ids = {document_id: mtom.new_content_id("doc") for document_id in documents}
        envelope = soap.provide_and_register_envelope(submit_objects_request, content_ids, assertion, to=self.url)
        body, content_type = mtom.serialize(
            soap.envelope_bytes(envelope),
            {content_ids[document_id]: data for document_id, data in documents.items()},
            action=soap.ITI41_ACTION)
        return await self._exchange(self.url, soap.ITI41_ACTION, envelope, body, content_type)

    async def update_document_set(self, submit_objects_request: etree._Element,
                                  assertion: etree._Element | bytes) -> RegistryResult:
        """ITI-57: send a metadata update, e.g. from :func:`channels.xds.soap.availability_status_update`."""
        envelope = soap.update_document_set_envelope(submit_objects_request, assertion, to=self.registry_url)
        return await self._exchange(self.registry_url, soap.ITI57_ACTION, envelope, soap.envelope_bytes(envelope),
                                    mtom.soap_content_type(soap.ITI57_ACTION))

    async def update_availability_status(self, submission: etree._Element, assertion: etree._Element | bytes, *,
                                         entry_uuid: str, new_status: str,
                                         original_status: str = soap.APPROVED) -> RegistryResult:
        """Delete (``soap.DELETED``), archive (``soap.ARCHIVED``) or restore a document the DMP holds."""
        request = soap.availability_status_update(submission, entry_uuid=entry_uuid, new_status=new_status,
                                                  original_status=original_status)
        return await self.update_document_set(request, assertion)

    async def _exchange(self, url: str, action: str, envelope: etree._Element, body: bytes,
                        content_type: str) -> RegistryResult:
        message_id = _message_id(envelope)
        log.info("xds.request", action=action, message_id=message_id, bytes=len(body))
        session = self._session_or_new()
        try:
            async with session.post(url, data=body, headers={"Content-Type": content_type}) as response:
                answer = await response.read()
                status, reason = response.status, response.reason or ""
                answer_type = response.headers.get("Content-Type", "")
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            log.warning("xds.timeout", action=action, message_id=message_id, timeout=self.timeout)
            raise PeerUnavailable(f"DMP did not answer {action} within {self.timeout:g} s") from exc
        except aiohttp.ClientError as exc:
            log.warning("xds.connection_failed", action=action, message_id=message_id, error=type(exc).__name__)
            raise PeerUnavailable(_connection_failure(url, exc)) from exc
        result = self._interpret(status, reason, answer, answer_type)
        log.info("xds.response", action=action, message_id=message_id, http_status=status, status=result.status,
                 codes=[issue.code for issue in result.issues])
        return result

    @staticmethod
    def _interpret(status: int, reason: str, answer: bytes, answer_type: str) -> RegistryResult:
        """The RegistryResponse (raised when it is a refusal), a fault, or the HTTP status alone."""
        parsed: RegistryResult | SoapFault | None = None
        try:
            message = mtom.parse(answer, answer_type)
            parsed = parse_response(message.root)
        except (mtom.MtomFormatError, ResponseFormatError):
            parsed = None
        if isinstance(parsed, SoapFault):
            raise_for_fault(parsed)
        raise_for_http(status, reason)
        if parsed is None:
            raise PeerUnavailable(f"DMP answered HTTP {status} with no RegistryResponse ({answer_type or 'no type'})",
                                  code=status)
        return raise_for_result(parsed)

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._session_factory()
        return self._session

    def _default_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
        return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout))


def _check_documents(request: etree._Element, documents: Mapping[str, bytes]) -> None:
    """Every DocumentEntry has its bytes and every document its entry (else the DMP would refuse it anyway)."""
    entry_ids = {e.get("id") for e in request.iter(f"{{{RIM}}}ExtrinsicObject")}
    if entry_ids != set(documents):
        raise MappingError(f"ITI-41: documents {sorted(documents)} do not match the DocumentEntry ids "
                           f"{sorted(entry_ids)}")


def _message_id(envelope: etree._Element) -> str:
    found = envelope.find(f".//{{{soap.WSA}}}MessageID")
    return found.text if found is not None and found.text else ""


def _connection_failure(url: str, exc: aiohttp.ClientError) -> str:
    """Say what happened in an operator's words (TLS failures name the certificate problem)."""
    cause: BaseException | None = getattr(exc, "certificate_error", None) or exc.__cause__
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (f"TLS with {url} failed: the DMP certificate was not accepted: "
                f"{getattr(cause, 'verify_message', '') or cause}")
    if isinstance(cause, ssl.SSLError):
        return f"TLS with {url} failed (client certificate refused?): {cause}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {url}: {exc}"
    if isinstance(exc, (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        return f"{url} closed the connection (client certificate refused?): {type(exc).__name__}: {exc}"
    return f"exchange with {url} failed: {type(exc).__name__}: {exc}"
