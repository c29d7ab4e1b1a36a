"""The generic CI-SIS profile schematrons, kept off the documents' path: 1 document in N, checked after dispatch.

Why: the minimal-structure profile costs 45-63 ms of CPU a document (bench/render.py), more
than the rest of a document's processing together, so running it on every document
(``engine.schematrons = "all"``) caps a worker at ~20 documents/s. The volet's own
schematron (which checks the volet, and runs inline on every document) stays the gate.
With ``engine.profile_sample = N`` and ``schematrons = "volet"``, one document in N also
goes through the profiles, in a thread, *after* it was dispatched: its mail is not held
for it and its findings never refuse it (a document is not refused by chance). They are a
journal event of the message (step ``profiles``: ``valid``, or ``warning`` with the failed
assertions) and a log line with their count, for whoever watches conformance.

Which documents: those whose content digest falls in the sample (the digest modulo N),
so a re-sent document is sampled or not as the first time, and the share is 1/N on any mix.
"""

from __future__ import annotations

from collections.abc import Callable


class ProfileSample:
    """``check(cda)`` → failed assertions (described), for the documents :meth:`due` picks."""

    def __init__(self, every: int, check: Callable[[bytes], list[str]]):
        if every < 1:
            raise ValueError("every must be at least 1")
        self.every = every
        self.check = check

    def due(self, content_digest: str) -> bool:
        """True for one content digest (SHA-256, hex) in ``every``."""
        return int(content_digest[:16], 16) % self.every == 0
