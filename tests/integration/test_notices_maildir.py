"""Notices read from a local Maildir (``[notices] maildir``), on the real engine path: MLLP in, the mail relayed to
the TLS mail sink, the notices a local MTA would deliver written into the structure's Maildir (``new/``), the
reader applies them and the fake HIS gets its final ZAM^Z02 and its ZAM^Z03; mails are moved to Maildir++ folders,
never deleted."""

from __future__ import annotations

import asyncio

import pytest

from channels.app.settings import settings_from_dict
from channels.notices.settings import MaildirSettings
from channels.testing.cda import make_cda
from channels.testing.maildir import deliver, make_maildir
from channels.testing.messages import DR_MARTIN, Patient, encode_message, make_pfi_oru
from channels.testing.notices import dsn_mail, mdn_mail
from router.errors import ConfigError
from router.ports import NoticeVerdict
from tests.support.poll import eventually
from tests.integration.harness import Pipeline, sink_pipeline

PFI = "pfi@hopital-test.mssante.fr"
DONE, UNRECOGNISED = ".Liaison.Traités", ".Liaison.Non reconnus"


@pytest.fixture
async def pipe(tmp_path):
    box = make_maildir(tmp_path / "pfi-Maildir")
    pipe = await sink_pipeline(tmp_path, notices_maildir=MaildirSettings(path=box, batch=3, poll_interval=0.2))
    yield pipe
    await pipe.stop()


def box(pipe: Pipeline):
    return pipe.engine.settings.notices_maildir.path


def mails_in(pipe: Pipeline, folder: str = "") -> list:
    root = box(pipe) / folder if folder else box(pipe)
    return sorted(p for sub in ("new", "cur") for p in (root / sub).iterdir())


async def send_document(pipe: Pipeline, control_id: str, **flags):
    cda = make_cda()
    raw = encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id=control_id,
                                      recipients=[DR_MARTIN], flags=flags))
    assert (await pipe.send(raw)).code == "AA"
    record = await pipe.wait_final(control_id)
    [mail] = await pipe.journal.sent_mails(record.key)
    return mail


async def test_a_delivered_dsn_in_the_maildir_gives_the_final_zam_z02(pipe):
    mail = await send_document(pipe, "MD-DSN-1", ACK_RECEPTION="Y")
    assert len(await pipe.zams("MD-DSN-1", "Z02", 1)) == 1          # the relay took it

    deliver(box(pipe), dsn_mail(envelope_id=mail.envelope_id, recipient=DR_MARTIN.address, to=PFI,
                                original_message_id=mail.message_id))
    zams = await pipe.zams("MD-DSN-1", "Z02", 2)
    assert len(zams) == 2 and all("|Y^^expandedYes-NoIndicator|" in z for z in zams)
    [recipient] = (await pipe.journal.sent_mail(message_id=mail.message_id)).recipients
    assert recipient.relayed_at and recipient.delivered_at
    await eventually(lambda: len(mails_in(pipe, DONE)) == 1, "the DSN moved to Traités", timeout=20.0)
    assert mails_in(pipe) == []                                          # moved, not deleted
    [moved] = mails_in(pipe, DONE)
    assert moved.parent.name == "cur" and moved.name.endswith(":2,S") and b"delivery-status" in moved.read_bytes()
    assert (box(pipe) / DONE / "maildirfolder").exists()


async def test_an_mdn_processed_gives_zam_z03_once_even_when_delivered_twice(pipe):
    mail = await send_document(pipe, "MD-MDN-1", ACK_LECTURE_MSS="Y")
    mdn = mdn_mail(original_message_id=mail.message_id, reader=DR_MARTIN.address, to=PFI)

    deliver(box(pipe), mdn)
    [z03] = await pipe.zams("MD-MDN-1", "Z03", 1)
    assert "ACK_LECTURE_MSS" in z03 and f"^^X.400^{DR_MARTIN.address}" in z03 and "|Y^^expandedYes" in z03

    deliver(box(pipe), mdn)                                              # the same notice again
    await eventually(lambda: len(mails_in(pipe, DONE)) == 2, "both MDNs moved to Traités", timeout=20.0)
    assert len(await pipe.zams("MD-MDN-1", "Z03", 2, timeout=1.0)) == 1
    [recipient] = (await pipe.journal.sent_mail(message_id=mail.message_id)).recipients
    assert recipient.read_at


async def test_garbage_is_moved_to_non_reconnus_and_the_reader_goes_on(pipe):
    deliver(box(pipe), b"From: quelquun@hopital-test.mssante.fr\r\nTo: " + PFI.encode()
            + b"\r\nSubject: Bonjour\r\nMessage-ID: <garbage-md@hopital-test>\r\n\r\nPas un accuse.\r\n")
    await eventually(lambda: len(mails_in(pipe, UNRECOGNISED)) == 1, "the garbage moved to Non reconnus", timeout=20.0)
    [kept] = [n for n in await pipe.journal.notices(limit=50) if n.notice_id == "<garbage-md@hopital-test>"]
    assert kept.verdict == NoticeVerdict.MALFORMED

    mail = await send_document(pipe, "MD-GARB-1", ACK_LECTURE_MSS="Y")
    deliver(box(pipe), mdn_mail(original_message_id=mail.message_id, reader=DR_MARTIN.address, to=PFI))
    assert len(await pipe.zams("MD-GARB-1", "Z03", 1)) == 1


async def test_old_mails_in_cur_are_worked_through_in_batches(pipe):
    """Seven mails a client left in ``cur/`` (the reader takes three at a time): each journaled and moved."""
    root = box(pipe)
    await eventually(lambda: pipe.engine.notice_reader.passes >= 1, "a first pass of the reader", timeout=20.0)
    for i in range(7):
        path = deliver(root, dsn_mail(envelope_id=f"OLDMD{i:03d}", recipient=DR_MARTIN.address, to=PFI,
                                      message_id=f"<old-md-{i}@relay>"))
        path.rename(root / "cur" / f"{path.name}:2,S")
    await eventually(lambda: len(mails_in(pipe, UNRECOGNISED)) == 7, "seven mails moved to Non reconnus", timeout=20.0)
    kept = {n.notice_id for n in await pipe.journal.notices(limit=100, verdicts=frozenset({NoticeVerdict.UNMATCHED}))}
    assert {f"<old-md-{i}@relay>" for i in range(7)} <= kept
    assert mails_in(pipe) == []


def test_settings_read_one_notice_source_and_name_the_key(tmp_path):
    settings = settings_from_dict({"notices": {"maildir": "Maildir", "poll_interval": 2}}, base=tmp_path)
    assert settings.notices_maildir == MaildirSettings(path=tmp_path / "Maildir", poll_interval=2.0)
    assert settings.imap is None
    with pytest.raises(ConfigError) as both:
        settings_from_dict({"notices": {"maildir": "Maildir"},
                            "imap": {"url": "imaps://imap.example:993", "user": "pfi@x"}},
                           env={"LIAISON_IMAP_PASSWORD": "p"}, base=tmp_path)
    assert "notices.maildir" in str(both.value) and "imap.url" in str(both.value)
    with pytest.raises(ConfigError) as folder:
        settings_from_dict({"notices": {"maildir": "Maildir", "done_folder": "Traités"}}, base=tmp_path)
    assert "notices.done_folder" in str(folder.value)


async def test_a_maildir_created_after_the_start_is_read_once_it_exists(tmp_path):
    """The MTA creates the Maildir at the first mail: the reader waits for it and keeps running."""
    later = tmp_path / "not-yet" / "Maildir"
    pipe = await sink_pipeline(tmp_path, notices_maildir=MaildirSettings(path=later, poll_interval=0.2))
    try:
        mail = await send_document(pipe, "MD-LATE-1", ACK_LECTURE_MSS="Y")
        await asyncio.sleep(0.5)                                         # a few polls without the Maildir
        assert pipe.engine.notice_reader.passes == 0
        deliver(later, mdn_mail(original_message_id=mail.message_id, reader=DR_MARTIN.address, to=PFI))
        assert len(await pipe.zams("MD-LATE-1", "Z03", 1)) == 1
    finally:
        await pipe.stop()
