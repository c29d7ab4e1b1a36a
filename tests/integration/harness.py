"""A whole engine on loopback for integration tests: MLLP in, bus, journal, mail out, ZAMs back.

``Pipeline`` wires the real adapters (SQLite journal, embedded or RabbitMQ bus,
SmtpMailer) to whatever relay the test gives (Postfix or the scriptable TLS
sink) and a recording HIS for the ZAM acknowledgements.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika

from channels.amqp import AmqpBus
from channels.app.demo.his import RecordingHis
from channels.embedded import EmbeddedBus
from channels.app.engine import Engine
from channels.app.settings import Settings
from channels.mllp.sender import MllpSender
from channels.mllp.settings import AckSettings, ListenerSettings
from channels.notices.settings import ImapSettings, MaildirSettings
from channels.smtp.settings import MssSettings
from channels.testing.mail_sink import SmtpSink
from channels.testing.pki import TestPki, make_test_pki
from channels.whitelist.settings import WhitelistSettings
from channels.xds.dmp import DmpSettings, dmp_settings
from channels.xds.vihf import verify_vihf
from mappings.tables import Tables
from router import queues
from router.config import RenderSettings
from router.hl7.ack import AckReply
from router.ingest import MAX_FRAME_BYTES
from router.ports import MessageRecord, MessageState
from channels.testing.mdm_messages import CORRESPONDENTS
from channels.testing.cachet_pki import make_cachet_pki, vihf_table
from channels.testing.dmp_double import DmpDouble

AMQP_URL = os.environ.get("LIAISON_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
FINAL = {MessageState.DELIVERED, MessageState.PARTIAL, MessageState.FAILED, MessageState.PARKED,
         MessageState.REJECTED}
RETRY_DELAYS = (0.3, 0.3)


@dataclass
class Pipeline:
    root: Path
    pki: TestPki
    relay_port: int
    bus_kind: str = "embedded"
    relay_host: str = "localhost"
    client_cert: Path | None = None
    client_key: Path | None = None
    max_frame_bytes: int = MAX_FRAME_BYTES
    nil: str = "TEST-NIL-0001"
    schematrons: str = "off"
    watchdog_interval: float = 60.0
    render_schematrons: str = "volet"
    correspondents: tuple = CORRESPONDENTS
    whitelist: WhitelistSettings | None = None
    directory_settings: dict = field(default_factory=dict)
    dmp: DmpSettings | None = None
    tables: Tables | None = None
    imap: ImapSettings | None = None            # [imap]: the notices read back (tests/integration/test_notices_imap.py)
    notices_maildir: MaildirSettings | None = None   # [notices] maildir (tests/integration/test_notices_maildir.py)
    mss_options: dict = field(default_factory=dict)   # more [mss] settings (dsn, mdn, mdn_to)
    engine: Engine | None = None
    sink: SmtpSink | None = None                # the mail sink it relays to, stopped with it (sink_pipeline)
    his: RecordingHis = field(default_factory=RecordingHis)
    prefix: str = field(default_factory=lambda: f"liaison-it-{uuid.uuid4().hex[:8]}.")

    async def start(self) -> "Pipeline":
        his_port = await self.his.start()
        bus = (EmbeddedBus(self.root / "bus.sqlite", poll_interval=0.05) if self.bus_kind == "embedded"
               else AmqpBus(AMQP_URL, prefix=self.prefix, connect_timeout=5.0))
        settings = Settings(
            journal=f"sqlite://{self.root / 'journal.sqlite'}", journal_key=os.urandom(32),
            listeners=(ListenerSettings(name="his", port=0, max_frame_bytes=self.max_frame_bytes),),
            retry_delays=RETRY_DELAYS, prefetch=4, cda_schema_required=False, schematrons=self.schematrons,
            watchdog_interval=self.watchdog_interval,
            render=RenderSettings(schematrons=self.render_schematrons), correspondents=self.correspondents,
            whitelist=self.whitelist, directory=self.directory_settings, dmp=self.dmp,
            **({"tables": self.tables} if self.tables is not None else {}),
            mss=MssSettings(relay=f"smtp://{self.relay_host}:{self.relay_port}", sender="pfi@hopital-test.mssante.fr",
                            client_cert=str(self.client_cert or self.pki.client_cert),
                            client_key=str(self.client_key or self.pki.client_key),
                            ca_file=str(self.pki.ca_cert), nil=self.nil, timeout=10.0,
                            message_id_domain="hopital-test.mssante.fr", **self.mss_options),
            imap=self.imap, notices_maildir=self.notices_maildir,
            acks=AckSettings(host="127.0.0.1", port=his_port, timeout=5.0),
        )
        self.engine = Engine(settings, bus=bus)
        await self.engine.start()
        return self

    async def stop(self) -> None:
        if self.engine is not None:
            await self.engine.stop()
        await self.his.close()
        if self.sink is not None:
            self.sink.stop()
        if self.bus_kind == "amqp":
            await _delete_queues(self.prefix)

    @property
    def journal(self):
        return self.engine.journal

    async def send(self, raw: bytes) -> AckReply:
        async with MllpSender("127.0.0.1", self.engine.port("his"), timeout=10.0) as sender:
            reply, _ = await sender.exchange(raw)
        return reply

    async def record(self, control_id: str) -> MessageRecord:
        """The journal row for an MSH-10 (refused messages carry a suffix, so match on the prefix)."""
        for record in await self.journal.search(limit=200):
            if record.control_id == control_id or record.control_id.startswith(control_id + "#"):
                return record
        raise AssertionError(f"no journal row for control id {control_id}")

    async def wait_final(self, control_id: str, timeout: float = 30.0,
                         states: set[MessageState] = FINAL) -> MessageRecord:
        deadline = time.monotonic() + timeout
        while True:
            record = await self.record(control_id)
            if record.state in states or time.monotonic() > deadline:
                return record
            await asyncio.sleep(0.05)

    async def zams(self, control_id: str, trigger: str, count: int, timeout: float = 30.0) -> list[str]:
        """The ZAM^``trigger`` the HIS received for ``control_id``, once there are ``count`` (or at the deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [z for z in self.his.received if f"ZAM^{trigger}" in z and f"|{control_id}|" in z]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.05)


async def sink_pipeline(root: Path, **options) -> Pipeline:
    """A started engine relaying to the scriptable TLS mail sink (``pipe.sink``, stopped with it): no Postfix."""
    pki = make_test_pki(root / "pki")
    sink = SmtpSink.from_pki(pki, root / "mail")
    await sink.start()
    return await Pipeline(root, pki, sink.port, relay_host="127.0.0.1", sink=sink, **options).start()


async def dmp_pipeline(root: Path, **options) -> tuple[Pipeline, DmpDouble]:
    """A started engine whose DMP channel is a started DMP test double (mutual TLS, VIHF checked against the
    test CA); the caller stops both."""
    pki = make_test_pki(root / "pki")
    cachet = make_cachet_pki(root / "cachet")
    ca = cachet.ca_cert.read_bytes()
    double = DmpDouble.from_pki(pki, verify_assertion=lambda assertion: verify_vihf(assertion, ca))
    await double.start()
    settings = dmp_settings({"url": double.url("/repository"), "registry_url": double.url("/registry"),
                             "client_cert": str(pki.client_cert), "client_key": str(pki.client_key),
                             "ca_file": str(pki.ca_cert), "timeout": 5, "vihf": vihf_table(cachet)}, env={})
    pipe = Pipeline(root, pki, relay_port=9, relay_host="127.0.0.1", dmp=settings, **options)
    await pipe.start()
    return pipe, double


def xdm_cda(message) -> bytes | None:
    """The CDA inside a mail's IHE_XDM.ZIP attachment (the first document of SUBSET01), or None."""
    for part in message.iter_attachments():
        if part.get_filename() == "IHE_XDM.ZIP":
            with zipfile.ZipFile(io.BytesIO(part.get_content())) as archive:
                names = [n for n in archive.namelist() if n.startswith("IHE_XDM/SUBSET01/") and
                         not n.endswith("METADATA.XML")]
                return archive.read(names[0]) if names else None
    return None


async def _delete_queues(prefix: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        for name in queues.ALL:
            for suffix in ["", ".parked"] + [f".retry.{round(d * 1000)}" for d in set(RETRY_DELAYS)]:
                await channel.queue_delete(prefix + name + suffix)
    finally:
        await connection.close()
