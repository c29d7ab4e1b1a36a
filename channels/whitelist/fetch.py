"""Read the list and its checksum from a file path or an http(s) URL, bounded in time and size.

Sources:

- ``https://espacedeconfiance.mssante.fr/listeblanchemssante.xml`` (official, the default);
- the ANS mirror, e.g. ``https://raw.githubusercontent.com/ansforge/MSS-liste-blanche/main/listeblanchemssante.xml``;
- a local path (a copy fetched by other means, e.g. behind a proxy).

The checksum defaults to a file named ``checksum`` beside the list, which is
the layout of the ANS mirror (``listeblanchemssante.xml`` and ``checksum`` at
the root of the repository). Whether the official site serves one at
``https://espacedeconfiance.mssante.fr/checksum`` is not known here: if it does
not, every update is refused (and alerted) until ``whitelist.checksum`` names
the mirror's checksum.

The official site is served over an IGC-Santé TLS chain, whose roots are not
in the public trust stores: ``ca_file`` names a PEM bundle holding them.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from channels.whitelist.errors import FetchError

OFFICIAL_URL = "https://espacedeconfiance.mssante.fr/listeblanchemssante.xml"
CHECKSUM_NAME = "checksum"
#: The full list is about 3.7 MB; anything far larger is not a liste blanche.
MAX_BYTES = 64 * 1024 * 1024


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def default_checksum_source(source: str) -> str:
    """The ``checksum`` file beside ``source`` (same URL directory, or same folder)."""
    if is_url(source):
        return urljoin(source, CHECKSUM_NAME)
    return str(Path(source).with_name(CHECKSUM_NAME))


def _verify(ca_file: str | None) -> ssl.SSLContext | bool:
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise FetchError(f"cannot load the CA bundle {ca_file}: {exc}") from exc


async def _read_url(client: httpx.AsyncClient, url: str, max_bytes: int) -> bytes:
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise FetchError(f"HTTP {response.status_code} from {url}")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"{url} is larger than {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise FetchError(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from exc


def _read_file(path: str, max_bytes: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise FetchError(f"{path} is larger than {max_bytes} bytes")
    return data


async def fetch_pair(source: str, checksum_source: str | None = None, *, timeout: float = 30.0,
                     ca_file: str | None = None, max_bytes: int = MAX_BYTES) -> tuple[bytes, bytes]:
    """The list's bytes and its checksum file's bytes; FetchError when either cannot be read."""
    checksum_source = checksum_source or default_checksum_source(source)
    urls = [s for s in (source, checksum_source) if is_url(s)]
    results: dict[str, bytes] = {}
    if urls:
        limits = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        async with httpx.AsyncClient(timeout=limits, verify=_verify(ca_file), follow_redirects=True,
                                     headers={"User-Agent": "liaison-whitelist"}) as client:
            for url in urls:
                results[url] = await _read_url(client, url, max_bytes)
    for path in (source, checksum_source):
        if not is_url(path):
            results[path] = await asyncio.to_thread(_read_file, path, max_bytes)
    return results[source], results[checksum_source]
