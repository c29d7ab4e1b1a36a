"""Small listes blanches written by the tests, and a local HTTP server that serves them (and corrupts them)."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

NS = "https://listeblanche.mssante.fr/schema"
OPERATOR = "CN=mss.operateur-test.fr,OU=123456789,O=OPERATEUR TEST,ST=Paris (75),C=FR"


def make_list(domains: dict[str, str] | list[str], generated: str = "2025-03-13T14:54:10Z", *,
              close_root: bool = True) -> bytes:
    """A liste blanche in the ANS format; ``domains`` maps a name to its operator DN (or lists names)."""
    if isinstance(domains, list):
        domains = {name: OPERATOR for name in domains}
    body = "".join(
        f"""
        <Domaine>
            <Nom>{name}</Nom>
            <Description>Domaine de test {name}</Description>
            <DNCertificatOperateur>{dn}</DNCertificatOperateur>
            <ResponsableContact>01 00 00 00 00, contact@operateur-test.fr</ResponsableContact>
            <SupportContact>01 00 00 00 01, support@operateur-test.fr</SupportContact>
            <DateMAJ>2025-01-02T03:04:05Z</DateMAJ>
        </Domaine>""" for name, dn in domains.items())
    text = (f'<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="{NS}">\n'
            f"    <DateDeGeneration>{generated}</DateDeGeneration>\n    <ListeDomaines>{body}\n    </ListeDomaines>\n")
    if close_root:
        text += "</ListeBlancheMSSante>\n"
    return text.encode("utf-8")


def sha256_of(data: bytes) -> bytes:
    """A checksum file as the ANS mirror writes it: the bare hex digest, no newline."""
    return hashlib.sha256(data).hexdigest().encode("ascii")


def write_pair(directory: Path, data: bytes, checksum: bytes | None = None) -> Path:
    """``listeblanchemssante.xml`` and ``checksum`` side by side in ``directory``; the list's path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "listeblanchemssante.xml"
    path.write_bytes(data)
    (directory / "checksum").write_bytes(sha256_of(data) if checksum is None else checksum)
    return path


@dataclass
class ListServer:
    """An HTTP server on 127.0.0.1 serving ``files`` (path → bytes); a missing path answers 404."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def publish(self, data: bytes, checksum: bytes | None = None, folder: str = "mirror") -> str:
        """Serve a list and its checksum under ``/folder/``; the list's URL."""
        self.files[f"/{folder}/listeblanchemssante.xml"] = data
        self.files[f"/{folder}/checksum"] = sha256_of(data) if checksum is None else checksum
        return self.url(f"{folder}/listeblanchemssante.xml")

    def start(self) -> None:
        files, requests = self.files, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                requests.append(self.path)
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="list-server",
                         daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def list_server():
    server = ListServer()
    server.start()
    yield server
    server.stop()
