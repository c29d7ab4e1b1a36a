"""Builders of the notices a recipient's side sends back: MDN (RFC 8098, ANS form) and the ANS error mail.

Shaped after the IG samples (``struct-msg-mdn.md``, ``struct-email-standard.md``),
with our own fictitious names: the tests send them back through Postfix as a
recipient's software would, and the unit tests parse them. A DSN builder is here too
for the unit tests (in the integration tests Postfix writes the real ones).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

__all__ = ["dsn_mail", "error_mail", "mdn_mail"]


def mdn_mail(*, original_message_id: str, reader: str, to: str, disposition: str = "processed",
             error: str = "", message_id: str | None = None, when: datetime | None = None) -> bytes:
    """An MDN from ``reader`` about ``original_message_id``; ``error`` (``902^label``) makes it the ANS error form."""
    when = when or datetime.now(UTC)
    mdn = EmailMessage(policy=SMTP)
    mdn["From"] = reader
    mdn["To"] = to
    mdn["Date"] = format_datetime(when)
    mdn["Message-ID"] = message_id or make_msgid(domain=reader.split("@")[-1])
    mdn["Subject"] = (f"[KO Intégration système !][{error.split('^')[0]}] XDM/1.0/DDM+Lettre de liaison"
                      if error else "Accusé de lecture : XDM/1.0/DDM+Lettre de liaison")
    mdn["References"] = original_message_id
    text = (f"Le document n'a pas pu être intégré.\r\nLe système a retourné l'erreur {error}^messageErrorCondition"
            if error else "Le document a été intégré.")
    mdn.set_content(text, charset="utf-8")
    mdn.make_mixed()
    mdn.set_param("report-type", "disposition-notification")
    mdn.replace_header("Content-Type", mdn["Content-Type"].replace("multipart/mixed", "multipart/report"))
    modifier = f"/Error: {error}^messageErrorCondition| E^Error^errorSeverity" if error else ""
    fields = (f"Reporting-UA: liaison-test-recipient\r\nOriginal-Recipient: rfc822;{reader}\r\n"
              f"Final-Recipient: rfc822;{reader}\r\nOriginal-Message-ID: {original_message_id}\r\n"
              f"Disposition: automatic-action/MDN-sent-automatically; {disposition}{modifier}\r\n")
    report = EmailMessage(policy=SMTP)
    report.set_payload(fields.encode("utf-8"))
    report["Content-Type"] = "message/disposition-notification"
    report["Content-Transfer-Encoding"] = "8bit"
    mdn.attach(report)
    return mdn.as_bytes(policy=SMTP)


def error_mail(*, original_message_id: str, sender: str, to: str, code: str = "902",
               label: str = "Identifiant de patient inconnu", message_id: str | None = None) -> bytes:
    """The ANS standard error mail (no MDN was asked): subject ``[KO Intégration système !][code]``."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = sender
    mail["To"] = to
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = message_id or make_msgid(domain=sender.split("@")[-1])
    mail["Subject"] = f"[KO Intégration système !][{code}] XDM/1.0/DDM+Lettre de liaison"
    mail["In-Reply-To"] = original_message_id
    mail["References"] = original_message_id
    mail.set_content("Bonjour,\r\n\r\nLe document envoyé n'a pas pu être intégré correctement dans le système.\r\n"
                     f"- Erreur détectée : {label}\r\n- Code d'erreur : {code}\r\n\r\nCordialement.",
                     charset="utf-8")
    return mail.as_bytes(policy=SMTP)


def dsn_mail(*, envelope_id: str, recipient: str, action: str = "delivered", status: str = "2.0.0",
             diagnostic: str = "", original_message_id: str = "", to: str = "pfi@hopital-test.mssante.fr",
             message_id: str | None = None, when: datetime | None = None,
             arrival: datetime | None = None) -> bytes:
    """A DSN as Postfix writes one: per-message fields with the ENVID, one recipient block, the returned headers.

    ``when`` is its Date (when it was written), ``arrival`` the Arrival-Date (default: the same).
    """
    when = when or datetime.now(UTC)
    arrival = arrival or when
    boundary = "dsn-" + (message_id or make_msgid()).strip("<>").replace("@", ".")
    returned = (f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
                f"Message-ID: {original_message_id}\r\nSubject: XDM/1.0/DDM+Lettre\r\n\r\n"
                if original_message_id else "")
    text = (f"From: MAILER-DAEMON@relay-test.mssante.fr (Mail Delivery System)\r\nTo: {to}\r\n"
            f"Date: {format_datetime(when)}\r\nMessage-ID: {message_id or make_msgid(domain='relay-test.mssante.fr')}\r\n"
            f"Subject: {'Successful Mail Delivery Report' if action == 'delivered' else 'Undelivered Mail'}\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n"
            f"\tboundary=\"{boundary}\"\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            f"Your message to <{recipient}> was {action}.\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
            f"Reporting-MTA: dns; relay-test.mssante.fr\r\nOriginal-Envelope-Id: {envelope_id}\r\n"
            f"Arrival-Date: {format_datetime(arrival)}\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\n"
            f"Action: {action}\r\nStatus: {status}\r\n"
            + (f"Diagnostic-Code: smtp; {diagnostic}\r\n" if diagnostic else "")
            + f"\r\n{returned}--{boundary}--\r\n")
    return text.encode("ascii")
