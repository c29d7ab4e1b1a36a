"""Stage ``deposit.dmp``: a DocumentJob goes into the patient's DMP, once, and the HIS hears how it went.

Order of work for each job:

1. already final for the DMP (a redelivered job)? nothing to do;
2. the preconditions of :mod:`router.dmp_rules` (qualified INS, no objection,
   a DMP to feed) — a failure is recorded as *refused* with its reason and a
   ZAM^Z01 N, and no call is made. The patient's DMP consent (ZFA) is the
   job's own when its message carried one, else the one the ADT feed last gave
   for the patient, looked up now (per MSH-4 of the document's message, else
   its channel, and the IPP); the one used is a journal event (step ``dmp``);
3. *claim* the (document, ``dmp``) pair in the journal, so two copies of a job
   never deposit twice (renewed during the call, ``claims.py``);
4. deposit (publish, or replace with an RPLC to the parent), withdraw (delete), or, for a
   publish with MODIF_CONF_CODE=Y, change the masking of the document already deposited
   (:meth:`~router.ports.SharedRecord.update_confidentiality`, no new document);
5. ZAM^Z01 Y or N queued first, then the final outcome (a crash in between
   repeats the ZAM, never loses it).

A transient failure (timeout, 5xx, busy registry) is retried through the bus's
delayed queues; when the retries are spent the outcome is *failed*. A refusal
by the DMP is final at once, with the DMP's reason — except a duplicate
uniqueId on a retry, which means an earlier attempt was stored but its answer
lost: that is the success it looks like.

Outcomes and claims are kept under :func:`deposit_key`: the document id as the mail stage
keys it, plus a suffix of its own for a masking change.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from router.dmp_rules import confidentiality_codes, deposit_refusal, describe
from router.errors import PeerUnavailable, PermanentError
from router.job_transport import job_of
from router.model import Action, DmpConsent, DocumentJob
from router.ports import (DepositReceipt, Envelope, Journal, JournalEvent, MessageState, Outcome, OutcomeStatus,
                          SharedRecord)
from router.settle import RetryPolicy
from router.stages.claims import held_until_released, renewing
from router.stages.clock import now
from router.stages.deliver import EARLIER_STEP, delivery_key, final_for
from router.stages.zam import DMP_NOT_ALLOWED, DMP_REJECTED, DMP_UNREACHABLE, ZamQueue

log = structlog.get_logger(__name__)

DMP = "dmp"
#: XDS error for a uniqueId the registry already holds (ours are derived from the document id).
DUPLICATE = "XDSDuplicateUniqueIdInRegistry"
_FINAL = {OutcomeStatus.ACCEPTED, OutcomeStatus.FAILED, OutcomeStatus.REFUSED}
_STATES = {OutcomeStatus.ACCEPTED: MessageState.DELIVERED, OutcomeStatus.FAILED: MessageState.FAILED,
           OutcomeStatus.REFUSED: MessageState.FAILED}


class DepositStage:
    def __init__(self, journal: Journal, record: SharedRecord, zams: ZamQueue, *, policy: RetryPolicy,
                 statuses: tuple[str, ...] = ("QUAL", "VALI"), ins_kinds: tuple[str, ...] = ("production", "test"),
                 stale_claim: timedelta = timedelta(minutes=5)):
        self.journal = journal
        self.record = record
        self.zams = zams
        self.policy = policy
        self.statuses = statuses
        self.ins_kinds = ins_kinds
        self.stale_claim = stale_claim

    async def __call__(self, envelope: Envelope) -> None:
        job = await job_of(envelope, self.journal)     # a large CDA is read back from the journal
        key = deposit_key(job)
        earlier = {o.destination: o for o in await self.journal.outcomes(key)}.get(DMP)
        if earlier is not None and final_for(earlier, job):
            await self._answer_earlier(job, earlier)
            return
        refusal = deposit_refusal(job, statuses=self.statuses, ins_kinds=self.ins_kinds,
                                  consent=await self._consent(job))
        if refusal:
            await self._final(job, OutcomeStatus.REFUSED, f"not deposited: {refusal}", DMP_NOT_ALLOWED)
            return
        if not await self._claim(job, key):
            # Another worker holds the claim: the job is kept (retried later) until that claim ends or is
            # taken over, never acked with the deposit neither final nor retrying.
            raise PeerUnavailable(f"the DMP deposit of document {job.header.document_id} is claimed by "
                                  "another worker")
        last_attempt = self.policy.next_delay(envelope.attempt) is None
        try:
            async with renewing(self.journal, key, [DMP], message_key=job.message_key, lease=self.stale_claim):
                receipt = await self._call(job)
        except PeerUnavailable as exc:
            if last_attempt:
                await self._final(job, OutcomeStatus.FAILED, f"retries spent; last: {exc}", DMP_UNREACHABLE)
                return
            await self._outcome(job, OutcomeStatus.RETRYING, str(exc))
            raise
        except PermanentError as exc:
            if (envelope.attempt > 0 and job.action is not Action.DELETE and not is_masking_change(job)
                    and getattr(exc, "code", None) == DUPLICATE):
                # An earlier attempt reached the DMP but its answer was lost (timeout): the entry is there.
                await self._final(job, OutcomeStatus.ACCEPTED, f"already in the DMP from an earlier attempt "
                                                               f"whose answer was lost ({exc})", None)
                return
            await self._final(job, OutcomeStatus.FAILED, str(exc), DMP_REJECTED)
            return
        if receipt.entry is not None:
            await self.journal.record_dmp_entry(receipt.entry)
        await self._final(job, OutcomeStatus.ACCEPTED, receipt.detail, None)

    async def _claim(self, job: DocumentJob, key: str) -> bool:
        """Claim the deposit; held by another worker (most often one that died with this job), wait in place for
        that claim to settle or lapse, then try once more (router/stages/claims.py)."""
        if await self.journal.claim(key, DMP, message_key=job.message_key, stale_after=self.stale_claim):
            return True
        current = await held_until_released(self.journal, key, [DMP], lease=self.stale_claim)
        if DMP in current and final_for(current[DMP], job):
            return False
        return await self.journal.claim(key, DMP, message_key=job.message_key, stale_after=self.stale_claim)

    async def _answer_earlier(self, job: DocumentJob, earlier: Outcome) -> None:
        """A re-send of a document an earlier message deposited: its own ZAM^Z01 Y, once, and no second call."""
        if earlier.message_key == job.message_key or earlier.status != OutcomeStatus.ACCEPTED:
            return
        events = await self.journal.events(job.message_key)
        if any(e.step == EARLIER_STEP and e.destination == DMP for e in events):
            return
        await self.zams.reception_dmp(job.source, job.message_key, document_id=job.header.document_id,
                                      delivered=True, event_time=earlier.at)
        await self.journal.add_event(JournalEvent(
            message_key=job.message_key, at=now(), step=EARLIER_STEP, state=str(earlier.status),
            document_id=job.header.document_id, destination=DMP,
            detail=f"deposited earlier ({earlier.at:%Y-%m-%d %H:%M:%S} UTC, message {earlier.message_key}): "
                   "not deposited again"))
        if not _mailed(job):
            await self.journal.set_state(job.message_key, MessageState.DELIVERED, step="deposited",
                                         detail="DMP: deposited earlier")

    async def _consent(self, job: DocumentJob) -> DmpConsent | None:
        """The patient's DMP consent in force for this job (see step 2), journaled when there is one."""
        consent, origin = job.dmp_consent, "the document's message (ZFA)"
        if consent is None and job.patient_ipp:
            facility = job.source.sending_facility
            if not facility:        # the ADT stage keys an empty MSH-4 by the channel, as stays are
                record = await self.journal.message(job.message_key)
                facility = record.channel if record is not None else ""
            known = await self.journal.dmp_consent(facility, job.patient_ipp)
            if known is not None:
                consent, origin = known.consent, f"the ADT feed (message {known.message_key})"
        if consent is not None:
            await self.journal.add_event(JournalEvent(
                message_key=job.message_key, at=now(), step="dmp", state="consent", document_id=job.header.document_id,
                destination=DMP, detail=f"consent in force, from {origin}: {describe(consent)}"))
        return consent

    async def _call(self, job: DocumentJob) -> DepositReceipt:
        """The call the job asks for, naming the entries as the journal last recorded them."""
        if job.action is Action.DELETE:
            return await self.record.withdraw(job, current=await self.journal.dmp_entry(job.header.document_id))
        if is_masking_change(job):
            return await self.record.update_confidentiality(
                job, current=await self.journal.dmp_entry(job.header.document_id))
        parent = job.header.parent_document_id if job.action is Action.REPLACE else ""
        return await self.record.deposit(job, replaces=await self.journal.dmp_entry(parent) if parent else None)

    async def parked(self, envelope: Envelope, reason: str) -> None:
        """The job was parked: a deposit still pending is failed, and the HIS told."""
        job = DocumentJob.from_json(envelope.body)      # its header and recipients: a CDA in the journal stays there
        done = {o.destination: o.status for o in await self.journal.outcomes(deposit_key(job)) if final_for(o, job)}
        if done.get(DMP) not in _FINAL:
            await self._final(job, OutcomeStatus.FAILED, f"not deposited: {reason}", DMP_UNREACHABLE)

    async def _final(self, job: DocumentJob, status: OutcomeStatus, detail: str,
                     error: tuple[str, str] | None) -> None:
        await self.zams.reception_dmp(job.source, job.message_key, document_id=job.header.document_id,
                                      delivered=status == OutcomeStatus.ACCEPTED, reason=detail,
                                      **({"detail": error} if error else {}))
        await self._outcome(job, status, detail)
        if not _mailed(job):
            # The DMP is this message's only destination: its outcome is the message's.
            await self.journal.set_state(job.message_key, _STATES[status], step="deposited",
                                         detail=f"DMP: {status.value}")

    async def _outcome(self, job: DocumentJob, status: OutcomeStatus, detail: str) -> None:
        await self.journal.record_outcome(Outcome(document_id=deposit_key(job), destination=DMP, status=status,
                                                  detail=detail, at=now(), message_key=job.message_key))
        log.info("deposit.outcome", document_id=job.header.document_id, message_key=job.message_key,
                 action=job.action.value, status=status)


def is_masking_change(job: DocumentJob) -> bool:
    """MODIF_CONF_CODE=Y on a publish: re-mask the document the DMP holds rather than deposit it again."""
    return job.flags.modif_conf_code and job.action is Action.PUBLISH


def deposit_key(job: DocumentJob) -> str:
    """The key the DMP outcome and claim of a job are kept under.

    :func:`~router.stages.deliver.delivery_key` (the document id, ``#delete`` for a
    deletion), and for a masking change ``#conf-<codes>@<message key>``: the document was
    accepted under its plain id when deposited, so without a suffix the change would be
    "already done". The codes say what was asked; the message key makes each message asking
    for a change one change, done once (a resent or redelivered message finds it done; a
    later message masking back to earlier codes is a new change, not a duplicate).
    """
    key = delivery_key(job)
    if is_masking_change(job):
        codes = "+".join(confidentiality_codes(job))
        key = f"{key}#conf-{codes}@{job.message_key}"
    return key


def _mailed(job: DocumentJob) -> bool:
    return bool(job.recipients) and (job.flags.dest_mss_ps or job.flags.dest_mss_patient)
