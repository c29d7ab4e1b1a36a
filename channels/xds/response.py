"""Reading what the DMP answers, and turning refusals into the engine's two error families.

An XDS.b transaction answers ``rs:RegistryResponse`` (status ``Success``, ``PartialSuccess`` or
``Failure``; ``RegistryErrorList/RegistryError`` with ``errorCode``, ``codeContext``,
``severity``, ``location``), or a SOAP 1.2 fault (``Sender`` = our request is wrong, ``Receiver``
= the server failed). :func:`raise_for_result` / :func:`raise_for_fault` / :func:`raise_for_http`
decide, in one place, what is worth retrying:

- :class:`~router.errors.PeerUnavailable` (retry): HTTP 5xx / 408 / 429, Receiver faults,
  ``XDSRegistryBusy``, ``XDSRepositoryBusy``, ``...OutOfResources``, ``XDSRegistryNotAvailable``,
  internal registry/repository errors;
- :class:`~router.errors.RejectedByPeer` (park): any other Failure (metadata, patient id,
  duplicate uniqueId, DMP closed or access refused...), Sender faults, other HTTP 4xx, and a
  PartialSuccess (a resend could duplicate what was stored; a human must look).

Error codes and their meaning come from IHE ITI TF-3 Table 4.2.4.1-2 (XDS error codes) and the
Metadata Update supplement. The DMP's own codes are not public (the DSFT "interfaces DMP des
LPS" is distributed to approved vendors only). ``DMPClosed`` is seen in third-party DMP client
code (an HL7 v3 acknowledgement detail of the patient web service); the other ``DMP*`` names in
:data:`KNOWN_ERRORS` are **assumptions** that give readable reasons if the DMP uses them and
change nothing if it does not (an unknown code is permanent and shown as received).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from router.errors import PeerUnavailable, RejectedByPeer

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
_STATUS_PREFIXES = ("urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:",
                    "urn:ihe:iti:2007:ResponseStatusType:")
_SEVERITY_PREFIX = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:"


@dataclass(frozen=True)
class Known:
    """What a known error code means and whether trying again may help."""

    transient: bool
    fr: str
    en: str


#: Known error codes → meaning. IHE codes are standard; the ``DMP*`` ones are assumptions (module docstring).
KNOWN_ERRORS: dict[str, Known] = {
    # transient (IHE)
    "XDSRegistryBusy": Known(True, "registre DMP occupé", "registry busy"),
    "XDSRepositoryBusy": Known(True, "entrepôt DMP occupé", "repository busy"),
    "XDSRegistryOutOfResources": Known(True, "registre DMP saturé", "registry out of resources"),
    "XDSRepositoryOutOfResources": Known(True, "entrepôt DMP saturé", "repository out of resources"),
    "XDSRegistryNotAvailable": Known(True, "registre DMP indisponible", "registry not available"),
    "XDSRegistryError": Known(True, "erreur interne du registre", "internal registry error"),
    "XDSRepositoryError": Known(True, "erreur interne de l'entrepôt", "internal repository error"),
    # permanent (IHE)
    "XDSRegistryMetadataError": Known(False, "métadonnées XDS refusées par le registre", "registry metadata error"),
    "XDSRepositoryMetadataError": Known(False, "métadonnées XDS refusées par l'entrepôt (hash, size...)",
                                        "repository metadata error (hash, size...)"),
    "XDSPatientIdDoesNotMatch": Known(False, "identifiant patient incohérent entre lot, fiche et document",
                                      "patient id does not match"),
    "XDSUnknownPatientId": Known(False, "patient inconnu du DMP (DMP inexistant)", "unknown patient id"),
    "XDSDuplicateUniqueIdInRegistry": Known(False, "document déjà présent (uniqueId en double)",
                                            "duplicate uniqueId in registry"),
    "XDSDocumentUniqueIdError": Known(False, "uniqueId du document en erreur (doublon ou inconnu)",
                                      "document uniqueId error"),
    "XDSNonIdenticalHash": Known(False, "uniqueId déjà connu avec un autre contenu (hash)",
                                 "uniqueId already known with another hash"),
    "XDSNonIdenticalSize": Known(False, "uniqueId déjà connu avec une autre taille",
                                 "uniqueId already known with another size"),
    "XDSRegistryDuplicateUniqueIdInMessage": Known(False, "uniqueId en double dans la soumission",
                                                   "duplicate uniqueId in message"),
    "XDSRepositoryDuplicateUniqueIdInMessage": Known(False, "uniqueId en double dans la soumission",
                                                     "duplicate uniqueId in message"),
    "XDSMissingDocument": Known(False, "fiche sans document", "metadata without document"),
    "XDSMissingDocumentMetadata": Known(False, "document sans fiche", "document without metadata"),
    "XDSMetadataUpdateError": Known(False, "mise à jour de la fiche refusée", "metadata update refused"),
    "XDSMetadataVersionError": Known(False, "version de fiche obsolète", "metadata version error"),
    "XDSMetadataUpdateOperationError": Known(False, "opération de mise à jour non supportée",
                                             "metadata update operation not supported"),
    "XDSPatientIDReconciliationError": Known(False, "rapprochement d'identité patient refusé",
                                             "patient id reconciliation error"),
    "UnresolvedReferenceException": Known(False, "référence à un objet inconnu (entryUUID)",
                                          "unresolved reference (entryUUID)"),
    "InvalidRequestException": Known(False, "requête invalide", "invalid request"),
    # DMP (DMPClosed: [3P] observed; the rest: assumed names)
    "DMPClosed": Known(False, "DMP du patient fermé", "the patient's DMP is closed"),
    "DMPNotFound": Known(False, "DMP inexistant", "no DMP for this patient"),
    "DMPAccessDenied": Known(False, "accès au DMP refusé", "access to the DMP refused"),
    "DMPPatientOpposition": Known(False, "opposition du patient à l'alimentation de son DMP",
                                  "the patient opposes documents being added"),
    "DMPInvalidVIHF": Known(False, "jeton VIHF refusé", "VIHF assertion refused"),
}

#: SOAP fault subcodes that say "try again later" even on a Sender fault (a fresh VIHF is signed per send).
TRANSIENT_FAULT_SUBCODES = frozenset({"MessageExpired", "ServerBusy"})


@dataclass(frozen=True)
class RegistryIssue:
    """One ``rs:RegistryError`` (an error or a warning, as its severity says)."""

    code: str
    context: str = ""
    severity: str = "Error"
    location: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity != "Warning"

    def describe(self) -> str:
        known = KNOWN_ERRORS.get(self.code)
        text = f"{self.code} ({known.fr} / {known.en})" if known else self.code
        return f"{text}: {self.context[:200]}" if self.context else text


@dataclass(frozen=True)
class RegistryResult:
    """A parsed ``rs:RegistryResponse``."""

    status: str                                    # Success | PartialSuccess | Failure
    issues: tuple[RegistryIssue, ...] = ()
    request_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "Success"

    @property
    def errors(self) -> tuple[RegistryIssue, ...]:
        return tuple(i for i in self.issues if i.is_error)

    @property
    def warnings(self) -> tuple[RegistryIssue, ...]:
        return tuple(i for i in self.issues if not i.is_error)


@dataclass(frozen=True)
class SoapFault:
    """A SOAP 1.2 fault: ``code`` is Sender, Receiver, MustUnderstand, VersionMismatch or DataEncodingUnknown."""

    code: str
    subcodes: tuple[str, ...] = ()
    reason: str = ""

    def describe(self) -> str:
        chain = "/".join((self.code, *self.subcodes))
        return f"SOAP fault {chain}: {self.reason[:200]}" if self.reason else f"SOAP fault {chain}"


class ResponseFormatError(ValueError):
    """An answer that is neither a RegistryResponse nor a SOAP fault."""


def parse_response(envelope: bytes | etree._Element) -> RegistryResult | SoapFault:
    """The RegistryResponse or the fault in a SOAP 1.2 envelope (a bare RegistryResponse is accepted too)."""
    root = _root(envelope)
    if root.tag == f"{{{SOAP12}}}Envelope":
        body = root.find(f"{{{SOAP12}}}Body")
        if body is None or len(body) == 0:
            raise ResponseFormatError("SOAP envelope without a body")
        root = body[0]
    if root.tag == f"{{{SOAP12}}}Fault":
        return _fault(root)
    if root.tag != f"{{{RS}}}RegistryResponse":
        raise ResponseFormatError(f"expected rs:RegistryResponse, got {root.tag}")
    issues = tuple(RegistryIssue(code=e.get("errorCode", ""), context=(e.get("codeContext") or "").strip(),
                                 severity=_last(e.get("severity") or "Error", _SEVERITY_PREFIX),
                                 location=e.get("location") or "")
                   for e in root.iter(f"{{{RS}}}RegistryError"))
    status = root.get("status", "")
    for prefix in _STATUS_PREFIXES:
        status = status.removeprefix(prefix)
    if status not in ("Success", "PartialSuccess", "Failure"):
        raise ResponseFormatError(f"unknown RegistryResponse status {root.get('status')!r}")
    return RegistryResult(status=status, issues=issues, request_id=root.get("requestId", ""))


def raise_for_result(result: RegistryResult) -> RegistryResult:
    """Return a Success (warnings included); raise PeerUnavailable or RejectedByPeer for the rest."""
    if result.ok:
        return result
    errors = result.errors or (RegistryIssue(code="", context="no RegistryError given"),)
    reasons = "; ".join(issue.describe() for issue in errors)
    code = errors[0].code or None
    if result.status == "PartialSuccess":
        raise RejectedByPeer(f"DMP stored part of the submission (PartialSuccess): {reasons}", code=code)
    if all(is_transient(issue.code) for issue in errors):
        raise PeerUnavailable(f"DMP temporarily refused the submission: {reasons}", code=code)
    raise RejectedByPeer(f"DMP refused the submission: {reasons}", code=code)


def raise_for_fault(fault: SoapFault) -> None:
    """Receiver faults (and busy/expired subcodes) are transient; every other fault is permanent."""
    code = "/".join((fault.code, *fault.subcodes))
    if fault.code == "Receiver" or set(fault.subcodes) & TRANSIENT_FAULT_SUBCODES:
        raise PeerUnavailable(f"DMP failed to process the request: {fault.describe()}", code=code)
    raise RejectedByPeer(f"DMP rejected the request: {fault.describe()}", code=code)


def raise_for_http(status: int, reason: str = "") -> None:
    """An HTTP status without a SOAP answer: 5xx, 408 and 429 are transient, other 4xx permanent."""
    if status < 400:
        return
    text = f"HTTP {status} {reason}".strip()
    if status >= 500 or status in (408, 429):
        raise PeerUnavailable(f"DMP unavailable: {text}", code=status)
    raise RejectedByPeer(f"DMP refused the request: {text}", code=status)


def is_transient(code: str) -> bool:
    """Whether an XDS error code means "try again later" (unknown codes are permanent)."""
    known = KNOWN_ERRORS.get(code)
    return bool(known and known.transient)


def _root(envelope: bytes | etree._Element) -> etree._Element:
    if not isinstance(envelope, (bytes, bytearray)):
        return envelope
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        return etree.fromstring(bytes(envelope), parser)
    except etree.XMLSyntaxError as exc:
        raise ResponseFormatError(f"answer is not XML: {exc}") from exc


def _fault(fault: etree._Element) -> SoapFault:
    code_el = fault.find(f"{{{SOAP12}}}Code")
    chain: list[str] = []
    while code_el is not None:
        value = code_el.find(f"{{{SOAP12}}}Value")
        if value is not None and value.text:
            chain.append(value.text.strip().rpartition(":")[2])
        code_el = code_el.find(f"{{{SOAP12}}}Subcode")
    reasons = fault.findall(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text")
    reason = " ".join((r.text or "").strip() for r in reasons).strip()
    if not chain:
        raise ResponseFormatError("SOAP fault without a code")
    return SoapFault(code=chain[0], subcodes=tuple(chain[1:]), reason=reason)


def _last(value: str, prefix: str) -> str:
    return value.removeprefix(prefix).rpartition(":")[2] or value
