"""The last good liste blanche, on disk and in memory; a refused update never replaces it.

Store directory layout (one generation at a time, named by the SHA-256)::

    listeblanchemssante-<sha12>.xml   the list's bytes exactly as published
    checksum-<sha12>                  the checksum file's bytes as published
    current.json                      {"xml", "checksum", "sha256", "source", "checksum_source",
                                       "fetched_at", "generated_at", "domain_count", "entry_count"}

``current.json`` is the commit point: the data files are written and fsynced
under temporary names and renamed first, then ``current.json`` is replaced
atomically (temp + ``os.replace``), then older generations are removed. A
crash at any step leaves either the old or the new generation in force.
Writers take an exclusive ``flock`` on ``.lock``, so the engine's refresher
and ``liaison whitelist update`` can share a directory.

:meth:`WhitelistStore.load` reads the current generation at start and checks
it again (checksum and parse) before trusting it. Every refusal is logged as
an alert (``whitelist.update_refused``, ``alert="whitelist"``) naming the
source and the reason; the list holds no patient data.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from channels.whitelist.errors import WhitelistError
from channels.whitelist.fetch import default_checksum_source, fetch_pair
from channels.whitelist.parse import parse_whitelist, verify_checksum
from router.recipients_pfi import PATIENT_DOMAIN
from router.whitelist import Whitelist

log = structlog.get_logger(__name__)

CURRENT = "current.json"


@dataclass(frozen=True)
class StoredMetadata:
    """What ``current.json`` says about the list in force."""

    sha256: str
    source: str
    checksum_source: str
    fetched_at: datetime
    generated_at: datetime
    domain_count: int
    entry_count: int


@dataclass(frozen=True)
class UpdateResult:
    """The outcome of one update: accepted (now in force) or refused (the previous list stays)."""

    accepted: bool
    reason: str
    source: str
    checksum_source: str
    domain_count: int = 0
    entry_count: int = 0
    generated_at: datetime | None = None
    sha256: str | None = None
    changed: bool = False


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory, fsync, rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)   # the list is public data; other local users may run `check`
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class WhitelistStore:
    """Keeps the last good list in ``directory`` and in :attr:`current`."""

    def __init__(self, directory: str | Path, *, always_allowed: Iterable[str] = (), fetch_timeout: float = 30.0,
                 ca_file: str | None = None, clock: Callable[[], datetime] = _utcnow,
                 patient_domain: str | None = PATIENT_DOMAIN):
        """``patient_domain``: the patients' domain, trusted by rule (:mod:`router.whitelist`); None: not."""
        self.directory = Path(directory)
        self.always_allowed = tuple(always_allowed)
        self.patient_domain = patient_domain
        self.fetch_timeout = fetch_timeout
        self.ca_file = ca_file
        self.clock = clock
        self.current: Whitelist | None = None
        self.metadata: StoredMetadata | None = None
        self._lock = asyncio.Lock()

    # -- reading the stored copy ------------------------------------------------------------------

    def load(self) -> Whitelist | None:
        """Load the stored list (checked again) into :attr:`current`; None when there is none usable."""
        meta_path = self.directory / CURRENT
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            data = (self.directory / meta["xml"]).read_bytes()
            checksum = (self.directory / meta["checksum"]).read_bytes()
            digest = verify_checksum(data, checksum)
            whitelist = parse_whitelist(data, always_allowed=self.always_allowed,
                                        patient_domain=self.patient_domain)
            metadata = StoredMetadata(
                sha256=digest, source=meta["source"], checksum_source=meta["checksum_source"],
                fetched_at=datetime.fromisoformat(meta["fetched_at"]), generated_at=whitelist.generated_at,
                domain_count=len(whitelist), entry_count=len(whitelist.entries))
        except (OSError, ValueError, KeyError, TypeError, WhitelistError) as exc:
            log.error("whitelist.stored_copy_unusable", alert="whitelist", directory=str(self.directory),
                      reason=f"{type(exc).__name__}: {exc}")
            return None
        self.current, self.metadata = whitelist, metadata
        log.info("whitelist.loaded", directory=str(self.directory), domains=len(whitelist),
                 generated_at=whitelist.generated_at.isoformat(), sha256=digest)
        return whitelist

    # -- replacing it -----------------------------------------------------------------------------

    async def update(self, source: str, checksum_source: str | None = None) -> UpdateResult:
        """Fetch, verify and parse a new list; keep it only when all three succeed."""
        checksum_source = checksum_source or default_checksum_source(source)
        async with self._lock:
            try:
                data, raw_checksum = await fetch_pair(source, checksum_source, timeout=self.fetch_timeout,
                                                      ca_file=self.ca_file)
                digest = verify_checksum(data, raw_checksum)
                whitelist = await asyncio.to_thread(parse_whitelist, data, always_allowed=self.always_allowed,
                                                    patient_domain=self.patient_domain)
            except WhitelistError as exc:
                return self._refused(source, checksum_source, str(exc))
            fetched_at = self.clock()
            changed = self.metadata is None or self.metadata.sha256 != digest
            metadata = StoredMetadata(sha256=digest, source=source, checksum_source=checksum_source,
                                      fetched_at=fetched_at, generated_at=whitelist.generated_at,
                                      domain_count=len(whitelist), entry_count=len(whitelist.entries))
            try:
                await asyncio.to_thread(self._commit, data, raw_checksum, metadata)
            except OSError as exc:
                return self._refused(source, checksum_source, f"cannot write the store {self.directory}: {exc}")
            self.current, self.metadata = whitelist, metadata
        reason = (f"accepted: {len(whitelist)} domains ({len(whitelist.entries)} entries) generated "
                  f"{whitelist.generated_at:%Y-%m-%d}" + ("" if changed else ", unchanged"))
        log.info("whitelist.updated", source=source, domains=len(whitelist), entries=len(whitelist.entries),
                 generated_at=whitelist.generated_at.isoformat(), sha256=digest, changed=changed)
        return UpdateResult(True, reason, source, checksum_source, len(whitelist), len(whitelist.entries),
                            whitelist.generated_at, digest, changed)

    def _refused(self, source: str, checksum_source: str, reason: str) -> UpdateResult:
        kept = (f"kept the list generated {self.current.generated_at:%Y-%m-%d} ({len(self.current)} domains)"
                if self.current is not None else "no list in force")
        log.error("whitelist.update_refused", alert="whitelist", source=source, checksum_source=checksum_source,
                  reason=reason, kept=kept)
        return UpdateResult(False, f"refused: {reason}; {kept}", source, checksum_source)

    def _commit(self, data: bytes, raw_checksum: bytes, metadata: StoredMetadata) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        short = metadata.sha256[:12]
        xml_name, checksum_name = f"listeblanchemssante-{short}.xml", f"checksum-{short}"
        with open(self.directory / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _write_synced(self.directory / xml_name, data)
            _write_synced(self.directory / checksum_name, raw_checksum)
            document = {"xml": xml_name, "checksum": checksum_name, "sha256": metadata.sha256,
                        "source": metadata.source, "checksum_source": metadata.checksum_source,
                        "fetched_at": metadata.fetched_at.isoformat(),
                        "generated_at": metadata.generated_at.isoformat(),
                        "domain_count": metadata.domain_count, "entry_count": metadata.entry_count}
            _write_synced(self.directory / CURRENT, json.dumps(document, indent=2).encode("utf-8"))
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            for stale in self.directory.iterdir():
                if (stale.name.startswith(("listeblanchemssante-", "checksum-"))
                        and stale.name not in (xml_name, checksum_name)):
                    with contextlib.suppress(OSError):
                        stale.unlink()
