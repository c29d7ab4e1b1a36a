"""A DocumentJob on the bus: inline, or its CDA left in the journal when it is large.

The process stage publishes each job to ``deliver.mss`` and ``deposit.dmp``. A CDA carrying a
20 MB PDF is ~27 MB of base64 in the job's JSON, and the bus client copies a body several times
while framing it (``router/queues.py``), in the worker that publishes it and in the one that takes it. Over
:data:`router.queues.INLINE_BODY_BYTES` the CDA is written once to the journal
(:meth:`Journal.record_job_content`, durable before the job is published) and the job goes with an
empty CDA and the ``body: journal`` header; the stage that takes it reads the CDA back by job id.
Inbound messages travel the same way (``router/ingest.py``).
"""

from __future__ import annotations

from dataclasses import replace

from router import queues
from router.errors import TransientError
from router.model import DocumentJob
from router.ports import Envelope, Journal


async def job_body(journal: Journal, job: DocumentJob) -> tuple[bytes, dict[str, str]]:
    """The body and extra headers to publish ``job`` with (to every queue): a CDA over the inline limit is
    written to the journal first, once, and left out of the body."""
    if len(job.cda) <= queues.INLINE_BODY_BYTES:
        return job.to_json(), {}
    await journal.record_job_content(job.job_id, job.message_key, job.cda)
    return replace(job, cda=b"").to_json(), {queues.BODY_HEADER: queues.BODY_IN_JOURNAL}


async def job_of(envelope: Envelope, journal: Journal) -> DocumentJob:
    """The job an envelope carries, its CDA read back from the journal when it travelled as a reference."""
    job = DocumentJob.from_json(envelope.body)
    if envelope.headers.get(queues.BODY_HEADER) != queues.BODY_IN_JOURNAL:
        return job
    cda = await journal.job_content(job.job_id)
    if cda is None:
        raise TransientError(f"job {job.job_id} travelled as a journal reference but its CDA is not in the journal")
    return replace(job, cda=cda)
