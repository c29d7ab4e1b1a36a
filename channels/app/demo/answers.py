"""The far side of the demo's mails: the relay's delivery notices and the doctors' read notices.

In production these come from elsewhere: the operator's relay writes a DSN (RFC 3464) when a mail
that asked for one (``NOTIFY=SUCCESS``) reached the recipient's mailbox, and the recipient's mail
software sends an MDN (RFC 8098) when the letter was shown to the reader, if the mail asked for one
(``Disposition-Notification-To``). The demo's relay (the TLS mail sink) keeps what each mail asked
for; this module answers as those two would, and delivers each notice into the Maildir of the
address it is for, as a local MTA does. The engine reads the structure's Maildir
(``[notices] maildir``) and the HIS gets its final ZAM^Z02 and its ZAM^Z03.
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from email import policy
from email.utils import parseaddr
from pathlib import Path

from channels.testing.mail_sink import ReceivedMail, folder_name
from channels.testing.maildir import deliver
from channels.testing.notices import dsn_mail, mdn_mail

__all__ = ["Answers", "answer_mails"]


@dataclass(frozen=True)
class Answers:
    dsns: int                        # delivery notices written (one per recipient that asked)
    mdns: int                        # read notices written (one per recipient of a mail that asked)


def answer_mails(mails: list[ReceivedMail], maildirs: Path) -> Answers:
    """For each recipient of each mail: a DSN ``delivered`` if asked, an MDN ``displayed`` if asked."""
    dsns = mdns = 0
    for mail in mails:
        headers = email.message_from_bytes(mail.data, policy=policy.SMTP, _class=email.message.EmailMessage)
        message_id = str(headers.get("Message-ID", "")).strip()
        read_receipt_to = parseaddr(str(headers.get("Disposition-Notification-To", "")))[1]
        for recipient in mail.recipients:
            if "SUCCESS" in mail.notify.get(recipient, "").upper() and mail.envelope_id:
                deliver(maildirs / folder_name(mail.sender), dsn_mail(
                    envelope_id=mail.envelope_id, recipient=recipient, to=mail.sender,
                    original_message_id=message_id))
                dsns += 1
            if read_receipt_to:
                deliver(maildirs / folder_name(read_receipt_to), mdn_mail(
                    original_message_id=message_id, reader=recipient, to=read_receipt_to, disposition="displayed"))
                mdns += 1
    return Answers(dsns, mdns)
