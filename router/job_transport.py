"""A DocumentJob on the bus: inline, or its CDA left in the journal when it is large.

The process stage publishes each job to ``deliver.mss`` and ``deposit.dmp``. A CDA carrying a
20 MB PDF is ~27 MB of base64 in the job's JSON, and the bus client copies a body several times
while framing it (publishing and consuming it, the worker peaked at 7.4x the HL7 message). Over
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
from router.ports import Bus, Envelope, Journal


async def publish_job(bus: Bus, journal: Journal, queue: str, job: DocumentJob, *, message_id: str,
                      headers: dict[str, str]) -> None:
    """Publish ``job`` on ``queue``; a CDA over the inline limit goes to the journal first (once per job)."""
    if len(job.cda) <= queues.INLINE_BODY_BYTES:
        await bus.publish(queue, job.to_json(), message_id=message_id, headers=headers)
        return
    await journal.record_job_content(job.job_id, job.message_key, job.cda)
    await bus.publish(queue, replace(job, cda=b"").to_json(), message_id=message_id,
                      headers={**headers, queues.BODY_HEADER: queues.BODY_IN_JOURNAL})


async def job_of(envelope: Envelope, journal: Journal) -> DocumentJob:
    """The job an envelope carries, its CDA read back from the journal when it travelled as a reference."""
    job = DocumentJob.from_json(envelope.body)
    if envelope.headers.get(queues.BODY_HEADER) != queues.BODY_IN_JOURNAL:
        return job
    cda = await journal.job_content(job.job_id)
    if cda is None:
        raise TransientError(f"job {job.job_id} travelled as a journal reference but its CDA is not in the journal")
    return replace(job, cda=cda)
