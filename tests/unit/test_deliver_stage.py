"""Two copies of the same delivery job (a resent message, a bus redelivery) mail each recipient once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from channels.journal import SqliteJournal
from mappings.packaging import MssPackaging
from router.errors import PeerUnavailable
from router.model import Flags, Recipient, RecipientKind, Refusal
from router.recipients_render import PatientPolicy
from router.ports import AddressVerdict, Envelope, ReceivedMessage, OutcomeStatus, RecipientResult, RecipientStatus
from router.settle import RetryPolicy
from router.stages.deliver import DeliverStage
from router.stages.zam import ZamQueue
from channels.testing.cda import make_job
from tests.support.poll import eventually


SENDER = "pfi@hopital-test.mssante.fr"


def deliver_stage(journal, mailer, *, lease: float = 60.0, **options) -> DeliverStage:
    packaging = MssPackaging(sender=SENDER, nil="NIL", default_body="Bonjour", message_id_domain="test.invalid",
                             source_id="1.2.3")
    return DeliverStage(journal, mailer, ZamQueue(bus=None, journal=journal, enabled=False), packaging,
                        sender=SENDER, policy=RetryPolicy(delays=(1.0,)), stale_claim=timedelta(seconds=lease),
                        **options)


async def received_job(journal, control_id: str, recipients=(Recipient("dr.martin@hopital-test.mssante.fr"),)):
    key, _ = await journal.record_received(ReceivedMessage(
        raw=b"MSH|...", channel="test", sending_application="LABO-TEST", sending_facility="LABO",
        control_id=control_id, message_type="ORU^R01", received_at=datetime.now(timezone.utc)))
    return replace(make_job(recipients=recipients, flags=Flags(dest_mss_ps=True)), message_key=key)


class SlowRecordingMailer:
    """Accepts everything, slowly, and keeps who was mailed."""

    def __init__(self):
        self.sent: list[tuple[str, ...]] = []

    async def send(self, message: bytes, *, sender: str, recipients, envelope_id: str = ""):
        await asyncio.sleep(0.2)            # both copies are in flight at once
        self.sent.append(tuple(recipients))
        return [RecipientResult(r, RecipientStatus.ACCEPTED, 250, "2.0.0 Ok") for r in recipients]

    async def close(self):
        pass


async def test_two_concurrent_copies_of_a_job_mail_each_recipient_once(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    await journal.open()
    try:
        mailer = SlowRecordingMailer()
        stage = deliver_stage(journal, mailer)
        key, _ = await journal.record_received(ReceivedMessage(
            raw=b"MSH|...", channel="test", sending_application="LABO-TEST", sending_facility="LABO",
            control_id="MSG0001", message_type="ORU^R01", received_at=datetime.now(timezone.utc)))
        recipients = (Recipient("dr.martin@hopital-test.mssante.fr", identifier="810000123454"),
                      Recipient("cardiologie@hopital-test.mssante.fr"))
        job = replace(make_job(recipients=recipients, flags=Flags(dest_mss_ps=True)), message_key=key)
        envelope = Envelope(body=job.to_json(), message_id=job.job_id)
        first, second = await asyncio.gather(stage(envelope), stage(envelope), return_exceptions=True)
        assert mailer.sent == [tuple(r.address for r in job.recipients)]
        # The copy that found the other's claims waited for them to settle, and ends without mailing.
        assert (first, second) == (None, None)
        assert {o.status for o in await journal.outcomes(job.header.document_id)} == {OutcomeStatus.ACCEPTED}
        await stage(envelope)                # a later redelivery: final outcomes are never mailed again
        assert len(mailer.sent) == 1
    finally:
        await journal.close()


class HeldMailer:
    """Accepts everything, once the test lets the mail through."""

    def __init__(self):
        self.sent: list[tuple[str, ...]] = []
        self.in_flight = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, message: bytes, *, sender: str, recipients, envelope_id: str = ""):
        self.in_flight.set()
        await self.release.wait()
        self.sent.append(tuple(recipients))
        return [RecipientResult(r, RecipientStatus.ACCEPTED, 250, "2.0.0 Ok") for r in recipients]


async def test_a_claim_is_renewed_while_its_mail_is_in_flight_so_it_never_looks_abandoned(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        mailer = HeldMailer()
        stage = deliver_stage(journal, mailer, lease=0.3)
        job = await received_job(journal, "RENEW-1")
        sending = asyncio.create_task(stage(Envelope(body=job.to_json(), message_id=job.job_id)))
        try:
            await eventually(mailer.in_flight.is_set, "the mail to be in flight")
            [claimed] = await journal.outcomes(job.header.document_id)

            async def renewed():
                [now] = await journal.outcomes(job.header.document_id)
                return now.status == OutcomeStatus.SENDING and now.at >= claimed.at + timedelta(seconds=0.4)
            await eventually(renewed, "the claim to be renewed past its first lease", timeout=5)
            assert await journal.stale_claims(datetime.now(timezone.utc) - timedelta(seconds=0.3)) == []
        finally:
            mailer.release.set()
            await sending
        assert [o.status for o in await journal.outcomes(job.header.document_id)] == [OutcomeStatus.ACCEPTED]


async def test_a_claim_left_by_a_dead_worker_is_taken_over_as_soon_as_its_lease_lapses(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        mailer = SlowRecordingMailer()
        stage = deliver_stage(journal, mailer, lease=0.3)
        job = await received_job(journal, "DEAD-1")
        address = job.recipients[0].address
        # The worker that claimed the recipient was killed: nobody renews its claim.
        assert await journal.claim(job.header.document_id, address, message_key=job.message_key,
                                   stale_after=timedelta(seconds=0.3))
        await stage(Envelope(body=job.to_json(), message_id=job.job_id))     # acked: not sent back to the bus

        assert mailer.sent == [(address,)]
        assert [o.status for o in await journal.outcomes(job.header.document_id)] == [OutcomeStatus.ACCEPTED]
        assert [e.state for e in await journal.events(job.message_key) if e.step == "claim"] == ["taken_over"]


async def test_a_copy_held_up_by_a_live_workers_claim_goes_back_to_the_bus_after_one_lease(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        mailer = HeldMailer()
        live, other = deliver_stage(journal, mailer, lease=0.3), deliver_stage(journal, SlowRecordingMailer(), lease=0.3)
        job = await received_job(journal, "LIVE-1")
        envelope = Envelope(body=job.to_json(), message_id=job.job_id)
        sending = asyncio.create_task(live(envelope))
        try:
            await eventually(mailer.in_flight.is_set, "the mail to be in flight")
            with pytest.raises(PeerUnavailable, match="1 claimed by another worker"):
                await other(envelope)
        finally:
            mailer.release.set()
            await sending
        assert mailer.sent == [(job.recipients[0].address,)]
        assert [e for e in await journal.events(job.message_key) if e.step == "claim"] == []


class DomainList:
    """An AddressCheck over a fixed set of domains (the whitelist's contract, without its file)."""

    def __init__(self, *domains: str):
        self.domains = set(domains)

    def check(self, address: str) -> AddressVerdict:
        domain = address.rsplit("@", 1)[-1].lower()
        if domain in self.domains:
            return AddressVerdict(True, f"domain {domain} is on the list")
        return AddressVerdict(False, f"domain {domain} is not on the MSSanté whitelist")


async def test_a_recipient_outside_the_whitelist_is_refused_with_its_reason_and_the_his_is_told(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        mailer = SlowRecordingMailer()
        stage = deliver_stage(journal, mailer, address_check=DomainList("hopital-test.mssante.fr"))
        key, _ = await journal.record_received(ReceivedMessage(
            raw=b"MSH|...", channel="test", sending_application="LABO-TEST", sending_facility="LABO",
            control_id="MSG0002", message_type="ORU^R01", received_at=datetime.now(timezone.utc)))
        recipients = (Recipient("dr.martin@hopital-test.mssante.fr"), Recipient("dr.x@gmail.com"))
        job = replace(make_job(recipients=recipients, flags=Flags(dest_mss_ps=True, ack_reception=True)),
                      message_key=key)
        await stage(Envelope(body=job.to_json(), message_id=job.job_id))

        assert mailer.sent == [("dr.martin@hopital-test.mssante.fr",)]
        outcomes = {o.destination: o for o in await journal.outcomes(job.header.document_id)}
        assert outcomes["dr.x@gmail.com"].status == OutcomeStatus.REFUSED
        assert outcomes["dr.x@gmail.com"].detail == "not mailed: domain gmail.com is not on the MSSanté whitelist"
        assert outcomes["dr.martin@hopital-test.mssante.fr"].status == OutcomeStatus.ACCEPTED
        zam_events = [e for e in await journal.events(key) if e.step == "zam"]
        assert len(zam_events) == 2                      # one per recipient: Y for the doctor, N for the refusal
        assert (await journal.message(key)).state.value == "partial"


async def test_a_patient_mailbox_named_by_the_his_needs_a_qualified_ins(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        mailer = SlowRecordingMailer()
        stage = deliver_stage(journal, mailer, patient_policy=PatientPolicy())
        key, _ = await journal.record_received(ReceivedMessage(
            raw=b"MSH|...", channel="test", sending_application="LABO-TEST", sending_facility="LABO",
            control_id="MSG0003", message_type="ORU^R01", received_at=datetime.now(timezone.utc)))
        base = make_job()
        patient = Recipient(f"{base.header.ins}@patient.mssante.fr", kind=RecipientKind.PATIENT,
                            identifier=base.header.ins)
        job = replace(base, message_key=key, recipients=(Recipient("dr.martin@hopital-test.mssante.fr"), patient),
                      flags=Flags(dest_mss_ps=True, dest_mss_patient=True), patient_identity_status="PROV")
        await stage(Envelope(body=job.to_json(), message_id=job.job_id))

        assert mailer.sent == [("dr.martin@hopital-test.mssante.fr",)]
        refused = {o.destination: o for o in await journal.outcomes(job.header.document_id)}[patient.address]
        assert refused.status == OutcomeStatus.REFUSED
        assert refused.detail == ("not mailed: patient: identity status PROV in PID-32 is not qualified "
                                  "(needs QUAL or VALI)")


async def test_a_recipient_refused_when_read_is_never_mailed_and_counts_in_the_message_state(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        mailer = SlowRecordingMailer()
        stage = deliver_stage(journal, mailer, address_check=DomainList("hopital-test.mssante.fr",
                                                                        "patient.mssante.fr"))
        key, _ = await journal.record_received(ReceivedMessage(
            raw=b"MSH|...", channel="test", sending_application="LABO-TEST", sending_facility="LABO",
            control_id="MSG0004", message_type="ORU^R01", received_at=datetime.now(timezone.utc)))
        other = Recipient("172036904501235@patient.mssante.fr", kind=RecipientKind.PATIENT,
                          refusal=Refusal("the patient's MSSanté address does not match the CDA's INS", "904",
                                          "INS ne correspondant pas"))
        job = replace(make_job(), message_key=key, recipients=(Recipient("dr.martin@hopital-test.mssante.fr"), other),
                      flags=Flags(dest_mss_ps=True, dest_mss_patient=True, ack_reception=True))
        envelope = Envelope(body=job.to_json(), message_id=job.job_id)
        await stage(envelope)

        assert mailer.sent == [("dr.martin@hopital-test.mssante.fr",)]
        outcomes = {o.destination: o for o in await journal.outcomes(job.header.document_id)}
        assert outcomes[other.address].status == OutcomeStatus.REFUSED
        assert outcomes[other.address].detail == "not mailed: the patient's MSSanté address does not match the CDA's INS"
        assert outcomes["dr.martin@hopital-test.mssante.fr"].status == OutcomeStatus.ACCEPTED
        assert len([e for e in await journal.events(key) if e.step == "zam"]) == 2
        assert (await journal.message(key)).state.value == "partial"
        await stage(envelope)                # a redelivery neither mails nor answers again
        assert len(mailer.sent) == 1 and len([e for e in await journal.events(key) if e.step == "zam"]) == 2


class OutcomeWritesFailFor:
    """The real journal, whose outcome writes fail as "journal unavailable" for ``seconds`` once the relay
    has answered (as while PostgreSQL restarts); everything else goes through."""

    def __init__(self, journal, seconds: float):
        self._journal = journal
        self.seconds = seconds
        self.failed = 0
        self._until: float | None = None

    def __getattr__(self, name):
        return getattr(self._journal, name)

    async def record_outcome(self, outcome):
        from router.errors import TransientError
        loop = asyncio.get_running_loop()
        if outcome.status == OutcomeStatus.ACCEPTED:
            self._until = self._until or loop.time() + self.seconds
            if loop.time() < self._until:
                self.failed += 1
                raise TransientError("journal unavailable: the database system is shutting down")
        await self._journal.record_outcome(outcome)


class RelayedMarksFailFor(OutcomeWritesFailFor):
    """The real journal, whose "relayed" marks of a sent mail fail as "journal unavailable" for ``seconds``."""

    async def record_outcome(self, outcome):
        await self._journal.record_outcome(outcome)

    async def mark_mail(self, *args, **kwargs):
        from router.errors import TransientError
        loop = asyncio.get_running_loop()
        self._until = self._until or loop.time() + self.seconds
        if loop.time() < self._until:
            self.failed += 1
            raise TransientError("journal unavailable: the database system is shutting down")
        return await self._journal.mark_mail(*args, **kwargs)


async def test_a_relayed_mark_meeting_a_journal_away_waits_for_it_and_never_mails_again(tmp_path):
    """The fault suite's PostgreSQL restart: the 250 came, the journal is away for the mail's "relayed" mark."""
    async with SqliteJournal(tmp_path / "journal.sqlite") as real:
        journal = RelayedMarksFailFor(real, seconds=1.0)
        mailer = SlowRecordingMailer()
        stage = deliver_stage(journal, mailer, lease=2.0)
        job = await received_job(real, "PATIENT-MARK-1")
        await stage(Envelope(body=job.to_json(), message_id=job.job_id))     # no TransientError: waited it out
        assert journal.failed >= 2
        assert len(mailer.sent) == 1
        assert [o.status for o in await real.outcomes(job.header.document_id)] == [OutcomeStatus.ACCEPTED]


async def test_an_accepted_mail_is_recorded_once_the_journal_is_back_not_mailed_again(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite") as real:
        journal = OutcomeWritesFailFor(real, seconds=1.0)
        mailer = SlowRecordingMailer()
        stage = deliver_stage(journal, mailer, lease=2.0)
        job = await received_job(real, "PATIENT-WRITE-1")
        await stage(Envelope(body=job.to_json(), message_id=job.job_id))     # no TransientError: waited it out
        assert journal.failed >= 2
        assert len(mailer.sent) == 1
        assert [o.status for o in await real.outcomes(job.header.document_id)] == [OutcomeStatus.ACCEPTED]


class EnvelopeRecordingMailer:
    """Accepts the first recipient, refuses the others, and keeps the ENVID and Message-ID of each mail."""

    def __init__(self):
        self.mails: list[tuple[str, str]] = []

    async def send(self, message: bytes, *, sender: str, recipients, envelope_id: str = ""):
        import email
        self.mails.append((envelope_id, email.message_from_bytes(message)["Message-ID"]))
        return [RecipientResult(r, RecipientStatus.ACCEPTED if i == 0 else RecipientStatus.REJECTED,
                                250 if i == 0 else 550, "ok" if i == 0 else "5.1.1 unknown")
                for i, r in enumerate(recipients)]


async def test_every_mail_is_journaled_with_its_envid_and_message_id_and_who_the_relay_took(tmp_path):
    from router.stages.deliver import envelope_id_for
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        mailer = EnvelopeRecordingMailer()
        job = await received_job(journal, "ENVID-1", recipients=(
            Recipient("dr.martin@hopital-test.mssante.fr", identifier="810000123454"),
            Recipient("inconnu@hopital-test.mssante.fr")))
        await deliver_stage(journal, mailer)(Envelope(body=job.to_json(), message_id=job.job_id))

        [(envelope_id, message_id)] = mailer.mails
        assert envelope_id == envelope_id_for(message_id) and len(envelope_id) == 32
        mail = await journal.sent_mail(message_id=message_id)
        assert (mail.envelope_id, mail.message_key, mail.document_id) == (envelope_id, job.message_key,
                                                                          job.header.document_id)
        assert mail.source == job.source
        by_address = {r.address: r for r in mail.recipients}
        assert by_address["dr.martin@hopital-test.mssante.fr"].identifier == "810000123454"
        assert by_address["dr.martin@hopital-test.mssante.fr"].relayed_at is not None
        assert by_address["inconnu@hopital-test.mssante.fr"].relayed_at is None
