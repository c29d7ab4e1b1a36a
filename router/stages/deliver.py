"""Stage ``deliver.mss``: package a DocumentJob as IHE_XDM.ZIP and mail it over MSSanté.

Each (document, recipient) is mailed once: before sending, the stage *claims*
the recipient in the journal (Journal.claim), so two copies of a job (a resent
message, a redelivery) never both mail it, and a recipient whose outcome is
final is never mailed again. The claim is renewed while the worker sends
(``claims.py``); one left unrenewed past ``stale_claim`` is its dead
worker's, and the job's next copy takes it over. The relay's answer per recipient decides: 2xx
accepted, 5xx failed for that recipient, 4xx retried through the bus (the job
raises ``PeerUnavailable`` so settle() schedules the retry) until the retry
policy is spent, then failed. Each final outcome is journaled and, when asked
(ACK_RECEPTION=Y) or on failure, answered to the HIS with a ZAM^Z02, queued
before the outcome is written so that a crash in between repeats the ZAM
rather than losing it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import structlog

from router.errors import PeerUnavailable, RejectedByPeer, TransientError
from router.job_transport import job_of
from router.model import Action, DocumentJob, Recipient, RecipientKind
from router.ports import (AddressCheck, Envelope, Journal, JournalEvent, MailPackager, Mailer, MailRecipient, MailStep,
                          MessageState, Outcome, OutcomeStatus, RecipientResult, RecipientStatus, SentMail)
from router.settle import RetryPolicy
from router.stages.claims import held_until_released, renewing
from router.stages.clock import now
from router.recipients_render import PatientPolicy, patient_mailbox_refusal
from router.stages.zam import (MSS_REJECTED, MSS_UNREACHABLE, NOT_WHITELISTED, PATIENT_NOT_QUALIFIED,
                                RECIPIENT_INVALID, ZamQueue, refusal_detail)

log = structlog.get_logger(__name__)

_FINAL = {OutcomeStatus.ACCEPTED, OutcomeStatus.FAILED, OutcomeStatus.REFUSED}


class DeliverStage:
    def __init__(self, journal: Journal, mailer: Mailer, zams: ZamQueue, packager: MailPackager, *,
                 sender: str, policy: RetryPolicy, stale_claim: timedelta,
                 address_check: AddressCheck | None = None, patient_policy: PatientPolicy | None = None):
        """``stale_claim``: the lease; a claim not renewed for this long belongs to a worker that died mid-send."""
        self.journal = journal
        self.address_check = address_check
        self.patient_policy = patient_policy
        self.mailer = mailer
        self.zams = zams
        self.packager = packager
        self.sender = sender
        self.policy = policy
        self.stale_claim = stale_claim

    async def __call__(self, envelope: Envelope) -> None:
        job = await job_of(envelope, self.journal)     # a large CDA is read back from the journal
        last_attempt = self.policy.next_delay(envelope.attempt) is None
        current = {o.destination: o for o in await self.journal.outcomes(delivery_key(job))}
        done = {address: o.status for address, o in current.items() if final_for(o, job)}
        await self._answer_earlier(job, current)
        await self._refuse_unaddressable(job, done)
        await self._refuse_untrusted(job, done)
        await self._claim_and_send(job, done, current, last_attempt=last_attempt)
        addressable = {r.address for r in self._addressable(job)}
        held = [o.destination for o in await self.journal.outcomes(delivery_key(job))
                if o.destination in addressable and o.status == OutcomeStatus.SENDING]
        if held:
            # Claimed by another worker: most often one that died with this job, which came back at once.
            # Waiting here for those claims to settle or lapse takes them over now, not behind every job
            # queued meanwhile (router/stages/claims.py).
            current = await held_until_released(self.journal, delivery_key(job), held, lease=self.stale_claim)
            done = {address: o.status for address, o in current.items() if final_for(o, job)}
            await self._claim_and_send(job, done, current, last_attempt=last_attempt, only=set(held))
        await self._settle_message_state(job)
        pending = [o.status for o in await self.journal.outcomes(delivery_key(job))
                   if o.destination in addressable and o.status in (OutcomeStatus.RETRYING, OutcomeStatus.SENDING)]
        if pending:
            # A recipient another worker claimed stays pending until that claim ends or is taken over: the
            # job is kept (retried later), never acked while a recipient is neither final nor retrying.
            # Counts only: recipient addresses (a patient's holds the INS) stay out of logs and bus headers.
            raise PeerUnavailable(
                f"{pending.count(OutcomeStatus.RETRYING)} recipient(s) of document {job.header.document_id} to "
                f"retry later, {pending.count(OutcomeStatus.SENDING)} claimed by another worker")

    async def _claim_and_send(self, job: DocumentJob, done: dict, current: dict[str, Outcome], *,
                              last_attempt: bool, only: set[str] | None = None) -> None:
        """Claim every recipient not settled yet (of ``only``, when given) and mail those claimed, renewing the
        claims meanwhile."""
        claimed = [r for r in self._addressable(job) if done.get(r.address) not in _FINAL
                   and (only is None or r.address in only)
                   and await self.journal.claim(delivery_key(job), r.address, message_key=job.message_key,
                                                stale_after=self.stale_claim)]
        await self._note_takeovers(job, claimed, current)
        if not claimed:
            return
        async with renewing(self.journal, delivery_key(job), [r.address for r in claimed],
                            message_key=job.message_key, lease=self.stale_claim):
            xdm = self.packager.xdm(job, submission_time=now())
            for audience in (RecipientKind.PROFESSIONAL, RecipientKind.PATIENT):
                group = [r for r in claimed if r.kind == audience]
                if group:
                    await self._send(job, xdm, audience, group, last_attempt=last_attempt)

    async def _answer_earlier(self, job: DocumentJob, current: dict[str, Outcome]) -> None:
        """A re-send (same content, new MSH-10): each recipient an earlier message settled gets its answer.

        Who accepted this exact content is not mailed again, but the HIS asked again under a new
        MSH-10 and waits for a ZAM^Z02 for it: one per recipient, saying it was delivered earlier
        and when. Once per (message, recipient): the answer is journaled after its ZAM is queued.
        """
        earlier = [o for o in current.values() if o.message_key != job.message_key
                   and o.status == OutcomeStatus.ACCEPTED]
        if not earlier:
            return
        answered = {e.destination for e in await self.journal.events(job.message_key) if e.step == EARLIER_STEP}
        by_address = {r.address: r for r in job.recipients}
        for outcome in earlier:
            recipient = by_address.get(outcome.destination)
            if recipient is None or outcome.destination in answered:
                continue
            when = outcome.at.strftime("%Y-%m-%d %H:%M:%S UTC")
            if job.flags.ack_reception:
                await self.zams.reception_mss(job.source, job.message_key, document_id=job.header.document_id,
                                              address=recipient.address, recipient_id=recipient.identifier,
                                              delivered=True, event_time=outcome.at)
            await self.journal.add_event(JournalEvent(
                message_key=job.message_key, at=now(), step=EARLIER_STEP, state=str(outcome.status),
                document_id=job.header.document_id, destination=recipient.address,
                detail=f"delivered earlier ({when}, message {outcome.message_key}): the same content is not "
                       "mailed again"))

    async def _note_takeovers(self, job: DocumentJob, claimed: Sequence[Recipient],
                              current: dict[str, Outcome]) -> None:
        """A claim taken over from a worker that stopped mid-send is said so: the relay may hold a first copy."""
        for recipient in claimed:
            before = current.get(recipient.address)
            if before is None or before.status != OutcomeStatus.SENDING:
                continue
            await self.journal.add_event(JournalEvent(
                message_key=job.message_key, at=now(), step="claim", state="taken_over",
                document_id=job.header.document_id, destination=recipient.address,
                detail=f"held by a worker that stopped renewing it at {before.at:%Y-%m-%d %H:%M:%S} UTC (message "
                       f"{before.message_key}); sent again with the same Message-ID, so a first copy the relay "
                       "may have taken is recognisable as a duplicate"))

    async def parked(self, envelope: Envelope, reason: str) -> None:
        """The job was parked (a permanent error, or retries spent): fail what is still pending, tell the HIS."""
        job = DocumentJob.from_json(envelope.body)      # its header and recipients: a CDA in the journal stays there
        done = {o.destination: o.status for o in await self.journal.outcomes(delivery_key(job)) if final_for(o, job)}
        for recipient in self._addressable(job):
            if done.get(recipient.address) not in _FINAL:
                await self._final(job, recipient, OutcomeStatus.FAILED, f"not sent: {reason}", MSS_UNREACHABLE)
        await self._settle_message_state(job)

    async def _refuse_unaddressable(self, job: DocumentJob, done: dict) -> None:
        """A PRT recipient the flags do not allow is never mailed, and the journal says why."""
        allowed = {r.address for r in self._addressable(job)}
        for recipient in job.recipients:
            if recipient.address in allowed or recipient.address in done:
                continue
            flag = "DESTMSSANTEPAT" if recipient.kind == RecipientKind.PATIENT else "DESTMSSANTEPS"
            await self.journal.record_outcome(Outcome(
                document_id=delivery_key(job), destination=recipient.address, status=OutcomeStatus.REFUSED,
                detail=f"not mailed: {flag}=N", at=now(), message_key=job.message_key))

    async def _refuse_untrusted(self, job: DocumentJob, done: dict) -> None:
        """A recipient refused when its message was read, outside the MSSanté trusted space (whitelist), or a
        patient mailbox without a qualified INS, is never mailed; the HIS hears why.

        Checked here, at sending time, because the whitelist is refreshed while jobs wait, and because
        PFI recipients are named by the HIS (render mode already chose by the same patient rule).
        """
        for recipient in self._addressable(job):
            if done.get(recipient.address) in _FINAL:
                continue
            if recipient.refusal is not None:          # refused when its message was read (router.pfi)
                await self._final(job, recipient, OutcomeStatus.REFUSED, f"not mailed: {recipient.refusal.reason}",
                                  refusal_detail(recipient.refusal, RECIPIENT_INVALID))
                done[recipient.address] = OutcomeStatus.REFUSED
                continue
            if recipient.kind == RecipientKind.PATIENT and self.patient_policy is not None:
                refusal = patient_mailbox_refusal(job.header.ins_oid, job.patient_identity_status,
                                                  self.patient_policy)
                if refusal:
                    await self._final(job, recipient, OutcomeStatus.REFUSED, f"not mailed: {refusal}",
                                      PATIENT_NOT_QUALIFIED)
                    done[recipient.address] = OutcomeStatus.REFUSED
                    continue
            if self.address_check is None:
                continue
            verdict = self.address_check.check(recipient.address)
            if not verdict.allowed:
                await self._final(job, recipient, OutcomeStatus.REFUSED, f"not mailed: {verdict.reason}",
                                  NOT_WHITELISTED)
                done[recipient.address] = OutcomeStatus.REFUSED

    def _addressable(self, job: DocumentJob) -> list[Recipient]:
        """Recipients the MetaDMPMSS flags allow to be mailed."""
        allowed = []
        for recipient in job.recipients:
            if recipient.kind == RecipientKind.PATIENT and not job.flags.dest_mss_patient:
                continue
            if recipient.kind == RecipientKind.PROFESSIONAL and not job.flags.dest_mss_ps:
                continue
            allowed.append(recipient)
        return allowed

    async def _send(self, job: DocumentJob, xdm: bytes, audience: RecipientKind, group: Sequence[Recipient],
                    *, last_attempt: bool) -> None:
        message, message_id = self.packager.mail(job, xdm, recipients=group, audience=audience.value)
        addresses = [r.address for r in group]
        envelope_id = envelope_id_for(message_id)
        # Kept before it is sent: a delivery notice may come back before the relay's answer is written.
        await self.journal.record_mail(SentMail(
            envelope_id=envelope_id, message_id=message_id, message_key=job.message_key,
            document_id=job.header.document_id, delivery_key=delivery_key(job), source=job.source,
            ack_reception=job.flags.ack_reception, ack_lecture=job.flags.ack_lecture, sent_at=now(),
            recipients=tuple(MailRecipient(r.address, r.identifier) for r in group)))
        try:
            results = await self.mailer.send(message, sender=self.sender, recipients=addresses,
                                             envelope_id=envelope_id)
        except PeerUnavailable as exc:
            results = [RecipientResult(a, RecipientStatus.TEMPORARY, _code(exc, 421), str(exc)) for a in addresses]
        except RejectedByPeer as exc:
            results = [RecipientResult(a, RecipientStatus.REJECTED, _code(exc, 554), str(exc)) for a in addresses]
        by_address = {r.address: r for r in group}
        for result in results:
            if result.status == RecipientStatus.ACCEPTED:
                # After the relay's 250 every write is patient (see _final): giving up here would send the job
                # back to the bus and its next copy would mail again (found by the fault suite once this
                # write came in with the delivery notices).
                await self._patiently(lambda: self.journal.mark_mail(
                    envelope_id, result.address, MailStep.RELAYED, at=now(),
                    detail=f"{result.code} {result.text}".strip()), job, "mail")
            await self._record(job, by_address[result.address], result, message_id, last_attempt=last_attempt)

    async def _record(self, job: DocumentJob, recipient: Recipient, result: RecipientResult, message_id: str,
                      *, last_attempt: bool) -> None:
        detail = f"{result.code} {result.text}".strip()
        if result.status == RecipientStatus.ACCEPTED:
            await self._final(job, recipient, OutcomeStatus.ACCEPTED,
                              f"accepted by the relay as {message_id}: {detail}", None)
        elif result.status == RecipientStatus.REJECTED:
            await self._final(job, recipient, OutcomeStatus.FAILED, detail, MSS_REJECTED)
        elif last_attempt:
            await self._final(job, recipient, OutcomeStatus.FAILED, f"retries spent; last answer: {detail}",
                              MSS_UNREACHABLE)
        else:
            # Patient too: a recipient of the same mail may have been accepted and not yet recorded.
            await self._patiently(lambda: self._outcome(job, recipient, OutcomeStatus.RETRYING, detail), job,
                                  "outcome")

    async def _final(self, job: DocumentJob, recipient: Recipient, status: OutcomeStatus, detail: str,
                     error: tuple[str, str] | None) -> None:
        """Queue the ZAM first, then write the final outcome (a crash in between repeats the ZAM).

        Both are written patiently (:meth:`_patiently`): once the relay answered, giving up on a journal
        or bus that is away for a moment would send the job back to the bus, and its next copy would
        mail the recipient again.
        """
        if status == OutcomeStatus.ACCEPTED and job.flags.ack_reception:
            await self._patiently(lambda: self.zams.reception_mss(
                job.source, job.message_key, document_id=job.header.document_id, address=recipient.address,
                recipient_id=recipient.identifier, delivered=True), job, "zam")
        elif status == OutcomeStatus.FAILED or (status == OutcomeStatus.REFUSED and error is not None):
            await self._patiently(lambda: self.zams.reception_mss(
                job.source, job.message_key, document_id=job.header.document_id, address=recipient.address,
                recipient_id=recipient.identifier, delivered=False, reason=detail,
                detail=error or MSS_REJECTED), job, "zam")
        await self._patiently(lambda: self._outcome(job, recipient, status, detail), job, "outcome")

    async def _patiently(self, write: Callable[[], Awaitable[None]], job: DocumentJob, what: str) -> None:
        """Retry ``write`` while it fails with ``TransientError``, for up to twice the claim lease.

        The claims are renewed meanwhile (the caller is inside :func:`renewing`), so while the journal is
        back within the lease no other copy takes them over. Found by the fault suite: a PostgreSQL
        restart, or a RabbitMQ node killed, between the relay's 250 and these writes mailed the
        recipient twice.
        """
        deadline = time.monotonic() + 2 * self.stale_claim.total_seconds()
        delay = 0.2
        while True:
            try:
                await write()
                return
            except TransientError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("deliver.write_retry", document_id=job.header.document_id, message_key=job.message_key,
                            what=what, retry_in=delay, error=str(exc))
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)

    async def _outcome(self, job: DocumentJob, recipient: Recipient, status: OutcomeStatus, detail: str) -> None:
        await self.journal.record_outcome(Outcome(document_id=delivery_key(job), destination=recipient.address,
                                                  status=status, detail=detail, at=now(),
                                                  message_key=job.message_key))
        log.info("deliver.outcome", document_id=job.header.document_id, message_key=job.message_key,
                 status=status)

    async def _settle_message_state(self, job: DocumentJob) -> None:
        outcomes = await self.journal.outcomes(delivery_key(job))
        addressable = {r.address for r in self._addressable(job)}
        statuses = [o.status for o in outcomes if o.destination in addressable]
        if len(statuses) < len(addressable) or any(s not in _FINAL for s in statuses):
            return
        accepted = statuses.count(OutcomeStatus.ACCEPTED)
        if accepted == len(statuses):
            state = MessageState.DELIVERED
        elif accepted:
            state = MessageState.PARTIAL
        else:
            state = MessageState.FAILED
        await self.journal.set_state(job.message_key, state, step="delivered",
                                     detail=f"{accepted}/{len(statuses)} recipient(s) accepted")


#: The journal step of an answer given to a re-send for a recipient an earlier message settled.
EARLIER_STEP = "earlier_outcome"


def final_for(outcome: Outcome, job: DocumentJob) -> bool:
    """Whether ``outcome`` settles its recipient for this job.

    Acceptance of this exact content is final for every message (no second mail); a failure or a
    refusal is final for the message it was recorded under only, so a re-send tries again.
    """
    if outcome.status == OutcomeStatus.ACCEPTED:
        return True
    return outcome.status in _FINAL and outcome.message_key == job.message_key


def envelope_id_for(message_id: str) -> str:
    """The ENVID asked of the relay for a mail: derived from its Message-ID, so a mail sent again keeps it.

    32 hex digits: within RFC 3461's 100 characters and xtext without escaping.
    """
    return hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]


def delivery_key(job: DocumentJob) -> str:
    """The key outcomes and claims are kept under: the document id, suffixed for a deletion.

    A deletion carries the id of the document it withdraws, which was mailed to
    the same recipients before; without its own key, "already accepted" would
    stop the deletion from ever going out.
    """
    return f"{job.header.document_id}#delete" if job.action is Action.DELETE else job.header.document_id


def _code(exc: Exception, default: int) -> int:
    code = getattr(exc, "code", None)
    try:
        return int(code) if code is not None else default
    except (TypeError, ValueError):
        return default
