"""Notices read back over IMAP, on real parts: a private Dovecot (TLS, client certificate required) holds the
structure's mailbox, a private Postfix relays our mail, writes the real DSNs and delivers them, and the MDNs and
ANS error mails a recipient's software would send, into it; the engine reads them and the HIS gets its final
ZAM^Z02 and its ZAM^Z03."""

from __future__ import annotations

import asyncio
import time

import pytest

from channels.app.cli.journal import notices, show
from channels.notices.settings import ImapSettings
from channels.smtp.mailer import SmtpMailer
from channels.testing.cda import make_cda
from channels.testing.messages import DR_MARTIN, Patient, Rct, encode_message, make_pfi_oru
from channels.testing.notices import error_mail, mdn_mail
from router.ports import MessageState, NoticeVerdict, OutcomeStatus
from tests.support.poll import eventually
from tests.integration.harness import Pipeline
from tests.support.dovecot import require_dovecot, start_dovecot
from tests.support.postfix import UNDELIVERABLE, require_postfix, start_postfix

PFI = "pfi@hopital-test.mssante.fr"
PASSWORD = "mot-de-passe-de-test"
ABSENT = Rct(UNDELIVERABLE, "810000999999", "ABSENT", "Jean")     # accepted by the relay, then bounced
DONE, UNRECOGNISED = "Liaison/Traités", "Liaison/Non reconnus"


@pytest.fixture(scope="module")
def servers():
    """Dovecot with the structure's mailbox, and Postfix delivering the structure's mail into it."""
    require_postfix()
    require_dovecot()
    dovecot = start_dovecot({PFI: PASSWORD})
    try:
        postfix = start_postfix(pki=dovecot.pki, mailboxes={PFI: dovecot.maildir(PFI)})
        try:
            yield dovecot, postfix
        finally:
            postfix.stop()
    finally:
        dovecot.stop()


@pytest.fixture(params=["idle"])
async def pipe(request, servers, tmp_path):
    dovecot, postfix = servers
    imap = ImapSettings(host="127.0.0.1", port=dovecot.port, user=PFI, password=PASSWORD,
                        client_cert=str(dovecot.pki.client_cert), client_key=str(dovecot.pki.client_key),
                        ca_file=str(dovecot.pki.ca_cert), batch=5, poll_interval=1.0, idle_timeout=30.0,
                        reconnect_delay=0.2, timeout=10.0, idle=request.param == "idle")
    pipe = Pipeline(tmp_path, postfix.pki, postfix.port, imap=imap)
    await pipe.start()
    yield pipe
    await pipe.stop()


async def send_document(pipe: Pipeline, control_id: str, recipients, **flags) -> str:
    """MLLP in; wait until the relay took the mail; the Message-ID it went out with."""
    cda = make_cda()
    raw = encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id=control_id,
                                      recipients=recipients, flags=flags))
    assert (await pipe.send(raw)).code == "AA"
    record = await pipe.wait_final(control_id)
    [mail] = await pipe.journal.sent_mails(record.key)
    return mail.message_id


async def reply_as_recipient(postfix, sender: str, raw: bytes) -> None:
    """The recipient's software answers: a mail to the structure's mailbox through the relay."""
    mailer = SmtpMailer("localhost", postfix.port, client_cert=postfix.pki.client_cert,
                        client_key=postfix.pki.client_key, ca_file=postfix.pki.ca_cert, timeout=10)
    try:
        [result] = await mailer.send(raw, sender=sender, recipients=[PFI])
        assert result.code == 250, result
    finally:
        await mailer.close()


def segments(zam: str, name: str) -> list[str]:
    return [s for s in zam.split("\r") if s.startswith(name)]


async def test_real_dsns_give_the_final_zam_z02_delivered_and_failed(pipe, servers):
    dovecot, _ = servers
    message_id = await send_document(pipe, "NOT-DSN-1", [DR_MARTIN, ABSENT], ACK_RECEPTION="Y")

    # Relay acceptance (Z02 Y x2), then the DSNs: delivered for Martin (Z02 Y), failed for the absent one (Z02 N).
    zams = await pipe.zams("NOT-DSN-1", "Z02", 4)
    assert len(zams) == 4, pipe.his.received
    failed = [z for z in zams if "|N^^expandedYes-NoIndicator|" in z]
    assert len(failed) == 1 and ABSENT.address in failed[0]
    [err] = segments(failed[0], "ERR")
    assert "MSSNotDelivered" in err and "5.1.1" in err
    mail = await pipe.journal.sent_mail(message_id=message_id)
    by_address = {r.address: r for r in mail.recipients}
    assert by_address[DR_MARTIN.address].relayed_at and by_address[DR_MARTIN.address].delivered_at
    assert by_address[ABSENT.address].failed_at and not by_address[ABSENT.address].delivered_at
    assert by_address[DR_MARTIN.address].delivered_at >= by_address[DR_MARTIN.address].relayed_at.replace(
        microsecond=0)
    assert (await pipe.record("NOT-DSN-1")).state is MessageState.PARTIAL     # the relay took both, one failed
    outcomes = {o.destination: o.status for o in await pipe.journal.outcomes(mail.delivery_key)}
    assert outcomes == {DR_MARTIN.address: OutcomeStatus.ACCEPTED, ABSENT.address: OutcomeStatus.FAILED}
    kept = [n for n in await pipe.journal.notices() if n.envelope_id == mail.envelope_id]
    assert {n.kind for n in kept} == {"dsn"} and len(kept) == 2
    await eventually(lambda: len(dovecot.messages(PFI, DONE)) >= 2, "both DSNs moved to Traités",
                     timeout=20.0)                                    # moved once applied, never deleted

    lines: list[str] = []
    assert await show(pipe.engine.settings, mail.message_key, raw=False, out=lines.append) == 0
    shown = "\n".join(lines)
    assert f"{mail.message_id} ENVID {mail.envelope_id}" in shown
    per_recipient = lines[next(i for i, line in enumerate(lines) if line.startswith("mails")):]
    [martin] = [line for line in per_recipient if line.strip().startswith(DR_MARTIN.address)]
    [absent] = [line for line in per_recipient if line.strip().startswith(ABSENT.address)]
    assert "relayed 20" in martin and "delivered 20" in martin
    assert "relayed 20" in absent and "failed 20" in absent and "5.1.1" in absent


@pytest.mark.parametrize("pipe", ["idle", "polling"], indirect=True)
async def test_an_mdn_processed_gives_zam_z03_once_even_when_delivered_twice(pipe, servers):
    _, postfix = servers
    message_id = await send_document(pipe, "NOT-MDN-1", [DR_MARTIN], ACK_LECTURE_MSS="Y")
    mdn = mdn_mail(original_message_id=message_id, reader=DR_MARTIN.address, to=PFI)

    await reply_as_recipient(postfix, DR_MARTIN.address, mdn)
    [z03] = await pipe.zams("NOT-MDN-1", "Z03", 1)
    assert "ACK_LECTURE_MSS" in z03 and f"^^X.400^{DR_MARTIN.address}" in z03 and "|Y^^expandedYes" in z03

    dovecot, reader = servers[0], pipe.engine.notice_reader
    done = len(dovecot.messages(PFI, DONE))
    await reply_as_recipient(postfix, DR_MARTIN.address, mdn)            # the same notice again
    await eventually(lambda: len(dovecot.messages(PFI, DONE)) > done, "the second MDN moved to Traités",
                     timeout=20.0)                                    # read, applied, moved
    assert len(await pipe.zams("NOT-MDN-1", "Z03", 2, timeout=2)) == 1
    assert reader.handled >= 3                                           # the DSN, the MDN, its copy


async def test_an_mdn_error_and_an_error_mail_carry_the_ans_code_to_the_his(pipe, servers):
    _, postfix = servers
    message_id = await send_document(pipe, "NOT-ERR-1", [DR_MARTIN, ABSENT], ACK_LECTURE_MSS="Y")

    await reply_as_recipient(postfix, DR_MARTIN.address, mdn_mail(
        original_message_id=message_id, reader=DR_MARTIN.address, to=PFI, error="902^Identifiant de patient inconnu"))
    await reply_as_recipient(postfix, ABSENT.address, error_mail(
        original_message_id=message_id, sender=ABSENT.address, to=PFI, code="903", label="Document illisible"))

    zams = await pipe.zams("NOT-ERR-1", "Z03", 2)
    by_reader = {next(a for a in (DR_MARTIN.address, ABSENT.address) if a in z): z for z in zams}
    assert "902^Identifiant de patient inconnu^MSSERRORCODE" in segments(by_reader[DR_MARTIN.address], "ERR")[0]
    assert "903^Document illisible^MSSERRORCODE" in segments(by_reader[ABSENT.address], "ERR")[0]


async def test_garbage_is_journaled_and_moved_aside_and_the_channel_goes_on(pipe, servers):
    dovecot, postfix = servers
    before = len(dovecot.messages(PFI, UNRECOGNISED))
    await reply_as_recipient(postfix, "quelquun@hopital-test.mssante.fr",
                             b"From: quelquun@hopital-test.mssante.fr\r\nTo: " + PFI.encode()
                             + b"\r\nSubject: Bonjour\r\nMessage-ID: <garbage-1@hopital-test>\r\n\r\nPas un accuse.\r\n")
    kept = await wait_for_notice(pipe, lambda n: n.notice_id == "<garbage-1@hopital-test>")
    assert kept.verdict == NoticeVerdict.MALFORMED and "expected a delivery status notification" in kept.detail
    await eventually(lambda: len(dovecot.messages(PFI, UNRECOGNISED)) > before, "the garbage moved to Non reconnus",
                     timeout=20.0)
    lines: list[str] = []
    assert await notices(pipe.engine.settings, unrecognised=True, limit=10, out=lines.append) == 0
    assert any("<garbage-1@hopital-test>" in line and "malformed" in line for line in lines)

    message_id = await send_document(pipe, "NOT-GARB-1", [DR_MARTIN], ACK_LECTURE_MSS="Y")
    await reply_as_recipient(postfix, DR_MARTIN.address, mdn_mail(original_message_id=message_id,
                                                                  reader=DR_MARTIN.address, to=PFI))
    assert len(await pipe.zams("NOT-GARB-1", "Z03", 1)) == 1


async def test_dovecot_restarted_mid_run_the_reader_reconnects_and_misses_nothing(pipe, servers):
    dovecot, postfix = servers
    message_id = await send_document(pipe, "NOT-RST-1", [DR_MARTIN], ACK_LECTURE_MSS="Y")
    reader = pipe.engine.notice_reader
    await eventually(lambda: reader.connections >= 1, "the reader connected", timeout=20.0)
    opened = reader.connections

    dovecot.restart()
    await reply_as_recipient(postfix, DR_MARTIN.address, mdn_mail(original_message_id=message_id,
                                                                  reader=DR_MARTIN.address, to=PFI))

    assert len(await pipe.zams("NOT-RST-1", "Z03", 1)) == 1
    assert reader.connections > opened


async def wait_for_notice(pipe: Pipeline, match, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        found = [n for n in await pipe.journal.notices(limit=500) if match(n)]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no such notice within {timeout}s: {await pipe.journal.notices()}")
        await asyncio.sleep(0.1)


async def test_a_full_mailbox_is_worked_through_in_batches(pipe, servers):
    """Twelve old mails (the reader fetches five at a time): each one journaled and moved."""
    import aioimaplib

    from channels.smtp.tls import client_context
    from channels.testing.notices import dsn_mail
    dovecot, _ = servers
    reader = pipe.engine.notice_reader
    await eventually(lambda: reader.connections >= 1, "the reader connected", timeout=20.0)
    handled = reader.handled
    tls = client_context(client_cert=dovecot.pki.client_cert, client_key=dovecot.pki.client_key,
                         ca_file=dovecot.pki.ca_cert)
    imap = aioimaplib.IMAP4(host="127.0.0.1", port=dovecot.port, ssl_context=tls, timeout=10)
    await imap.wait_hello_from_server()
    await imap.login(PFI, PASSWORD)
    for i in range(12):
        await imap.append(dsn_mail(envelope_id=f"OLD{i:03d}", recipient=DR_MARTIN.address,
                                   message_id=f"<old-{i}@relay>"), mailbox="INBOX")
    await imap.logout()

    await eventually(lambda: reader.handled >= handled + 12, "the twelve mails handled",
                     timeout=60)                                      # a busy CI machine is slow
    kept = {n.notice_id for n in await pipe.journal.notices(limit=500, verdicts=frozenset({NoticeVerdict.UNMATCHED}))}
    assert {f"<old-{i}@relay>" for i in range(12)} <= kept
    assert not dovecot.messages(PFI)                                     # the inbox is empty, nothing deleted
