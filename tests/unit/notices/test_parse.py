"""Reading DSNs, MDNs (with the ANS error form) and ANS error mails from their bytes, with our own sample mails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.notices.parse import NoticeFormatError, parse_notice
from channels.testing.notices import dsn_mail, error_mail, mdn_mail
from router.notices import NoticeKind

MARTIN = "dr.martin@hopital-test.mssante.fr"
PFI = "pfi@hopital-test.mssante.fr"
ORIGINAL = "<3f2a9c@liaison.test>"


def test_a_delivered_dsn_gives_the_envid_the_recipient_the_status_and_the_time():
    when = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
    notice = parse_notice(dsn_mail(envelope_id="a1b2c3", recipient=MARTIN, original_message_id=ORIGINAL,
                                   message_id="<dsn-1@relay>", when=when))

    assert (notice.kind, notice.notice_id, notice.envelope_id) == (NoticeKind.DSN, "<dsn-1@relay>", "a1b2c3")
    assert notice.message_ids == (ORIGINAL,)
    [report] = notice.reports
    assert (report.recipient, report.action, report.status, report.at) == (MARTIN, "delivered", "2.0.0", when)


def test_a_failed_dsn_keeps_the_status_code_and_the_servers_text():
    notice = parse_notice(dsn_mail(envelope_id="a1b2c3", recipient="absent@hopital-test.mssante.fr",
                                   action="failed", status="5.1.1", diagnostic="550 5.1.1 User unknown"))

    [report] = notice.reports
    assert (report.action, report.status, report.diagnostic) == ("failed", "5.1.1", "550 5.1.1 User unknown")


def test_an_mdn_processed_names_the_reader_and_the_original_message():
    notice = parse_notice(mdn_mail(original_message_id=ORIGINAL, reader=MARTIN, to=PFI))

    assert (notice.kind, notice.message_ids) == (NoticeKind.MDN, (ORIGINAL,))
    [report] = notice.reports
    assert (report.action, report.final_recipient, report.error_code) == ("processed", MARTIN, "")


def test_an_mdn_in_the_ans_error_form_gives_the_code_and_the_label():
    notice = parse_notice(mdn_mail(original_message_id=ORIGINAL, reader=MARTIN, to=PFI,
                                   error="902^Identifiant de patient inconnu"))

    [report] = notice.reports
    assert (report.action, report.error_code, report.error_label) == ("processed", "902",
                                                                      "Identifiant de patient inconnu")


def test_an_mdn_written_without_the_blank_line_after_its_content_type_is_read_too():
    raw = (b"From: " + MARTIN.encode() + b"\r\nMessage-Id: <mdn-2@h>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/report; report-type=disposition-notification; boundary=\"B\"\r\n\r\n"
           b"--B\r\n\r\nLu.\r\n--B\r\nContent-Type: message/disposition-notification\r\n"
           b"Final-Recipient: rfc822; " + MARTIN.encode() + b" \r\nOriginal-Message-ID: <3f2a9c @liaison.test>\r\n"
           b"Disposition:manual-action/MDN-sent-manually; displayed\r\n--B--\r\n")
    notice = parse_notice(raw)

    assert notice.message_ids == (ORIGINAL,)
    assert notice.reports[0].action == "displayed"


def test_the_ans_error_mail_gives_the_code_from_the_subject_and_the_label_from_the_body():
    notice = parse_notice(error_mail(original_message_id=ORIGINAL, sender=MARTIN, to=PFI, code="903",
                                     label="Document illisible"))

    assert (notice.kind, notice.message_ids) == (NoticeKind.ERROR_MAIL, (ORIGINAL,))
    [report] = notice.reports
    assert (report.recipient, report.error_code, report.error_label) == (MARTIN, "903", "Document illisible")


def test_a_mail_without_message_id_is_named_by_its_digest():
    raw = dsn_mail(envelope_id="e", recipient=MARTIN).replace(b"Message-ID:", b"X-Old-Id:")
    assert parse_notice(raw).notice_id.startswith("sha256:")


@pytest.mark.parametrize("raw, expected", [
    (b"From: x@y\r\nSubject: bonjour\r\n\r\nun courriel ordinaire", "got text/plain"),
    (b"\x00\xff\xfe", "expected a delivery status notification"),
    (b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
     b"Content-Type: text/plain\r\n\r\nhi\r\n--x--\r\n", "without its message/delivery-status part"),
    (b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
     b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n--x--\r\n", "per-recipient block"),
])
def test_anything_else_is_refused_saying_what_was_expected(raw, expected):
    with pytest.raises(NoticeFormatError, match=expected):
        parse_notice(raw)


def test_the_time_of_a_delivery_is_the_dsns_date_not_when_the_relay_received_the_mail():
    received = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    written = datetime(2026, 3, 2, 10, 7, 30, tzinfo=UTC)
    notice = parse_notice(dsn_mail(envelope_id="e", recipient=MARTIN, when=written, arrival=received))
    assert notice.reports[0].at == written
