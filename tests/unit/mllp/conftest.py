import pytest

from channels.mllp.server import MllpServer
from tests.unit.mllp.helpers import RecordingHandler


@pytest.fixture
def handler():
    return RecordingHandler()


@pytest.fixture
async def make_server():
    """Start MllpServers on 127.0.0.1:0; all are closed after the test."""
    servers = []

    async def make(handler, **options) -> MllpServer:
        server = MllpServer(handler, host="127.0.0.1", port=0, **options)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close(grace=2.0)
