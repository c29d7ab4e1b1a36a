"""router.notices: a notice matched to its mail records each recipient's step once and queues the ZAM it calls for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.journal import SqliteJournal
from channels.notices.parse import parse_notice
from channels.testing.notices import dsn_mail, error_mail, mdn_mail
from router.model import MessageSource
from router.notices import NoticeDecider
from router.ports import (MailRecipient, MessageState, NoticeVerdict, Outcome, OutcomeStatus, ReceivedMessage,
                          SentMail)
from router.stages.zam import ZamQueue

MARTIN = "dr.martin@hopital-test.mssante.fr"
DUPONT = "dr.dupont@hopital-test.mssante.fr"
PFI = "pfi@hopital-test.mssante.fr"
MESSAGE_ID = "<3f2a9c@liaison.test>"
MSH = ("MSH|^~\\&|DXCARE|CHU-TEST|LIAISON|CHU-TEST|20260302101500||ORU^R01^ORU_R01|CTRL-42|P|2.5|||||FRA|"
       "UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2")


class RecordingBus:
    """Keeps what is published (the ZAMs queued for the HIS)."""

    def __init__(self):
        self.published: list[tuple[str, str, dict]] = []

    async def publish(self, queue: str, body: bytes, *, message_id: str, headers=None) -> None:
        self.published.append((queue, body.decode("utf-8"), dict(headers or {})))


@pytest.fixture
async def setup(tmp_path):
    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        key, _ = await journal.record_received(ReceivedMessage(
            raw=MSH.encode(), channel="his", sending_application="DXCARE", sending_facility="CHU-TEST",
            control_id="CTRL-42", message_type="ORU^R01", received_at=datetime.now(UTC)))
        source = MessageSource("DXCARE", "CHU-TEST", "LIAISON", "CHU-TEST", "CTRL-42", "ORU^R01", "2.5", msh=MSH)
        await journal.record_mail(SentMail(
            envelope_id="ENV42", message_id=MESSAGE_ID, message_key=key, document_id="DOC-42",
            delivery_key="DOC-42", source=source, ack_reception=True, ack_lecture=True,
            recipients=(MailRecipient(MARTIN, "810000123454"), MailRecipient(DUPONT, "810000999999"))))
        bus = RecordingBus()
        yield journal, bus, NoticeDecider(journal, ZamQueue(bus, journal, enabled=True)), key


async def test_a_delivered_dsn_marks_the_recipient_and_sends_a_final_z02_with_the_delivery_time(setup):
    journal, bus, decider, key = setup
    when = datetime(2026, 3, 2, 9, 16, 30, tzinfo=UTC)
    verdict = await decider.apply(parse_notice(dsn_mail(envelope_id="ENV42", recipient=MARTIN, when=when)))

    assert verdict is NoticeVerdict.MATCHED
    [(queue, zam, headers)] = bus.published
    assert queue == "acks.his" and headers["recipient"] == MARTIN
    assert "ZAM^Z02^ZAM_Z01" in zam and "ACK_RECEPTION_MSS" in zam and "|Y^^expandedYes-NoIndicator|" in zam
    assert "810000123454" in zam and "ERR" not in zam
    evn = [s for s in zam.split("\r") if s.startswith("EVN")][0]
    assert evn.split("|")[2].startswith(when.astimezone().strftime("%Y%m%d%H%M%S"))
    mail = await journal.sent_mail(envelope_id="ENV42")
    assert {r.address: r.delivered_at for r in mail.recipients}[MARTIN] == when


async def test_a_failed_dsn_sends_z02_n_with_the_status_code_and_text(setup):
    journal, bus, decider, _ = setup
    await decider.apply(parse_notice(dsn_mail(envelope_id="ENV42", recipient=DUPONT, action="failed",
                                              status="5.1.1", diagnostic="550 5.1.1 User unknown")))

    [(_, zam, _)] = bus.published
    err = [s for s in zam.split("\r") if s.startswith("ERR")][0]
    assert "|N^^expandedYes-NoIndicator|" in zam
    assert "MSSNotDelivered" in err and "5.1.1" in err and "User unknown" in err
    failed = {r.address: r for r in (await journal.sent_mail(envelope_id="ENV42")).recipients}[DUPONT]
    assert failed.failed_at is not None and "5.1.1" in failed.detail


async def test_a_failed_dsn_fails_the_outcome_the_relay_had_accepted_and_the_message_becomes_partial(setup):
    journal, _, decider, key = setup
    for address in (MARTIN, DUPONT):
        await journal.record_outcome(Outcome("DOC-42", address, OutcomeStatus.ACCEPTED, "250 ok",
                                             datetime.now(UTC), key))
    await journal.set_state(key, MessageState.DELIVERED, step="delivered")

    await decider.apply(parse_notice(dsn_mail(envelope_id="ENV42", recipient=DUPONT, action="failed",
                                              status="5.1.1", diagnostic="550 5.1.1 User unknown")))

    statuses = {o.destination: o.status for o in await journal.outcomes("DOC-42")}
    assert statuses == {MARTIN: OutcomeStatus.ACCEPTED, DUPONT: OutcomeStatus.FAILED}
    assert (await journal.message(key)).state is MessageState.PARTIAL


async def test_an_mdn_processed_sends_z03_with_the_reader(setup):
    _, bus, decider, _ = setup
    await decider.apply(parse_notice(mdn_mail(original_message_id=MESSAGE_ID, reader=MARTIN, to=PFI)))

    [(_, zam, _)] = bus.published
    assert "ZAM^Z03^ZAM_Z01" in zam and "ACK_LECTURE_MSS" in zam and "LECTEUR_MSS" in zam
    assert f"^^X.400^{MARTIN}" in zam and "|Y^^expandedYes-NoIndicator|" in zam


async def test_an_mdn_error_sends_z03_n_carrying_the_ans_code_and_label(setup):
    _, bus, decider, _ = setup
    await decider.apply(parse_notice(mdn_mail(original_message_id=MESSAGE_ID, reader=MARTIN, to=PFI,
                                              error="902^Identifiant de patient inconnu")))

    [(_, zam, _)] = bus.published
    err = [s for s in zam.split("\r") if s.startswith("ERR")][0]
    assert "ZAM^Z03" in zam and "|N^^expandedYes-NoIndicator|" in zam
    assert "902^Identifiant de patient inconnu" in err and "MSSERRORCODE" in err


async def test_the_ans_error_mail_sends_z03_n_too(setup):
    _, bus, decider, _ = setup
    await decider.apply(parse_notice(error_mail(original_message_id=MESSAGE_ID, sender=DUPONT, to=PFI,
                                                code="903", label="Document illisible")))

    [(_, zam, headers)] = bus.published
    assert headers["recipient"] == DUPONT and "903^Document illisible" in zam


async def test_the_same_notice_read_twice_sends_one_zam_and_is_kept_once(setup):
    journal, bus, decider, _ = setup
    raw = dsn_mail(envelope_id="ENV42", recipient=MARTIN, message_id="<dsn-twice@relay>")
    second_copy = dsn_mail(envelope_id="ENV42", recipient=MARTIN, message_id="<dsn-other-server@relay>")

    verdicts = [await decider.apply(parse_notice(raw)), await decider.apply(parse_notice(raw)),
                await decider.apply(parse_notice(second_copy))]

    assert verdicts == [NoticeVerdict.MATCHED, NoticeVerdict.DUPLICATE, NoticeVerdict.DUPLICATE]
    assert len(bus.published) == 1
    assert [n.notice_id for n in await journal.notices()] == ["<dsn-other-server@relay>", "<dsn-twice@relay>"]


async def test_a_notice_naming_no_mail_of_ours_is_kept_as_unmatched_and_answers_nothing(setup):
    journal, bus, decider, _ = setup
    verdict = await decider.apply(parse_notice(dsn_mail(envelope_id="NOT-OURS", recipient=MARTIN)))

    assert verdict is NoticeVerdict.UNMATCHED and bus.published == []
    [kept] = await journal.notices(verdicts=frozenset({NoticeVerdict.UNMATCHED}))
    assert "NOT-OURS" in kept.detail


async def test_a_zam_that_cannot_be_queued_leaves_the_step_unrecorded_for_the_next_reading(setup):
    journal, bus, decider, _ = setup

    async def refuse(*args, **kwargs):
        raise ConnectionError("bus down")
    bus.publish = refuse
    with pytest.raises(ConnectionError):
        await decider.apply(parse_notice(dsn_mail(envelope_id="ENV42", recipient=MARTIN)))

    assert {r.address: r.delivered_at for r in (await journal.sent_mail(envelope_id="ENV42")).recipients}[
        MARTIN] is None


async def test_a_dsn_faster_than_the_journaling_of_its_relay_answer_is_left_for_later(setup):
    from datetime import timedelta
    from router.notices import NoticeNotReady
    journal, bus, decider, key = setup
    assert await journal.claim("DOC-42", MARTIN, message_key=key, stale_after=timedelta(minutes=1))   # sending

    with pytest.raises(NoticeNotReady):
        await decider.apply(parse_notice(dsn_mail(envelope_id="ENV42", recipient=MARTIN)))

    assert bus.published == [] and await journal.notices() == []
    await journal.record_outcome(Outcome("DOC-42", MARTIN, OutcomeStatus.ACCEPTED, "250 ok", datetime.now(UTC), key))
    assert await decider.apply(parse_notice(dsn_mail(envelope_id="ENV42", recipient=MARTIN))) is NoticeVerdict.MATCHED


async def test_a_notice_about_our_mail_from_someone_not_among_its_recipients_is_unmatched(setup):
    journal, bus, decider, _ = setup
    verdict = await decider.apply(parse_notice(error_mail(original_message_id=MESSAGE_ID,
                                                          sender="robot@autre-test.mssante.fr", to=PFI)))

    assert verdict is NoticeVerdict.UNMATCHED and bus.published == []
    [kept] = await journal.notices()
    assert "robot@autre-test.mssante.fr" in kept.detail and kept.message_key     # which mail it named is kept


async def test_a_delayed_dsn_is_noted_without_a_step_or_a_zam(setup):
    journal, bus, decider, _ = setup
    verdict = await decider.apply(parse_notice(dsn_mail(envelope_id="ENV42", recipient=MARTIN, action="delayed",
                                                        status="4.4.1")))

    assert verdict is NoticeVerdict.MATCHED and bus.published == []
    assert "noted, no step" in (await journal.notices())[0].detail
