"""A console over a real SQLite journal, a real embedded bus and a real users file, driven through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from channels.console.app import create_app
from channels.console.users import SqliteUsers
from channels.embedded import EmbeddedBus
from channels.journal import SqliteJournal
from router import queues
from router.ports import ReceivedMessage
from tests.support.console import PASSWORD, login, users_file
from tests.support.poll import eventually

RAW = (b"MSH|^~\\&|DXCARE|CHU-TEST|LIAISON|CHU-TEST|20261206093000||ORU^R01^ORU_R01|CTL-1|P|2.5\r"
       b"PID|||700123^^^CHU-TEST^PI||DURAND^Helene\r")


@dataclass
class Console:
    app: object
    journal: SqliteJournal
    bus: EmbeddedBus
    users: SqliteUsers

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://console.test")

    @asynccontextmanager
    async def logged_in(self, role: str | None) -> AsyncIterator[httpx.AsyncClient]:
        """A client logged in as the user of that role (None: anonymous)."""
        async with self.client() as client:
            if role is not None:
                response = await login(client, role, PASSWORD)
                assert response.status_code == 303, response.text
            yield client

    async def receive(self, control_id: str, *, raw: bytes = RAW, message_type: str = "ORU^R01",
                      peer: str = "") -> str:
        key, _ = await self.journal.record_received(ReceivedMessage(
            raw=raw.replace(b"CTL-1", control_id.encode()), channel="his", sending_application="DXCARE",
            sending_facility="CHU-TEST", control_id=control_id, message_type=message_type,
            received_at=datetime.now(UTC), peer=peer))
        return key

    async def park(self, key: str, reason: str = "CDA fails the schema") -> None:
        """Put the message on ``inbound`` and have a consumer park it, as a failing stage would."""
        await self.bus.publish(queues.INBOUND, b"body", message_id=key, headers={"message_key": key})

        async def park(delivery) -> None:
            await delivery.park(reason)

        subscription = await self.bus.consume(queues.INBOUND, park)
        try:
            await eventually(lambda: self._parked(key), f"{key} parked")
        finally:
            await subscription.cancel()

    async def _parked(self, key: str) -> bool:
        return any(e.message_id == key for e in await self.bus.parked(queues.INBOUND))


@pytest.fixture
async def console(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite", key=bytes(range(32)))
    bus = EmbeddedBus(tmp_path / "bus.sqlite", poll_interval=0.05)
    users = users_file(tmp_path / "users.sqlite")
    await journal.open()
    await bus.connect()
    try:
        yield Console(create_app(journal, bus, users), journal, bus, users)
    finally:
        await bus.close()
        await journal.close()
        users.close()


@pytest.fixture
def config(tmp_path):
    """A ``liaison.toml`` naming a journal and a users file, for the ``liaison user`` tests."""
    path = tmp_path / "liaison.toml"
    path.write_text(f'[engine]\njournal = "sqlite://{tmp_path}/journal.sqlite"\n'
                    f'[console]\nusers = "{tmp_path}/users.sqlite"\n')
    return path

