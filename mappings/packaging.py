"""How a job goes out over MSSanté: the IHE_XDM.ZIP and the mail carrying it (the ``MailPackager`` port).

The ``deliver.mss`` stage decides whom to mail and when; this decides what the
mail is, from the platform's own settings (its applicative mailbox, the
X-MSS-NIL product reference, the default body, the Message-ID domain) and
its XDS sourceId.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mappings.mss_mail import build_mss_mail
from mappings.xdm import build_xdm
from router.model import DocumentJob, Recipient


@dataclass(frozen=True)
class MssPackaging:
    """IHE XDM + MSSanté mail for the platform's mailbox ``sender``."""

    sender: str
    nil: str
    default_body: str
    message_id_domain: str
    source_id: str
    mdn: str = "asked"             # when to ask for a read notice (``[mss] mdn``)
    mdn_to: str = ""               # where it goes (``[mss] mdn_to``; default the sender)

    def xdm(self, job: DocumentJob, *, submission_time: datetime) -> bytes:
        return build_xdm(job, submission_time=submission_time, source_id=self.source_id)

    def mail(self, job: DocumentJob, xdm: bytes, *, recipients: Sequence[Recipient],
             audience: str) -> tuple[bytes, str]:
        return build_mss_mail(job, xdm, sender=self.sender, recipients=recipients, audience=audience,
                              nil=self.nil, default_body=self.default_body,
                              message_id_domain=self.message_id_domain, mdn=self.mdn, mdn_to=self.mdn_to)
