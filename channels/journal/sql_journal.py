"""The Journal port's methods, once for both SQL adapters: each one is an operation handed to the adapter.

:class:`SqlJournal` turns every call into an operation (``operations.py``, ``stays.py``,
``documents.py``, ``consents.py``) stamped with the journal's clock and sealed with its codec, and
hands it to the adapter: writes to ``_write`` (group commit, durable when it returns), reads to
``_query``. :class:`~channels.journal.sqlite.SqliteJournal` and
:class:`~channels.journal.postgresql.PostgresJournal` add how they connect and run statements.
"""

from __future__ import annotations

from collections.abc import Sequence, Callable
from datetime import datetime, timedelta
from typing import Any, Self, TypeVar

from channels.cipher import Codec
from channels.journal import activity as activity_sql
from channels.journal import consents as consent_sql
from channels.journal.digests import IdentifierDigests
from channels.journal import documents as document_sql
from channels.journal import job_contents as job_sql
from channels.journal import mails as mail_sql
from channels.journal import operations as ops
from channels.journal import retention as retention_sql
from channels.journal import reindex as reindex_sql
from channels.journal import stays as stay_sql
from channels.journal.sql import LARGE_BLOB_BYTES, Operation, ts
from router.errors import TransientError
from router.ports import (Activity, Clock, ContentBinding, DmpEntry, JournalEvent, MailStep, MessageRecord, MessageState,
                          MetricsSample, NoticeRecord, NoticeVerdict, Outcome, PatientConsent, ReceivedMessage,
                          RenderedDocument, SentMail, Stay)

T = TypeVar("T")


class SqlJournal:
    """The Journal port on an SQL database; subclasses run the operations (``_write``, ``_query``)."""

    _codec: Codec
    _clock: Clock
    _digests: IdentifierDigests     # keyed digests of searchable identifiers (``digests.py``)
    _last_writer: Any = None        # the adapter's group commit (its counters outlive close())

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def stats(self) -> dict[str, int]:
        """Write counters: operations committed and the transactions they took."""
        writer = self._last_writer
        return {"operations": writer.operations if writer else 0, "commits": writer.commits if writer else 0}

    async def _write(self, operation: Callable[[], Operation[T]], *, alone: bool = False,
                     large: bool = False) -> T:
        """Run a new ``operation()`` in a write transaction; return its result once committed.

        The adapter may make it again (a batch that failed is run again one operation at a time).
        ``alone``: the operation reads rows it then writes, so it must not run side by side with others.
        ``large``: it writes a value over :data:`LARGE_BLOB_BYTES` (a received message, a CDA).
        """
        raise NotImplementedError

    async def _query(self, operation: Operation[T]) -> T:
        """Run a read-only operation."""
        raise NotImplementedError

    # ----------------------------------------------------------------- writes

    async def record_received(self, message: ReceivedMessage) -> tuple[str, bool]:
        """Store the raw message; on a resend return the first key, ``False``, and log a "duplicate" event."""
        digests = self._digests.of(message.identifiers)
        return await self._write(lambda: ops.record_received(self._codec, message, ts(self._clock.now()), digests),
                                 large=len(message.raw) > LARGE_BLOB_BYTES)

    async def set_state(self, key: str, state: MessageState, *, step: str, detail: str = "",
                        ack_code: str | None = None,
                        only_from: frozenset[MessageState] | None = None) -> bool:
        """Move the message to ``state`` (if its state is in ``only_from``, when given); record the step.

        Raise ``KeyError`` if no message has this key.
        """
        at = ts(self._clock.now())
        return await self._write(lambda: ops.set_state(self._codec, key, state, step=step, detail=detail,
                                                       ack_code=ack_code, only_from=only_from, at=at))

    async def add_event(self, event: JournalEvent) -> None:
        await self._write(lambda: ops.add_event(self._codec, event))

    async def add_events(self, events: Sequence[JournalEvent]) -> None:
        if events:
            events = tuple(events)
            await self._write(lambda: ops.add_events(self._codec, events))

    async def record_outcome(self, outcome: Outcome) -> None:
        """Keep the outcome with the latest ``at`` per (document, destination); append every one as an event."""
        digests = self._digests.of((("document", outcome.document_id), ("recipient", outcome.destination)))
        await self._write(lambda: ops.record_outcome(self._codec, outcome, digests))

    async def claim(self, document_id: str, destination: str, *, message_key: str,
                    stale_after: timedelta) -> bool:
        now = self._clock.now()
        at, stale = ts(now), ts(now - stale_after)
        return await self._write(lambda: ops.claim(self._codec, document_id, destination, message_key=message_key,
                                                   at=at, stale=stale))

    async def renew_claims(self, document_id: str, destinations: Sequence[str], *, message_key: str) -> int:
        """Keep this message's SENDING claims alive while its worker sends (see ``Journal.renew_claims``)."""
        if not destinations:
            return 0
        at = ts(self._clock.now())
        return await self._write(lambda: ops.renew_claims(document_id, list(destinations), message_key=message_key,
                                                          at=at))

    async def reopen_outcome(self, document_id: str, destination: str, *, message_key: str, detail: str) -> bool:
        """An operator's retry: a FAILED or REFUSED outcome becomes RETRYING (see ``Journal.reopen_outcome``)."""
        at = ts(self._clock.now())
        return await self._write(lambda: ops.reopen_outcome(self._codec, document_id, destination,
                                                            message_key=message_key, detail=detail, at=at))

    async def bind_content(self, document_id: str, digest: str, message_key: str) -> ContentBinding:
        at = ts(self._clock.now())
        digests = self._digests.of([("document", document_id)])
        return await self._write(lambda: ops.bind_content(document_id, digest, message_key, at, digests))

    async def record_stay(self, stay: Stay) -> None:
        """Insert or replace the stay keyed by (facility, encounter); see ``stays.py``."""
        now = ts(self._clock.now())
        await self._write(lambda: stay_sql.upsert(self._codec, stay, now))

    async def mark_stay(self, facility: str, encounter: str, *, letter_sent_at: datetime | None = None,
                        alert_raised_at: datetime | None = None, clear_alert: bool = False) -> Stay | None:
        now = ts(self._clock.now())
        return await self._write(lambda: stay_sql.mark(
            self._codec, facility, encounter, now, letter_sent_at=letter_sent_at,
            alert_raised_at=alert_raised_at, clear_alert=clear_alert), alone=True)

    async def record_dmp_consent(self, consent: PatientConsent) -> bool:
        """Keep the patient's consent unless a later message gave one; stamp their stays (``consents.py``)."""
        now = ts(self._clock.now())
        return await self._write(lambda: consent_sql.upsert(self._codec, consent, now), alone=True)

    async def record_document(self, document: RenderedDocument) -> None:
        """Record a rendered document under (facility, source id); see ``documents.py``."""
        now = ts(self._clock.now())
        digests = self._digests.of([("document", document.document_id)])

        def operation() -> Operation[None]:
            yield from document_sql.upsert(self._codec, document, now)
            yield from ops.index(document.message_key, digests)

        await self._write(operation, large=len(document.cda) > LARGE_BLOB_BYTES)

    async def record_job_content(self, job_id: str, message_key: str, cda: bytes) -> None:
        """Keep a large job's CDA once under its job id (``job_contents.py``)."""
        now = ts(self._clock.now())
        await self._write(lambda: job_sql.store(self._codec, job_id, message_key, cda, now),
                          large=len(cda) > LARGE_BLOB_BYTES)

    async def record_dmp_entry(self, entry: DmpEntry) -> None:
        now = ts(self._clock.now())
        await self._write(lambda: ops.record_dmp_entry(entry, now))

    async def record_mail(self, mail: SentMail) -> None:
        """Keep a mail before it is sent (``mails.py``); a second call for the same ENVID changes nothing."""
        now = ts(self._clock.now())
        await self._write(lambda: mail_sql.record_mail(self._codec, mail, now))

    async def mark_mail(self, envelope_id: str, address: str, step: MailStep, *, at: datetime,
                        detail: str = "") -> bool:
        return await self._write(lambda: mail_sql.mark_mail(self._codec, envelope_id, address, step, at=ts(at),
                                                            detail=detail))

    async def unmark_mail(self, envelope_id: str, address: str, step: MailStep) -> None:
        await self._write(lambda: mail_sql.unmark_mail(envelope_id, address, step))

    async def record_notice(self, notice: NoticeRecord) -> bool:
        return await self._write(lambda: mail_sql.record_notice(self._codec, notice))

    # -------------------------------------------------------------- retention

    async def expire_content(self, before: datetime, limit: int) -> int:
        """Empty the content of up to ``limit`` final messages received before ``before`` (``retention.py``)."""
        return await self._write(lambda: retention_sql.expire_content(ts(before), limit), alone=True)

    async def expire_metadata(self, before: datetime, limit: int) -> int:
        """Remove up to ``limit`` final messages received before ``before``, with their timeline."""
        return await self._write(lambda: retention_sql.expire_metadata(ts(before), limit), alone=True)

    async def expirable(self, content_before: datetime | None, metadata_before: datetime | None) -> tuple[int, int]:
        """How many messages retention would empty and remove now."""
        return await self._query(retention_sql.expirable(None if content_before is None else ts(content_before),
                                                         None if metadata_before is None else ts(metadata_before)))

    async def reindex(self, *, batch: int = 1000, progress=None) -> dict[str, int]:
        """File the messages of before schema v7 under their identifier digests (``reindex.py``)."""
        return await reindex_sql.reindex(self._query, self._write, self._codec, self._digests, batch=batch,
                                         progress=progress)

    # ------------------------------------------------------------------ reads

    async def sent_mail(self, *, envelope_id: str = "", message_id: str = "") -> SentMail | None:
        return await self._query(mail_sql.sent_mail(self._codec, envelope_id=envelope_id, message_id=message_id))

    async def sent_mails(self, message_key: str) -> list[SentMail]:
        return await self._query(mail_sql.sent_mails(self._codec, message_key))

    async def notices(self, *, limit: int = 100,
                      verdicts: frozenset[NoticeVerdict] | None = None) -> list[NoticeRecord]:
        return await self._query(mail_sql.notices(self._codec, limit=limit, verdicts=verdicts))

    async def message(self, key: str) -> MessageRecord | None:
        return await self._query(ops.message(self._codec, key))

    async def events(self, key: str) -> list[JournalEvent]:
        """The message's timeline, oldest first (ties in insertion order)."""
        return await self._query(ops.events(self._codec, key))

    async def document_events(self, document_id: str) -> list[JournalEvent]:
        """Every event about one document (its outcome history included), oldest first."""
        return await self._query(ops.document_events(self._codec, document_id))

    async def content_binding(self, document_id: str) -> ContentBinding | None:
        return await self._query(ops.content_binding(document_id))

    async def outcomes(self, document_id: str) -> list[Outcome]:
        """The current outcome per destination of one document, by destination."""
        return await self._query(ops.outcomes(self._codec, document_id))

    async def stale_claims(self, older_than: datetime, limit: int = 100) -> list[Outcome]:
        return await self._query(ops.stale_claims(self._codec, older_than, limit))

    async def search(self, *, state: MessageState | None = None, control_id: str | None = None, limit: int = 100,
                     since: datetime | None = None, until: datetime | None = None, message_type: str | None = None,
                     sending_application: str | None = None,
                     before: tuple[datetime, str] | None = None, ipp: str | None = None, ins: str | None = None,
                     document_id: str | None = None, recipient: str | None = None) -> list[MessageRecord]:
        """Messages matching every filter given, newest first (``operations.search``: keyset paging).

        ``ipp``, ``ins``, ``document_id``, ``recipient`` are looked up by their keyed digests.
        """
        asked = (("ipp", ipp), ("ins", ins), ("document", document_id), ("recipient", recipient))
        digests = [self._digests.digest(kind, value) for kind, value in asked if value is not None]
        return await self._query(ops.search(self._codec, state=state, control_id=control_id, limit=limit,
                                            since=since, until=until, message_type=message_type,
                                            sending_application=sending_application, before=before,
                                            digests=digests))

    async def activity(self, now: datetime | None = None) -> Activity:
        """Recent traffic for the dashboard and ``/metrics`` (``activity.py``: index-only reads)."""
        return await self._query(activity_sql.activity(now or self._clock.now()))

    async def stay(self, facility: str, encounter: str) -> Stay | None:
        return await self._query(stay_sql.stay(self._codec, facility, encounter))

    async def metrics_sample(self, after_event: int | None, now: datetime | None = None,
                             limit: int = 10_000) -> MetricsSample:
        """The events since the last scrape, parked messages, overdue letters (``activity.py``)."""
        return await self._query(activity_sql.metrics_sample(after_event, now or self._clock.now(), limit))

    async def discharges(self, since: datetime, until: datetime, limit: int = 1000) -> list[Stay]:
        """Stays discharged in [since, until), in discharge order (the compliance page)."""
        return await self._query(stay_sql.discharged(self._codec, since, until, limit))

    async def stays_due(self, now: datetime, limit: int = 100) -> list[Stay]:
        return await self._query(stay_sql.due(self._codec, now, limit))

    async def dmp_consent(self, facility: str, ipp: str) -> PatientConsent | None:
        return await self._query(consent_sql.consent_of(self._codec, facility, ipp))

    async def rendered_document(self, facility: str, source_id: str) -> RenderedDocument | None:
        return await self._query(document_sql.rendered(self._codec, facility, source_id))

    async def dmp_entry(self, document_id: str) -> DmpEntry | None:
        return await self._query(ops.dmp_entry(document_id))

    async def job_content(self, job_id: str) -> bytes | None:
        return await self._query(job_sql.content(self._codec, job_id))


def not_open() -> TransientError:
    """The error of a journal used before ``open()`` or after ``close()``."""
    return TransientError("journal unavailable: not open")
