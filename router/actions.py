"""An operator's actions on a parked or failed message: release, retry a recipient, discard, replay.

One service for the console and the CLI, on the Journal and Bus ports, so both
keep the same rules:

- **release**: each parked job of the message goes back to its queue and runs
  again from that stage. A parked delivery (or DMP deposit) job had its
  pending recipients failed ("not sent") when it was parked; those outcomes
  are reopened first, or the job would find them settled and send nothing.
- **retry a recipient**: one recipient whose outcome is failed or refused gets
  a new attempt: its outcome is reopened (RETRYING), and the message runs again
  from its raw HL7 (or its parked delivery job goes back).
- **discard**: the message goes to the final state ``discarded`` with the
  operator's reason; nothing of it runs again.
- **replay**: the message runs again from its raw HL7 through every stage, as a
  new run, its failed and refused recipients reopened.

None of them can mail a recipient twice the same content: the deliver stage
claims each (document, recipient) before sending (``Journal.claim``), and a
recipient that accepted this content is never claimed again; reopening an
ACCEPTED outcome is refused by the journal itself (``Journal.reopen_outcome``).
An action on a message still moving (received, queued, processing,
dispatched) is refused: its own run is not over.

Every action, done or refused, is audited: an event on the message's
timeline (state ``audit``: who, and what was done or why not, sealed like the
journal) and, when given, a row in the audit trail (user, time, message,
done or refused; no free text, which may name a patient).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from router import queues
from router.errors import EngineError, TransientError
from router.hl7.charset import decode_lenient
from router.model import DocumentJob
from router.ports import Bus, Envelope, Journal, JournalEvent, MessageRecord, MessageState, Outcome, OutcomeStatus
from router.stages.deliver import delivery_key
from router.stages.deposit import deposit_key

log = structlog.get_logger(__name__)

#: Where a message's own run is over: an operator may act on it.
SETTLED = frozenset({MessageState.PARKED, MessageState.FAILED, MessageState.PARTIAL, MessageState.DELIVERED})
#: States an operator may discard from (a delivered message has nothing to discard).
DISCARDABLE = frozenset({MessageState.PARKED, MessageState.FAILED, MessageState.PARTIAL})
REOPENABLE = frozenset({OutcomeStatus.FAILED, OutcomeStatus.REFUSED})
MAX_REASON = 500

#: ``audit(user, action, message_key, outcome)``: the audit trail's writer (the console's users store).
AuditWriter = Callable[[str, str, str, str], Awaitable[None]]


class ActionError(EngineError):
    """An action that cannot be done on this message now; the message says why."""


class NoSuchMessageError(ActionError):
    """No message has this key."""


@dataclass(frozen=True)
class ActionResult:
    message_key: str
    action: str
    outcome: str                      # what was done, in words


class MessageActions:
    """Release, retry a recipient, discard and replay, audited, for one journal and bus."""

    def __init__(self, journal: Journal, bus: Bus, *, audit: AuditWriter | None = None,
                 default_charset: str = "utf-8"):
        self.journal = journal
        self.bus = bus
        self.audit_writer = audit
        self.default_charset = default_charset

    # --------------------------------------------------------------- actions

    async def release(self, key: str, user: str) -> ActionResult:
        """Every parked job of the message back to its queue, its failed recipients reopened first."""
        return await self._audited(key, "release", user, lambda record: self._release(record, user))

    async def release_parked(self, queue: str, message_id: str, user: str) -> ActionResult:
        """One parked envelope (as the parked list names it) back to its queue."""
        envelope = await self._parked_envelope(queue, message_id)
        if envelope is None:
            raise NoSuchMessageError(f"no parked message {message_id!r} on queue {queue!r}")
        key = envelope.headers.get("message_key") or message_id
        return await self._audited(key, "release", user,
                                   lambda record: self._release(record, user, only=(queue, envelope)))

    async def retry_recipient(self, key: str, destination: str, user: str) -> ActionResult:
        """A new attempt for one failed or refused recipient; never for one that accepted."""
        return await self._audited(key, "retry_recipient", user,
                                   lambda record: self._retry_recipient(record, destination, user))

    async def discard(self, key: str, reason: str, user: str) -> ActionResult:
        """Close the message for good (state ``discarded``) with the operator's reason."""
        return await self._audited(key, "discard", user, lambda record: self._discard(record, reason, user))

    async def replay(self, key: str, user: str) -> ActionResult:
        """Run the message again from its raw HL7, its failed and refused recipients reopened."""
        return await self._audited(key, "replay", user, lambda record: self._replay(record, user))

    # ----------------------------------------------------------- the work

    async def _release(self, record: MessageRecord, user: str,
                       only: tuple[str, Envelope] | None = None) -> str:
        # A parked job is itself the proof that its stage is done with it; only a discarded message stays closed.
        if record.state == MessageState.DISCARDED:
            raise ActionError(f"message {record.key} was discarded: it is not released")
        found = [only] if only is not None else await self._parked_of(record.key)
        if not found:
            raise ActionError(f"nothing of message {record.key} is parked (state {record.state}); "
                              "retry a recipient or replay it instead")
        released = []
        for queue, envelope in found:
            for outcome_key in _outcome_keys(queue, envelope):
                await self._reopen(record.key, outcome_key, None, user)
            if await self.bus.replay(queue, envelope.message_id):
                released.append(queue)
        if not released:
            raise ActionError(f"message {record.key} was released by someone else meanwhile")
        return f"released from {', '.join(released)}"

    async def _retry_recipient(self, record: MessageRecord, destination: str, user: str) -> str:
        _settled(record, "retried")
        outcome = await self._outcome_of(record.key, destination)
        if outcome is None:
            raise ActionError(f"message {record.key} has no recipient {destination!r}")
        if outcome.status == OutcomeStatus.ACCEPTED:
            raise ActionError(f"{destination} accepted this document on {outcome.at:%Y-%m-%d %H:%M:%S} UTC: "
                              "it is never mailed twice")
        if outcome.status not in REOPENABLE:
            raise ActionError(f"{destination} is {outcome.status} now: only a failed or refused recipient is retried")
        parked = [(q, e) for q, e in await self._parked_of(record.key)
                  if outcome.document_id in _outcome_keys(q, e)]
        if not parked:
            _has_content(record)
        if not await self._reopen(record.key, outcome.document_id, destination, user):
            raise ActionError(f"{destination} changed meanwhile: look at the message again")
        if parked and await self.bus.replay(parked[0][0], parked[0][1].message_id):
            return f"{destination} reopened; its parked delivery job released"
        await self._run_again(record, "retry_recipient", f"to retry {destination}")
        return f"{destination} reopened; the message runs again from its HL7"

    async def _discard(self, record: MessageRecord, reason: str, user: str) -> str:
        reason = " ".join(reason.split())
        if not reason:
            raise ActionError("a discard needs a reason (what was done about this message)")
        if len(reason) > MAX_REASON:
            raise ActionError(f"the reason is at most {MAX_REASON} characters")
        if record.state not in DISCARDABLE:
            raise ActionError(f"message {record.key} is {record.state}: only a parked, failed or partly delivered "
                              "message is discarded")
        if not await self.journal.set_state(record.key, MessageState.DISCARDED, step="discarded",
                                            detail=f"discarded by {user}: {reason}", only_from=DISCARDABLE):
            raise ActionError(f"message {record.key} changed meanwhile: look at it again")
        return f"discarded: {reason}"

    async def _replay(self, record: MessageRecord, user: str) -> str:
        _settled(record, "replayed")
        _has_content(record)
        reopened = 0
        for document_id in await self._documents_of(record.key):
            reopened += await self._reopen(record.key, document_id, None, user)
        await self._run_again(record, "replay", "as a new run")
        return f"runs again from its HL7 ({reopened} recipient(s) reopened)"

    # ------------------------------------------------------------ helpers

    async def _audited(self, key: str, action: str, user: str,
                       work: Callable[[MessageRecord], Awaitable[str]]) -> ActionResult:
        record = await self.journal.message(key)
        if record is None:
            await self._audit_trail(user, action, key, "refused: no such message")
            raise NoSuchMessageError(f"no message {key!r} in the journal")
        try:
            outcome = await work(record)
        except ActionError as exc:
            await self._audit(key, action, user, f"refused: {exc}", "refused")
            raise
        await self._audit(key, action, user, outcome, "done")
        log.info("action.done", action=action, message_key=key, user=user)
        return ActionResult(key, action, outcome)

    async def _audit(self, key: str, action: str, user: str, detail: str, verdict: str) -> None:
        """The whole story on the message's timeline (sealed like the journal); done or refused in the trail.

        The trail (the console's users file, not encrypted) gets no free text: a reason or a
        recipient's address may name a patient.
        """
        await self.journal.add_event(JournalEvent(message_key=key, at=datetime.now(UTC), step=action,
                                                  state="audit", detail=f"by {user}: {detail}"))
        await self._audit_trail(user, action, key, verdict)

    async def _audit_trail(self, user: str, action: str, key: str, outcome: str) -> None:
        if self.audit_writer is not None:
            await self.audit_writer(user, action, key, outcome)

    async def _reopen(self, key: str, document_id: str, destination: str | None, user: str) -> int:
        """Reopen the failed/refused outcomes of ``document_id`` (one destination, or all); how many moved."""
        if not document_id:
            return 0
        count = 0
        for outcome in await self.journal.outcomes(document_id):
            if outcome.status not in REOPENABLE or (destination is not None and outcome.destination != destination):
                continue
            count += await self.journal.reopen_outcome(document_id, outcome.destination, message_key=key,
                                                       detail=f"reopened by {user} for a new attempt")
        return count

    async def _run_again(self, record: MessageRecord, step: str, why: str) -> None:
        """Put the raw HL7 on the inbound queue again, the message back to ``queued`` for the process stage."""
        moved = await self.journal.set_state(record.key, MessageState.QUEUED, step=step,
                                             detail=f"runs again from its HL7 {why}", only_from=SETTLED)
        if not moved:
            raise ActionError(f"message {record.key} changed meanwhile: look at it again")
        _, codec, _ = decode_lenient(record.raw, self.default_charset)
        try:
            await self.bus.publish(queues.INBOUND, record.raw, message_id=record.key,
                                   headers={"channel": record.channel, "codec": codec, "message_key": record.key})
        except TransientError as exc:
            # Queued with nothing on the bus would wait for ever: back to where it was, and say so.
            await self.journal.set_state(record.key, record.state, step=step, detail=f"not run again: {exc}",
                                         only_from=frozenset({MessageState.QUEUED}))
            raise ActionError(f"the bus did not take message {record.key} ({exc}); try again later") from exc

    async def _documents_of(self, key: str) -> list[str]:
        return list(dict.fromkeys(e.document_id for e in await self.journal.events(key) if e.document_id))

    async def _outcome_of(self, key: str, destination: str) -> Outcome | None:
        for document_id in await self._documents_of(key):
            for outcome in await self.journal.outcomes(document_id):
                if outcome.destination == destination:
                    return outcome
        return None

    async def _parked_of(self, key: str) -> list[tuple[str, Envelope]]:
        found = []
        for queue in queues.ALL:
            for envelope in await self.bus.parked(queue, limit=10_000):
                if (envelope.headers.get("message_key") or envelope.message_id) == key:
                    found.append((queue, envelope))
        return found

    async def _parked_envelope(self, queue: str, message_id: str) -> Envelope | None:
        if queue not in queues.ALL:
            return None
        return next((e for e in await self.bus.parked(queue, limit=10_000) if e.message_id == message_id), None)


def _outcome_keys(queue: str, envelope: Envelope) -> list[str]:
    """The outcome keys a parked delivery or deposit job settles (its park failed those still pending)."""
    if queue not in (queues.DELIVER_MSS, queues.DEPOSIT_DMP):
        return []
    try:
        job = DocumentJob.from_json(envelope.body)
    except (ValueError, KeyError, TypeError):
        return [envelope.headers.get("document_id", "")]
    return [delivery_key(job) if queue == queues.DELIVER_MSS else deposit_key(job)]


def _settled(record: MessageRecord, verb: str) -> None:
    if record.state in SETTLED:
        return
    why = {MessageState.DISCARDED: "it was discarded",
           MessageState.REJECTED: "it was refused at the door, and the HIS told so"}.get(record.state,
                                                                                       "its own run is not over")
    raise ActionError(f"message {record.key} is {record.state}: only a parked, failed, partly delivered or "
                      f"delivered message is {verb} ({why})")


def _has_content(record: MessageRecord) -> None:
    if not record.raw:
        raise ActionError(f"message {record.key} has no content left (retention emptied it): it cannot run again")
