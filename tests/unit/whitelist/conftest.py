"""Small listes blanches written by the tests, and a local HTTP server that serves them (and corrupts them)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.whitelist_files import sha256_of

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
