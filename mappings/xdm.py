"""IHE XDM packaging (ITI-32, ZIP over e-mail): the ``IHE_XDM.ZIP`` attached to an MSSanté mail.

Layout (IHE ITI TF-1 XDM; French name of the attachment per the ANS IGs)::

    README.TXT                        who made the package and with what
    INDEX.HTM                         a small HTML index linking the document
    IHE_XDM/SUBSET01/METADATA.XML     lcm:SubmitObjectsRequest (mappings/xds_metadata.py)
    IHE_XDM/SUBSET01/DOC0001.XML      the CDA, byte for byte as received

Built in memory. Small text members are deflated; a large member whose content is
already compressed (a CDA that is mostly a base64 PDF) is stored as is, since
deflating it costs ~9 ms per 200 KB for a ~25 % gain (spec/performance.md). A large
member that does compress is deflated at level 1 (:data:`LARGE_LEVEL`): on a 283 KB
LDL-SES carrying an uncompressed PDF, 2.9 ms instead of 16 ms at zlib's default
level 6, for an archive 13 % larger (118 KB instead of 104 KB).
"""

from __future__ import annotations

import html
import io
import zipfile
import zlib
from datetime import datetime, timezone
from functools import lru_cache

from mappings.xds_metadata import build_submission, metadata_bytes
from router.model import DocumentJob

SUBSET = "IHE_XDM/SUBSET01"
DOCUMENT_NAME = "DOC0001.XML"
VENDOR = "Liaison"
#: Members up to this size are always deflated; larger ones only when deflate pays off.
SMALL_MEMBER = 64 * 1024
#: A probe that deflates to more than this share of its size means "already compressed".
STORE_RATIO = 0.7
_PROBE = 32 * 1024
#: zlib level for members larger than SMALL_MEMBER (the default, 6, costs 5x the CPU for ~12 % less).
LARGE_LEVEL = 1


def build_xdm(job: DocumentJob, *, submission_time: datetime, source_id: str,
              content_type_code: tuple[str, str, str] | None = None) -> bytes:
    """The IHE_XDM.ZIP for the job's document, as bytes."""
    extra = {} if content_type_code is None else {"content_type_code": content_type_code}
    metadata = metadata_bytes(build_submission(job, submission_time=submission_time, source_id=source_id,
                                               document_filename=DOCUMENT_NAME, **extra))
    stamp = _zip_time(submission_time)
    members = [
        ("README.TXT", _readme(job, submission_time, source_id)),
        ("INDEX.HTM", _index(job)),
        (f"{SUBSET}/METADATA.XML", metadata),
        (f"{SUBSET}/{DOCUMENT_NAME}", job.cda),
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = compression_for(data)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=LARGE_LEVEL if len(data) > SMALL_MEMBER else None)
    return buffer.getvalue()


def compression_for(data: bytes) -> int:
    """ZIP_DEFLATED for small or compressible members, ZIP_STORED for large compressed ones."""
    if len(data) <= SMALL_MEMBER:
        return zipfile.ZIP_DEFLATED
    middle = len(data) // 2
    probe = data[max(0, middle - _PROBE // 2): middle + _PROBE // 2]
    ratio = len(zlib.compress(probe, 1)) / len(probe)
    return zipfile.ZIP_STORED if ratio > STORE_RATIO else zipfile.ZIP_DEFLATED


@lru_cache(maxsize=1)
def _version() -> str:
    """Liaison's version for README.TXT; once per process (importlib.metadata reads the disk: 3 % of a
    worker's CPU when asked per document)."""
    try:
        from importlib.metadata import version
        return version("liaison")
    except Exception:       # not installed as a distribution (running from a checkout)
        return "dev"


def _readme(job: DocumentJob, submission_time: datetime, source_id: str) -> bytes:
    sender = job.sender
    who = " ".join(p for p in (sender.given, sender.family) if p) or sender.identifier
    organisation = job.sender.organisation_name or (job.header.custodian.organisation_name
                                                    if job.header.custodian else "")
    lines = [
        "IHE XDM package (IHE ITI-32, Distribute Document Set on Media, ZIP over e-mail)",
        "",
        f"Created by: {VENDOR} {_version()}, open-source hospital integration engine",
        f"Sending organisation: {organisation or 'not stated'}",
        f"Sent on behalf of: {who or 'not stated'}",
        f"Source system (XDS sourceId): {source_id}",
        f"Created (UTC): {_utc(submission_time).strftime('%Y-%m-%d %H:%M:%S')}",
        "",
        "Contents:",
        "  INDEX.HTM                      index of this package, to open in a web browser",
        f"  {SUBSET}/METADATA.XML   XDS metadata (ebRIM 3.0 SubmitObjectsRequest)",
        f"  {SUBSET}/{DOCUMENT_NAME}    the clinical document (HL7 CDA R2)",
        "",
        "Open the package with a health-document viewer or an MSSanté client that",
        "understands IHE XDM; the clinical document is an XML file meant for software.",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _index(job: DocumentJob) -> bytes:
    header = job.header
    title = html.escape(header.title or "Document")
    doc_link = f"{SUBSET}/{DOCUMENT_NAME}"
    page = f"""<!DOCTYPE html>
<html lang="fr">
<head><meta charset="utf-8"><title>IHE XDM - {title}</title></head>
<body>
<h1>IHE XDM</h1>
<ul>
<li><a href="{doc_link}">{title}</a> ({html.escape(header.type_display or header.type_code)},
 {html.escape(header.format_code)})</li>
<li><a href="{SUBSET}/METADATA.XML">XDS metadata</a></li>
<li><a href="README.TXT">README.TXT</a></li>
</ul>
</body>
</html>
"""
    return page.replace("\n", "\r\n").encode("utf-8")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc) if moment.tzinfo is not None else moment


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    """ZIP member timestamp (UTC, no earlier than 1980, which ZIP cannot represent)."""
    t = _utc(moment)
    if t.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (t.year, t.month, t.day, t.hour, t.minute, t.second)
