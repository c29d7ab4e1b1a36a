"""The composition root: wires adapters chosen by URL to the core's stages.

``Engine`` is what ``liaison run`` and ``liaison demo`` start: the journal, the
bus, the MLLP listeners (the door), and one consumer per pipeline stage
(``inbound`` → ``deliver.mss`` → ``acks.his``), and the lettre de liaison
watchdog (``router.watchdog``) next to the consumers; with ``[imap]`` or ``[notices] maildir``,
the reader of the notices (DSN, MDN, error mails) that come back to the structure's mailbox
(``channels.notices.imap`` or ``channels.notices.maildir``), whose ZAMs join ``acks.his``. It is the only module
that imports both the core and the adapters.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from channels.app.settings import Settings
from channels.mllp.sender import MllpAckSink, MllpSender
from channels.mllp.server import MllpServer
from channels.mllp.settings import ListenerSettings
from mappings.cda_header import read_header
from mappings.lab_codes import microbiology_sections
from mappings.packaging import MssPackaging
from mappings.value_sets import document_type_codes
from mappings.volets import REGISTRY, UNNAMED_SCHEMATRONS
from router import queues
from router.cda_schema import CdaSchemaValidator, locate_schema_dir
from channels.directory.compose import build_directory
from channels.sealed_bus import SealedBus
from channels.tls_files import load_cert_chain, load_verify_locations
from channels.whitelist.check import WhitelistCheck
from channels.whitelist.refresher import WhitelistRefresher
from channels.xds.dmp import dmp_record
from router.cda_checks import CdaChecks
from router.content_check import SchematronCheck
from router.profile_sample import ProfileSample
from router.schematron import MINIMAL_STRUCTURE, SchematronValidator, locate_schematron_dir
from router.schematron_index import schematron_index
from router.errors import ConfigError, TransientError
from router.ingest import Ingest
from router.ports import (AckSink, Bus, Directory, Journal, Mailer, SharedRecord, SingleRunner, Subscription,
                          Volets)
from router.settle import RetryPolicy, settle
from router.stages.acks import AckStage
from router.stages.adt import AdtStage
from router.stages.deliver import DeliverStage
from router.stages.parked import park_recorder
from router.stages.deposit import DepositStage
from router.stages.process import ProcessStage
from router.stages.render import RenderStage
from router.stages.zam import ZamQueue
from router.retention import RetentionRunner
from router.watchdog import LetterWatchdog
from router.claim_sweep import ClaimSweep
from router.notices import NoticeDecider

log = structlog.get_logger(__name__)


def bus_from_url(url: str | tuple[str, ...]) -> Bus:
    """The bus at ``url``; a tuple of URLs is the nodes of one RabbitMQ cluster."""
    scheme = (url if isinstance(url, str) else url[0]).split("://", 1)[0]
    if scheme == "embedded" and isinstance(url, str):
        from channels.embedded.bus import EmbeddedBus
        return EmbeddedBus.from_url(url)
    if scheme in ("amqp", "amqps"):
        from channels.amqp.bus import AmqpBus
        return AmqpBus.from_url(url)
    raise ConfigError("engine.bus", f"unsupported bus URL {url!r}")


def journal_from_url(url: str, key: bytes | None, *, migrate: bool = True, read_only: bool = False) -> Journal:
    """The journal adapter for ``url``.

    ``migrate``: bring its schema up to date at open (else refuse an old one); ``read_only`` for the
    reading commands: an existing journal, never created nor changed (SQLite).
    """
    if url.startswith("sqlite://"):
        from channels.journal import from_url
        return from_url(url, key=key, migrate=migrate, read_only=read_only)
    if url.startswith(("postgresql://", "postgres://")):
        from channels.journal.postgresql import from_url as postgresql_url
        return postgresql_url(url, key=key, migrate=migrate and not read_only)
    raise ConfigError("engine.journal", f"unsupported journal URL {url.split('://', 1)[0]!r}")


def audit_pruner(settings: Settings):
    """The console audit trail's retention step (``[retention] audit_days``), when ``[console]`` is configured."""
    if settings.console is None or settings.retention.audit_days is None:
        return None
    users_file = settings.console.users

    async def prune(before, limit: int) -> int:
        from channels.console.users import SqliteUsers

        def run() -> int:
            users = SqliteUsers(users_file, journal_key=settings.journal_key).open()
            try:
                return users.prune_audit(before, limit)
            finally:
                users.close()

        return await asyncio.to_thread(run)

    return prune


def mailer_from_settings(settings: Settings) -> Mailer | None:
    mss = settings.mss
    if not mss.relay:
        return None
    from channels.smtp.mailer import SmtpMailer
    return SmtpMailer.from_url(mss.relay, client_cert=mss.client_cert or None, client_key=mss.client_key or None,
                               ca_file=mss.ca_file or None, timeout=mss.timeout, dsn=mss.dsn)


def listener_ssl(listener: ListenerSettings, where: str = "listeners[0]") -> ssl.SSLContext | None:
    """The server TLS context of a listener (None without ``tls_cert``); errors name ``where``'s keys."""
    if not listener.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_cert_chain(context, listener.tls_cert, listener.tls_key, cert_setting=f"{where}.tls_cert",
                    key_setting=f"{where}.tls_key")
    if listener.tls_client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        load_verify_locations(context, listener.tls_client_ca, setting=f"{where}.tls_client_ca")
    return context


@dataclass
class Engine:
    settings: Settings
    bus: Bus | None = None
    journal: Journal | None = None
    mailer: Mailer | None = None
    ack_sink: AckSink | None = None
    directory: Directory | None = None       # default: the static correspondents of the configuration
    shared_record: SharedRecord | None = None   # default: the DMP of [dmp], when configured
    volets: Volets = REGISTRY                    # the volets rendered and checked (mappings.volets)
    servers: dict[str, MllpServer] = field(default_factory=dict)
    ingests: list[Ingest] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    schema_dir: str = ""
    watchdog: LetterWatchdog | None = None
    claim_sweep: ClaimSweep | None = None
    whitelist_refresher: WhitelistRefresher | None = None
    retention: RetentionRunner | None = None
    # Seconds to wait at start for a journal or bus that is not there yet (a database restarting, servers
    # booting in any order) before giving up; a failure that is not transient ends the start at once.
    start_patience: float = 60.0
    notice_reader: Any = None                 # the notice reader: IMAP ([imap]) or Maildir ([notices] maildir)

    async def start(self, *, listen: bool = True, consume: bool = True) -> None:
        s = self.settings
        schema_check = self._schema_check() if consume else None     # fail before opening anything
        content_check = self._content_check() if consume else None
        render_check = self._render_check(content_check) if consume else None
        self.journal = self.journal or journal_from_url(s.journal, s.journal_key, migrate=s.journal_migrate)
        self.bus = self.bus or bus_from_url(s.bus)
        if s.journal_key is not None and not isinstance(self.bus, SealedBus):
            # Patient data on the bus is encrypted at rest like the journal (a key derived from it).
            self.bus = SealedBus(self.bus, s.journal_key)
        self.mailer = self.mailer or mailer_from_settings(s)
        if self.shared_record is None and s.dmp is not None:
            self.shared_record = dmp_record(s.dmp, source_id=s.source_id)
        if self.ack_sink is None and s.acks.enabled:
            self.ack_sink = MllpAckSink(MllpSender(s.acks.host, s.acks.port, timeout=s.acks.timeout))
        await _patiently(self.journal.open, "journal", self.start_patience)
        await _patiently(self.bus.connect, "bus", self.start_patience)
        if consume:
            await self._start_consumers(schema_check, content_check, render_check)
        if listen:
            for index, listener in enumerate(s.listeners):
                await self._start_listener(listener, f"listeners[{index}]")

    def _schema_check(self):
        """The CDA_extended.xsd check, or None where the configuration allows running without it."""
        s = self.settings
        schema_dir = locate_schema_dir(s.cda_schema_dir or None)
        if schema_dir is not None:
            self.schema_dir = str(schema_dir)
            return CdaSchemaValidator(schema_dir).validate
        if s.cda_schema_required:
            raise ConfigError("engine.cda_schema_dir", "CDA_extended.xsd not found (set engine.cda_schema_dir or "
                              "LIAISON_CDA_SCHEMA_DIR): no CDA may be sent unchecked; set "
                              "engine.cda_schema_required = false only for a demonstration")
        log.warning("engine.no_cda_schema", hint="set engine.cda_schema_dir or LIAISON_CDA_SCHEMA_DIR")
        return None

    def _content_check(self) -> SchematronCheck | None:
        """The pre-send CI-SIS schematron check, compiled now, when the configuration asks for it."""
        s = self.settings
        if s.schematrons == "off":
            return None
        directory = locate_schematron_dir(s.schematron_dir or None)
        if directory is None:
            raise ConfigError("engine.schematron_dir", f"engine.schematrons = {s.schematrons!r} but the CI-SIS "
                              "schematrons were not found (set engine.schematron_dir or LIAISON_SCHEMATRON_DIR)")
        return SchematronCheck(directory, self.volets, profiles=s.schematrons == "all",
                               index=schematron_index(directory, UNNAMED_SCHEMATRONS))

    def _profile_sample(self) -> ProfileSample | None:
        """``engine.profile_sample``: the minimal-structure profile on 1 document in N, after dispatch
        (router/profile_sample.py); compiled now, not on the first sampled document."""
        s = self.settings
        if not s.profile_sample:
            return None
        directory = locate_schematron_dir(s.schematron_dir or None)
        if directory is None:
            raise ConfigError("engine.schematron_dir", "engine.profile_sample is set but the CI-SIS schematrons "
                              "were not found (set engine.schematron_dir or LIAISON_SCHEMATRON_DIR)")
        validator = SchematronValidator(directory / MINIMAL_STRUCTURE)
        return ProfileSample(s.profile_sample, lambda cda: validator.validate(cda).describe())

    def _render_check(self, content_check: SchematronCheck | None) -> SchematronCheck | None:
        """The schematron check of rendered documents (``render.schematrons``, default the volet's).

        Missing schematrons stop a production engine (what we write is proven before
        it leaves); where the CDA schema is optional too (the demo) they are skipped
        with a warning.
        """
        s = self.settings
        if s.render.schematrons == "off":
            return None
        profiles = s.render.schematrons == "all"
        if content_check is not None and content_check.profiles == profiles:
            return content_check
        directory = locate_schematron_dir(s.schematron_dir or None)
        if directory is not None:
            return SchematronCheck(directory, self.volets, profiles=profiles,
                                   index=schematron_index(directory, UNNAMED_SCHEMATRONS))
        if s.cda_schema_required:
            raise ConfigError("engine.schematron_dir", f"render.schematrons = {s.render.schematrons!r} but the CI-SIS "
                              "schematrons were not found (set engine.schematron_dir or LIAISON_SCHEMATRON_DIR, "
                              "or render.schematrons = \"off\")")
        log.warning("engine.no_schematrons", hint="rendered documents are checked against the XSD only")
        return None

    def _cda_checks(self) -> CdaChecks:
        """The engine's own pre-send checks: volets known to the index (when the schematrons are found), JDV codes."""
        s = self.settings
        directory = locate_schematron_dir(s.schematron_dir or None)
        jdv_dir = s.tables.jdv_dir
        type_codes, dmp_type_codes = document_type_codes(jdv_dir) if jdv_dir is not None else (None, None)
        if dmp_type_codes is None and self.shared_record is not None:
            log.warning("engine.no_jdv_j66", hint="DMP type codes are checked against JDV_J07 only: put the "
                                                  "JDV_J66 SVS file in the JDV directory")
        return CdaChecks(self.volets, index=schematron_index(directory, UNNAMED_SCHEMATRONS) if directory else None,
                         type_codes=type_codes, dmp_type_codes=dmp_type_codes)

    async def _start_consumers(self, schema_check, content_check, render_check) -> None:
        s = self.settings
        policy = RetryPolicy(delays=s.retry_delays)
        stale_claim = self.claim_lease()
        zams = ZamQueue(self.bus, self.journal, enabled=self.ack_sink is not None)
        adt = AdtStage(self.journal, letter_types=self.volets.stay_letter_types(), deadline=s.letter_deadline,
                       timezone=s.timezone)
        stages = {queues.INBOUND: ProcessStage(self.bus, self.journal, zams, cda_reader=read_header,
                                               schema_check=schema_check, content_check=content_check, adt=adt,
                                               render=self._render_stage(), render_check=render_check,
                                               deposit=self.shared_record is not None,
                                               cda_checks=self._cda_checks(), unchecked=s.unchecked_volet,
                                               profile_sample=self._profile_sample())}
        if self.mailer is not None:
            packaging = MssPackaging(sender=s.mss.sender, nil=s.mss.nil, default_body=s.mss.default_body,
                                     message_id_domain=s.mss.message_id_domain, source_id=s.source_id,
                                     mdn=s.mss.mdn, mdn_to=s.mss.mdn_to)
            stages[queues.DELIVER_MSS] = DeliverStage(self.journal, self.mailer, zams, packaging,
                                                      sender=s.mss.sender, policy=policy, stale_claim=stale_claim,
                                                      address_check=self._whitelist(),
                                                      patient_policy=s.render.patient_policy)
        else:
            log.warning("engine.no_mss_relay", hint="documents wait in deliver.mss until [mss] relay is set")
        if self.ack_sink is not None:
            stages[queues.ACKS_HIS] = AckStage(self.journal, self.ack_sink)
        if self.shared_record is not None:
            policy_patient = s.render.patient_policy
            stages[queues.DEPOSIT_DMP] = DepositStage(self.journal, self.shared_record, zams, policy=policy,
                                                      stale_claim=stale_claim, statuses=policy_patient.statuses,
                                                      ins_kinds=policy_patient.ins_kinds)
        for queue, stage in stages.items():
            on_park = park_recorder(queue, self.journal, stage)
            self.subscriptions.append(await self.bus.consume(queue, _settling(stage, policy, queue, on_park),
                                                             prefetch=s.prefetch))
        self.watchdog = LetterWatchdog(self.journal, interval=s.watchdog_interval, runner=self._runner())
        self.watchdog.start()
        # A claim nobody took over after the lease and the whole retry policy: its job is gone.
        self.claim_sweep = ClaimSweep(self.journal, zams, lease=stale_claim,
                                      give_up_after=2 * stale_claim + timedelta(seconds=sum(s.retry_delays)),
                                      interval=max(1.0, min(60.0, stale_claim.total_seconds() / 2)),
                                      runner=self._runner())
        self.claim_sweep.start()
        if s.imap is not None:
            from channels.notices.imap import ImapNoticeReader
            self.notice_reader = ImapNoticeReader(s.imap, self.journal, NoticeDecider(self.journal, zams))
            self.notice_reader.start()
        elif s.notices_maildir is not None:
            from channels.notices.maildir import MaildirNoticeReader
            self.notice_reader = MaildirNoticeReader(s.notices_maildir, self.journal, NoticeDecider(self.journal, zams))
            self.notice_reader.start()
        self._start_retention()

    def _start_retention(self) -> None:
        """``[retention]``: the periodic pass beside the consumers (one server at a time runs it)."""
        s = self.settings
        if not s.retention.enabled:
            return
        self.retention = RetentionRunner(self.journal, s.retention, audit=audit_pruner(s))
        self.retention.start()

    def _runner(self) -> SingleRunner | None:
        """The journal as the SingleRunner of the timers (both adapters are), so that one server runs each pass."""
        return self.journal if hasattr(self.journal, "alone") else None   # type: ignore[return-value]

    def claim_lease(self) -> timedelta:
        """How long a send claim holds: ``engine.claim_lease``, else a few SMTP timeouts (at least a minute)."""
        s = self.settings
        return timedelta(seconds=s.claim_lease or max(60.0, 4 * s.mss.timeout))

    def _whitelist(self) -> WhitelistCheck | None:
        """The MSSanté whitelist in force (stored copy now, refreshed on schedule), or None when not configured."""
        s = self.settings
        if s.whitelist is None:
            log.warning("engine.no_whitelist", hint="set [whitelist]: recipients' domains are not checked")
            return None
        store = s.whitelist.open_store()
        self.whitelist_refresher = s.whitelist.refresher(store, runner=self._runner())
        self.whitelist_refresher.start()
        return WhitelistCheck(store)

    def _render_stage(self) -> RenderStage:
        s = self.settings
        if self.directory is None:
            self.directory = build_directory(s.correspondents, s.directory)
        return RenderStage(self.journal, self.directory, self.volets,
                           site=s.site, cda_reader=read_header, tables=s.tables, letter_roles=s.render.letter_roles,
                           lab_roles=s.render.lab_roles, patient_policy=s.render.patient_policy,
                           timezone=s.timezone, deposit=self.shared_record is not None,
                           microbiology_sections=microbiology_sections())

    async def _start_listener(self, listener: ListenerSettings, where: str) -> None:
        ingest = Ingest(self.journal, self.bus, channel=listener.name, default_charset=listener.default_charset,
                        max_frame_bytes=listener.max_frame_bytes)
        server = MllpServer(ingest, host=listener.host, port=listener.port,
                            max_frame_bytes=listener.max_frame_bytes, read_timeout=listener.read_timeout,
                            max_connections=listener.max_connections, ssl_context=listener_ssl(listener, where),
                            reuse_port=listener.reuse_port)
        await server.start()
        self.servers[listener.name] = server
        self.ingests.append(ingest)
        log.info("engine.listening", channel=listener.name, host=listener.host, port=server.port)

    def port(self, name: str = "his") -> int:
        return self.servers[name].port

    async def stop(self) -> None:
        """Graceful: stop taking input, let in-flight work settle, close connections."""
        for server in self.servers.values():
            await server.close()
        for ingest in self.ingests:
            await ingest.drain()
        if self.watchdog is not None:
            await self.watchdog.stop()
        if self.claim_sweep is not None:
            await self.claim_sweep.stop()
        if self.retention is not None:
            await self.retention.stop()
        if self.notice_reader is not None:
            await self.notice_reader.stop()
        if self.whitelist_refresher is not None:
            await self.whitelist_refresher.stop()
        for subscription in self.subscriptions:
            await subscription.cancel()
        self.subscriptions.clear()
        for closable in (self.mailer, self.ack_sink, self.directory, self.shared_record):
            close = getattr(closable, "close", None)
            if close is not None:
                await close()
        if self.bus is not None:
            await self.bus.close()
        if self.journal is not None:
            await self.journal.close()


async def _patiently(connect, what: str, patience: float) -> None:
    """Await ``connect()`` until it stops raising ``TransientError``, for up to ``patience`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    delay = 0.5
    while True:
        try:
            await connect()
            return
        except TransientError as exc:
            if loop.time() + delay > deadline:
                raise
            log.warning("engine.waiting", component=what, retry_in=delay, error=str(exc))
        await asyncio.sleep(delay)
        delay = min(5.0, delay * 2)


def _settling(stage, policy: RetryPolicy, queue: str, on_park):
    async def handle(delivery) -> None:
        await settle(delivery, stage, policy, queue=queue, on_park=on_park)
    return handle
