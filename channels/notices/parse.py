"""Read a mail from the structure's mailbox as a notice: DSN, MDN or ANS error mail (``router.notices.Notice``).

- DSN (RFC 3464): ``multipart/report; report-type=delivery-status``; the
  ``message/delivery-status`` part holds the per-message fields (``Original-Envelope-Id``,
  ``Arrival-Date``) then one block per recipient (``Action``, ``Status``,
  ``Final-Recipient``, ``Original-Recipient``, ``Diagnostic-Code``). The returned
  headers (``text/rfc822-headers``, or the whole ``message/rfc822``) give the
  original Message-ID too.
- MDN (RFC 8098): ``report-type=disposition-notification``; the
  ``message/disposition-notification`` part holds ``Disposition``,
  ``Final-Recipient``, ``Original-Recipient``, ``Original-Message-ID``. The ANS
  form ``processed/Error: 902^Identifiant de patient inconnu^...`` gives a code and
  a label (IG struct-msg-mdn).
- Error mail (IG struct-email-standard): a subject starting ``[KO Intégration
  système !]`` or ``[Erreur d'intégration !]`` followed by ``[<code>]``; the label
  comes from the body ("Erreur détectée : ...", or ``<code>^<label>``); the
  original is quoted by ``In-Reply-To``/``References`` or attached.

Anything else raises :class:`NoticeFormatError` with what was expected: the
channel journals it as malformed and moves it aside.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import hashlib
import re
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email.utils import parsedate_to_datetime

from router.errors import ParseError
from router.notices import Notice, NoticeKind, RecipientReport

__all__ = ["NoticeFormatError", "parse_notice"]

_ERROR_SUBJECT = re.compile(r"^\s*\[(?:KO\s+Int[ée]gration\s+syst[èe]me\s*!|Erreur\s+d.int[ée]gration\s*!)\]"
                            r"\s*(?:\[(?P<code>[^\]]*)\])?", re.IGNORECASE)
_ERROR_LABEL = re.compile(r"Erreur d[ée]tect[ée]e\s*:\s*(?P<label>[^\r\n]+)", re.IGNORECASE)
_CODED = re.compile(r"(?P<code>[A-Za-z0-9_.-]+)\^(?P<label>[^^|\r\n]+)")
_MESSAGE_ID = re.compile(r"<([^<>]+)>")


class NoticeFormatError(ParseError):
    """The mail is not a notice Liaison can read."""


def parse_notice(raw: bytes) -> Notice:
    """The notice ``raw`` is; :class:`NoticeFormatError` when it is none."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:                       # the parser is lenient; this is a last resort
        raise NoticeFormatError(f"not a mail: {exc}") from exc
    notice_id = _one_id(message.get("Message-ID", "")) or "sha256:" + hashlib.sha256(raw).hexdigest()
    date = _date(message.get("Date"))
    content_type = message.get_content_type()
    report_type = (message.get_param("report-type") or "").lower() if content_type == "multipart/report" else ""
    if report_type == "delivery-status":
        return _dsn(message, notice_id, date)
    if report_type == "disposition-notification":
        return _mdn(message, notice_id, date)
    subject = _text(message.get("Subject", ""))
    if _ERROR_SUBJECT.match(subject):
        return _error_mail(message, subject, notice_id, date)
    raise NoticeFormatError(f"expected a delivery status notification (multipart/report; report-type="
                            f"delivery-status), a read notice (report-type=disposition-notification) or an ANS "
                            f"error mail ([KO Intégration système !]); got {content_type}"
                            + (f"; report-type={report_type}" if report_type else ""))


# ------------------------------------------------------------------ DSN

def _dsn(message: Message, notice_id: str, date: datetime | None) -> Notice:
    status_part = _part(message, "message/delivery-status")
    if status_part is None:
        raise NoticeFormatError("a delivery-status report without its message/delivery-status part")
    blocks = _field_blocks(status_part)
    if len(blocks) < 2:
        raise NoticeFormatError("a delivery-status report without a per-recipient block (Action, Status, "
                                "Final-Recipient)")
    per_message, per_recipient = blocks[0], blocks[1:]
    arrival = _date(per_message.get("Arrival-Date"))
    reports = []
    for block in per_recipient:
        final = _address(block.get("Final-Recipient", ""))
        action = (block.get("Action") or "").strip().lower()
        if not final or not action:
            raise NoticeFormatError("a delivery-status recipient block without Final-Recipient or Action")
        reports.append(RecipientReport(
            recipient=_address(block.get("Original-Recipient", "")) or final, action=action,
            status=(block.get("Status") or "").strip(), diagnostic=_diagnostic(block.get("Diagnostic-Code", "")),
            # When it happened: the attempt's date, else the DSN's own Date (written at delivery); Arrival-Date
            # is when the reporting MTA received the mail, the last resort.
            final_recipient=final, at=_date(block.get("Last-Attempt-Date")) or date or arrival))
    envelope_id = _xtext_decode((per_message.get("Original-Envelope-Id") or "").strip())
    return Notice(notice_id=notice_id, kind=NoticeKind.DSN, envelope_id=envelope_id,
                  message_ids=_quoted_ids(message), reports=tuple(reports), date=date)


# ------------------------------------------------------------------ MDN

def _mdn(message: Message, notice_id: str, date: datetime | None) -> Notice:
    part = _part(message, "message/disposition-notification")
    if part is None:
        raise NoticeFormatError("a disposition-notification report without its message/disposition-notification "
                                "part")
    # Written without the blank line after its Content-Type (as the IG sample is), the fields are the part's headers.
    fields = [*_field_blocks(part), part]
    merged: dict[str, str] = {}
    for block in fields:
        for name, value in block.items():
            merged.setdefault(name.lower(), value)
    disposition = " ".join((merged.get("disposition") or "").split())
    final = _address(merged.get("final-recipient", ""))
    if not disposition or not final:
        raise NoticeFormatError("a read notice without Disposition or Final-Recipient")
    action, code, label = _disposition(disposition)
    original = _one_id(merged.get("original-message-id", ""))
    ids = tuple(dict.fromkeys(([original] if original else []) + list(_quoted_ids(message))))
    report = RecipientReport(recipient=_address(merged.get("original-recipient", "")) or final, action=action,
                             diagnostic=disposition[:300], error_code=code, error_label=label,
                             final_recipient=final, at=date)
    return Notice(notice_id=notice_id, kind=NoticeKind.MDN, message_ids=ids, reports=(report,), date=date)


def _disposition(value: str) -> tuple[str, str, str]:
    """``automatic-action/MDN-sent-automatically; processed/Error: 902^label^...`` → (processed, 902, label)."""
    _, _, rest = value.partition(";")
    disposition_type, _, modifier = rest.strip().partition("/")
    action = disposition_type.strip().lower() or "unknown"
    code = label = ""
    if modifier.strip().lower().startswith("error"):
        text = modifier.split(":", 1)[1].strip() if ":" in modifier else ""
        coded = _CODED.search(text)
        if coded:
            code, label = coded["code"], coded["label"].strip()
        else:
            label = text or "Error"
    return action, code, label


# ------------------------------------------------------------ error mail

def _error_mail(message: Message, subject: str, notice_id: str, date: datetime | None) -> Notice:
    code = (_ERROR_SUBJECT.match(subject)["code"] or "").strip()
    body = _body_text(message)
    label = ""
    named = _ERROR_LABEL.search(body)
    if named:
        label = named["label"].strip()
    coded = _CODED.search(body)
    if coded and (not code or coded["code"] == code):
        code = code or coded["code"]
        label = label or coded["label"].strip()
    sender = _address(message.get("From", ""))
    report = RecipientReport(recipient=sender, action="error", error_code=code or "unknown",
                             error_label=label or "Erreur d'intégration", final_recipient=sender,
                             diagnostic=subject[:300], at=date)
    return Notice(notice_id=notice_id, kind=NoticeKind.ERROR_MAIL, message_ids=_quoted_ids(message),
                  reports=(report,), date=date)


# --------------------------------------------------------------- helpers

def _part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a report part (the parser gives sub-messages or a text, by version)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    if isinstance(payload, str):
        text = part.get_payload(decode=True)
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else payload
        chunks = re.split(r"\r?\n\s*\r?\n", text.strip())
        return [HeaderParser().parsestr(chunk.strip() + "\n\n") for chunk in chunks if chunk.strip()]
    return []


def _quoted_ids(message: Message) -> tuple[str, ...]:
    """Message-IDs a notice quotes: In-Reply-To, References, and the returned original's own."""
    ids: list[str] = []
    for header in ("In-Reply-To", "References"):
        ids += [f"<{found}>" for found in _MESSAGE_ID.findall(" ".join(str(v) for v in message.get_all(header, [])))]
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True) or b""
            headers = BytesHeaderParser().parsebytes(payload if isinstance(payload, bytes) else payload.encode())
            ids.append(_one_id(headers.get("Message-ID", "")))
        elif kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                ids.append(_one_id(inner[0].get("Message-ID", "")))
    return tuple(dict.fromkeys(i for i in ids if i))


def _one_id(value: str) -> str:
    """``<a@b>`` from a header, spaces inside the brackets removed (the IG sample has one)."""
    found = re.search(r"<([^<>]*)>", str(value))
    inner = "".join(found[1].split()) if found else "".join(str(value).split())
    return f"<{inner}>" if inner else ""


def _address(value: str) -> str:
    """``rfc822; a@b`` → ``a@b``."""
    text = str(value)
    if ";" in text:
        text = text.split(";", 1)[1]
    return text.strip().strip("<>").strip()


def _diagnostic(value: str) -> str:
    text = " ".join(str(value).split())
    return text.split(";", 1)[1].strip() if ";" in text else text


def _xtext_decode(value: str) -> str:
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m[1], 16)), value)


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(" ".join(re.sub(r"\([^)]*\)", " ", str(value)).split()))
    except (TypeError, ValueError, IndexError):
        return None


def _text(value: str) -> str:
    """A header as text: raw UTF-8 (as many mailers send it) and RFC 2047 words decoded."""
    text = str(value)
    try:
        text = text.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        pass
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except Exception:
        return text


def _body_text(message: Message) -> str:
    texts = []
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            payload = part.get_payload(decode=True) or b""
            texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
        if part.get_content_type() == "message/rfc822":
            break
    if not texts and not message.is_multipart():
        payload = message.get_payload(decode=True) or b""
        texts.append(payload.decode(message.get_content_charset() or "utf-8", "replace"))
    return "\n".join(texts)

