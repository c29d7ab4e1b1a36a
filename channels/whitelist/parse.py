"""Read ``listeblanchemssante.xml`` and its ``checksum`` file, refusing anything doubtful.

Format (namespace ``https://listeblanche.mssante.fr/schema``)::

    <ListeBlancheMSSante>
      <DateDeGeneration>2025-03-13T14:54:10Z</DateDeGeneration>
      <ListeDomaines>
        <Domaine><Nom/><Description/><DNCertificatOperateur/>
                 <ResponsableContact/><SupportContact/><DateMAJ/></Domaine>…

The ``checksum`` file of the ANS mirror (``ansforge/MSS-liste-blanche``, written
by its GitHub workflow) is the bare lower-case hex SHA-256 of the XML bytes: 64
characters, no file name, no newline. Surrounding white space is tolerated;
anything else (a ``sha256sum`` line, an MD5, an empty file) is refused.

The XML is parsed by lxml with network access, DTD loading and entity
resolution off; a document with a DOCTYPE is refused outright.

**Known publisher defect:** the ANS file ends after ``</ListeDomaines>``
without closing the root element (true of the full list on the mirror and of
the snapshot in the fixtures), so a strict parser refuses it. The checksum is
verified on the bytes as published first; then, only when the document ends
exactly at ``</ListeDomaines>`` and the root close tag is absent, that tag is
appended before a strict parse. Any other malformation is refused.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

import structlog
from lxml import etree

from channels.whitelist.errors import ChecksumError, ListFormatError
from router.whitelist import DomainEntry, Whitelist, normalize_domain

log = structlog.get_logger(__name__)

NAMESPACE = "https://listeblanche.mssante.fr/schema"
_NS = {"lb": NAMESPACE}
_ROOT = f"{{{NAMESPACE}}}ListeBlancheMSSante"
_HEX64 = re.compile(rb"^[0-9a-fA-F]{64}$")
_ROOT_CLOSE = b"</ListeBlancheMSSante>"
_LIST_CLOSE = b"</ListeDomaines>"


def parse_checksum(raw: bytes) -> str:
    """The SHA-256 hex digest a checksum file holds (lower case); ChecksumError when it holds something else."""
    text = raw.strip()
    if not text:
        raise ChecksumError("checksum file is empty")
    if not _HEX64.match(text):
        shown = text[:40].decode("ascii", errors="replace")
        raise ChecksumError(f"checksum file is not a bare SHA-256 hex digest (expected 64 hex digits, "
                            f"got {len(text)} bytes starting {shown!r})")
    return text.decode("ascii").lower()


def verify_checksum(data: bytes, raw_checksum: bytes) -> str:
    """The SHA-256 of ``data`` when it equals the checksum file's; ChecksumError otherwise."""
    expected = parse_checksum(raw_checksum)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ChecksumError(f"SHA-256 mismatch: the list hashes to {actual}, the checksum file says {expected}")
    return actual


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def _document(data: bytes) -> etree._Element:
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        if _ROOT_CLOSE in data or not data.rstrip().endswith(_LIST_CLOSE):
            raise ListFormatError(f"the list is not well-formed XML: {exc}") from exc
        try:
            root = etree.fromstring(data.rstrip() + b"\n" + _ROOT_CLOSE + b"\n", parser=_parser())
        except etree.XMLSyntaxError:
            raise ListFormatError(f"the list is not well-formed XML: {exc}") from exc
        log.info("whitelist.unterminated_root", detail="root element not closed by the publisher; closed it")
    if root.getroottree().docinfo.doctype:
        raise ListFormatError("the list has a DOCTYPE, refused (no DTD nor entities are accepted)")
    return root


def _text(element: etree._Element, name: str) -> str:
    found = element.find(f"lb:{name}", _NS)
    return (found.text or "").strip() if found is not None else ""


def _datetime(value: str, what: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ListFormatError(f"{what} is not an ISO 8601 date-time: {value!r}") from exc


def _optional_datetime(value: str) -> datetime | None:
    """``DateMAJ`` is informative: an unreadable one is dropped, not a reason to refuse the list."""
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse_whitelist(data: bytes, *, always_allowed: tuple[str, ...] | frozenset[str] = (),
                    patient_domain: str | None = None) -> Whitelist:
    """The list in ``data``; ListFormatError when it is not a non-empty liste blanche.

    An entry whose ``Nom`` is not a domain name is skipped (and counted in a
    warning) rather than failing the whole list; a list left empty is refused.
    """
    root = _document(data)
    if root.tag != _ROOT:
        raise ListFormatError(f"root element is {root.tag}, expected ListeBlancheMSSante in {NAMESPACE}")
    generated = _text(root, "DateDeGeneration")
    if not generated:
        raise ListFormatError("DateDeGeneration is missing")
    generated_at = _datetime(generated, "DateDeGeneration")
    entries, skipped = [], 0
    for element in root.iterfind("lb:ListeDomaines/lb:Domaine", _NS):
        name = _text(element, "Nom")
        if normalize_domain(name) is None:
            skipped += 1
            continue
        updated = _text(element, "DateMAJ")
        entries.append(DomainEntry(
            name=name, operator_dn=_text(element, "DNCertificatOperateur"),
            description=_text(element, "Description"),
            responsable_contact=_text(element, "ResponsableContact"),
            support_contact=_text(element, "SupportContact"),
            updated_at=_optional_datetime(updated)))
    if skipped:
        log.warning("whitelist.entries_skipped", count=skipped, reason="Nom is not a domain name")
    if not entries:
        raise ListFormatError("the list has no domains")
    return Whitelist(entries, generated_at, always_allowed=always_allowed, patient_domain=patient_domain)
