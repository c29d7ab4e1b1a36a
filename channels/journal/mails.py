"""The journal's sent mails, their recipients' steps, and the notices read back (operations, ``sql.py``).

A mail is kept before it is sent, under its ENVID, so that a delivery notice arriving
before the relay's answer is written still finds it. Each recipient's steps (relayed,
delivered, failed, read, error) are set once, by a conditional UPDATE: the first notice
that reports a step changes the row and gets ``True``, every later one (the same notice
read twice, a second copy from another server) gets ``False``, which is what keeps a
second ZAM from being sent. DELIVERED and FAILED exclude each other.

Sealed with the journal's codec: the mail's context (the HL7 header the ZAMs answer,
patient-free but kept with the rest), the recipient's identifier (an INS for a patient)
and every ``detail`` text.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from channels.cipher import Codec, aad
from channels.journal.operations import event
from channels.journal.sql import Operation, optional_moment, moment, ts
from router.model import MessageSource
from router.ports import MailRecipient, MailStep, NoticeRecord, NoticeVerdict, SentMail

MAIL_COLUMNS = "envelope_id, message_id, message_key, document_id, delivery_key, context, sent_at"
RECIPIENT_COLUMNS = ("envelope_id, address, identifier, relayed_at, delivered_at, failed_at, read_at, error_at, "
                     "detail")
NOTICE_COLUMNS = "notice_id, kind, verdict, at, envelope_id, message_key, detail"

#: Steps that settle delivery: one excludes the other.
_EXCLUSIVE = {MailStep.DELIVERED: MailStep.FAILED, MailStep.FAILED: MailStep.DELIVERED}


def record_mail(codec: Codec, mail: SentMail, now: str) -> Operation[None]:
    context = json.dumps({"source": asdict(mail.source), "ack_reception": mail.ack_reception,
                          "ack_lecture": mail.ack_lecture})
    inserted = yield (f"INSERT INTO sent_mails ({MAIL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                      "ON CONFLICT (envelope_id) DO NOTHING",
                      (mail.envelope_id, mail.message_id, mail.message_key, mail.document_id, mail.delivery_key,
                       codec.seal_text(context, aad("sent_mails", mail.envelope_id, "context")),
                       ts(mail.sent_at) if mail.sent_at else now))
    if inserted.rowcount != 1:
        return
    for recipient in mail.recipients:
        yield (f"INSERT INTO mail_recipients ({RECIPIENT_COLUMNS}) VALUES (?, ?, ?, NULL, NULL, NULL, NULL, NULL, ?) "
               "ON CONFLICT (envelope_id, address) DO NOTHING",
               (mail.envelope_id, recipient.address,
                codec.seal_text(recipient.identifier, _where(mail.envelope_id, recipient.address, "identifier")),
                codec.seal_text("", _where(mail.envelope_id, recipient.address, "detail"))))


def mark_mail(codec: Codec, envelope_id: str, address: str, step: MailStep, *, at: str,
              detail: str) -> Operation[bool]:
    """Set the step's time once (and not DELIVERED once FAILED, nor the reverse); an event when it changed."""
    column = f"{MailStep(step).value}_at"
    sql = (f"UPDATE mail_recipients SET {column} = ?, detail = ? WHERE envelope_id = ? AND address = ? "
           f"AND {column} IS NULL")
    other = _EXCLUSIVE.get(step)
    if other is not None:
        sql += f" AND {other.value}_at IS NULL"
    sealed = codec.seal_text(detail, _where(envelope_id, address, "detail"))
    changed = (yield sql, (at, sealed, envelope_id, address)).rowcount == 1
    if changed:
        found = (yield "SELECT message_key, delivery_key FROM sent_mails WHERE envelope_id = ?", (envelope_id,)).rows
        if found:
            yield event(codec, found[0][0], at, "notice", str(step), detail, found[0][1], address)
    return changed


def unmark_mail(envelope_id: str, address: str, step: MailStep) -> Operation[None]:
    column = f"{MailStep(step).value}_at"
    yield (f"UPDATE mail_recipients SET {column} = NULL WHERE envelope_id = ? AND address = ?",
           (envelope_id, address))


def sent_mail(codec: Codec, *, envelope_id: str, message_id: str) -> Operation[SentMail | None]:
    rows: list = []
    if envelope_id:
        rows = (yield f"SELECT {MAIL_COLUMNS} FROM sent_mails WHERE envelope_id = ?", (envelope_id,)).rows
    if not rows and message_id:
        rows = (yield f"SELECT {MAIL_COLUMNS} FROM sent_mails WHERE message_id = ? ORDER BY sent_at DESC",
                (message_id,)).rows
    if not rows:
        return None
    return (yield from _with_recipients(codec, rows[0]))


def sent_mails(codec: Codec, message_key: str) -> Operation[list[SentMail]]:
    rows = (yield f"SELECT {MAIL_COLUMNS} FROM sent_mails WHERE message_key = ? ORDER BY sent_at, envelope_id",
            (message_key,)).rows
    mails = []
    for row in rows:
        mails.append((yield from _with_recipients(codec, row)))
    return mails


def record_notice(codec: Codec, notice: NoticeRecord) -> Operation[bool]:
    inserted = yield (f"INSERT INTO notices ({NOTICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                      "ON CONFLICT (notice_id) DO NOTHING",
                      (notice.notice_id, notice.kind, str(notice.verdict), ts(notice.at), notice.envelope_id,
                       notice.message_key, codec.seal_text(notice.detail, aad("notices", notice.notice_id,
                                                                                "detail"))))
    return inserted.rowcount == 1


def notices(codec: Codec, *, limit: int, verdicts: frozenset[NoticeVerdict] | None) -> Operation[list[NoticeRecord]]:
    where, params = "", []
    if verdicts:
        where = f"WHERE verdict IN ({', '.join('?' * len(verdicts))})"
        params = sorted(str(v) for v in verdicts)
    rows = (yield f"SELECT {NOTICE_COLUMNS} FROM notices {where} ORDER BY at DESC, notice_id DESC LIMIT ?",
            (*params, limit)).rows
    return [NoticeRecord(notice_id=nid, kind=kind, verdict=NoticeVerdict(verdict), at=moment(at),
                         envelope_id=envid, message_key=key,
                         detail=codec.open_text(detail, aad("notices", nid, "detail")))
            for nid, kind, verdict, at, envid, key, detail in rows]


def _with_recipients(codec: Codec, row: tuple) -> Operation[SentMail]:
    envelope_id, message_id, message_key, document_id, delivery_key, context, sent_at = row
    found = (yield f"SELECT {RECIPIENT_COLUMNS} FROM mail_recipients WHERE envelope_id = ? ORDER BY address",
             (envelope_id,)).rows
    data = json.loads(codec.open_text(context, aad("sent_mails", envelope_id, "context")))
    recipients = tuple(
        MailRecipient(address=address,
                      identifier=codec.open_text(identifier, _where(envelope_id, address, "identifier")),
                      relayed_at=optional_moment(relayed), delivered_at=optional_moment(delivered),
                      failed_at=optional_moment(failed), read_at=optional_moment(read),
                      error_at=optional_moment(error),
                      detail=codec.open_text(detail, _where(envelope_id, address, "detail")))
        for _env, address, identifier, relayed, delivered, failed, read, error, detail in found)
    return SentMail(envelope_id=envelope_id, message_id=message_id, message_key=message_key,
                    document_id=document_id, delivery_key=delivery_key, source=MessageSource(**data["source"]),
                    ack_reception=bool(data["ack_reception"]), ack_lecture=bool(data["ack_lecture"]),
                    sent_at=moment(sent_at), recipients=recipients)


def _where(envelope_id: str, address: str, column: str) -> bytes:
    return aad("mail_recipients", envelope_id, address, column)
