"""Retention for both SQL dialects: message content after N days, the rest of a message after M days.

Only a message in a final state (:data:`FINAL`: delivered, partial, failed,
rejected, discarded) whose recipients are all settled (no outcome of it still
SENDING or RETRYING) is touched; a parked message waits for its operator. Ages
count from ``received_at`` (the index ``messages_by_state`` serves the scan).
Each call handles at most ``limit`` messages, oldest first, in one transaction,
so a pass is many short batches that never hold the writer long.

- content: the received bytes (``message_contents``) go, the CDA kept for later
  versions (``documents.cda``) becomes empty, a large job's CDA (``job_contents``) goes; the timeline and
  outcomes stay.
- metadata: the message row, its timeline (``events``), its outcomes, its
  content bindings, its identifiers' keyed digests, its sent mails with their
  recipients' steps, and the notices matched to it go. Afterwards nothing remembers that a recipient accepted
  that document: a re-send of it would be mailed again (the README says so).
  Document version rows (identifiers only) stay, so that a later replacement
  still continues its set.
"""

from __future__ import annotations

from channels.journal.sql import Operation
from router.ports import MessageState, OutcomeStatus

FINAL = (MessageState.DELIVERED, MessageState.PARTIAL, MessageState.FAILED, MessageState.REJECTED,
         MessageState.DISCARDED)
_STATES = ", ".join("?" * len(FINAL))
_EXPIRED = (f"m.state IN ({_STATES}) AND m.received_at < ? AND NOT EXISTS "
            "(SELECT 1 FROM outcomes o WHERE o.message_key = m.key AND o.status IN (?, ?))")
_OPEN = (str(OutcomeStatus.SENDING), str(OutcomeStatus.RETRYING))
_HAS_CONTENT = "EXISTS (SELECT 1 FROM message_contents c WHERE c.key = m.key)"


def _params(before: str) -> tuple:
    return (*[str(s) for s in FINAL], before, *_OPEN)


def expire_content(before: str, limit: int) -> Operation[int]:
    """Empty the content of up to ``limit`` final messages received before ``before``; how many."""
    found = yield (f"SELECT m.key FROM messages m WHERE {_EXPIRED} AND {_HAS_CONTENT} "
                   "ORDER BY m.received_at LIMIT ?", (*_params(before), limit))
    keys = [row[0] for row in found.rows]
    if keys:
        marks = ", ".join("?" * len(keys))
        yield f"DELETE FROM message_contents WHERE key IN ({marks})", tuple(keys)
        yield f"UPDATE documents SET cda = ? WHERE message_key IN ({marks})", (b"", *keys)
        yield f"DELETE FROM job_contents WHERE message_key IN ({marks})", tuple(keys)
    return len(keys)


def expire_metadata(before: str, limit: int) -> Operation[int]:
    """Remove up to ``limit`` final messages received before ``before``, with their timeline; how many."""
    found = yield (f"SELECT m.key FROM messages m WHERE {_EXPIRED} ORDER BY m.received_at LIMIT ?",
                   (*_params(before), limit))
    keys = [row[0] for row in found.rows]
    if keys:
        marks = ", ".join("?" * len(keys))
        yield f"UPDATE documents SET cda = ? WHERE message_key IN ({marks})", (b"", *keys)
        yield (f"DELETE FROM mail_recipients WHERE envelope_id IN "
               f"(SELECT envelope_id FROM sent_mails WHERE message_key IN ({marks}))", tuple(keys))
        for table in ("events", "outcomes", "document_contents", "message_identifiers", "sent_mails", "notices",
                      "job_contents"):
            yield f"DELETE FROM {table} WHERE message_key IN ({marks})", tuple(keys)
        yield f"DELETE FROM message_contents WHERE key IN ({marks})", tuple(keys)
        yield f"DELETE FROM messages WHERE key IN ({marks})", tuple(keys)
    return len(keys)


def expirable(content_before: str | None, metadata_before: str | None) -> Operation[tuple[int, int]]:
    """How many messages a pass would empty and remove now (a dry run)."""
    content = metadata = 0
    if content_before is not None:
        content = (yield (f"SELECT count(*) FROM messages m WHERE {_EXPIRED} AND {_HAS_CONTENT}",
                          _params(content_before))).rows[0][0]
    if metadata_before is not None:
        metadata = (yield f"SELECT count(*) FROM messages m WHERE {_EXPIRED}", _params(metadata_before)).rows[0][0]
    return int(content), int(metadata)
