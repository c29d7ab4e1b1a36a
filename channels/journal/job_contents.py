"""The ``job_contents`` table: the CDA of a large DocumentJob, kept once for the stages that read it.

A job whose CDA is over :data:`router.queues.INLINE_BODY_BYTES` is published without it
(``router/job_transport.py``): the bus client copies a body several times while framing it,
and the deliver and deposit stages would each get a copy. The process stage writes the CDA
here first, under the job id; a second write of the same job (a redelivered inbound message)
keeps the first. The CDA is patient data: sealed with the journal's codec under
``aad("job_contents", job_id, "cda")``.
"""

from __future__ import annotations

from channels.cipher import Codec, aad
from channels.journal.sql import Operation


def _where(job_id: str) -> bytes:
    return aad("job_contents", job_id, "cda")


def store(codec: Codec, job_id: str, message_key: str, cda: bytes, now: str) -> Operation[None]:
    """Keep ``cda`` under ``job_id``; a row already there stays as it is (same job, same content)."""
    yield ("INSERT INTO job_contents (job_id, message_key, cda, created_at) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (job_id) DO NOTHING", (job_id, message_key, codec.seal_bytes(cda, _where(job_id)), now))


def content(codec: Codec, job_id: str) -> Operation[bytes | None]:
    """The CDA kept under ``job_id``, or None (never kept, or removed by retention)."""
    rows = (yield "SELECT cda FROM job_contents WHERE job_id = ?", (job_id,)).rows
    return codec.open_bytes(rows[0][0], _where(job_id)) if rows else None
