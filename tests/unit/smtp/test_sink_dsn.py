"""The demo's relay (the TLS mail sink) with ``dsn=True``: announces DSN and keeps ENVID and NOTIFY, which
``liaison demo`` needs to answer a mail with the delivery notice it asked for."""

from __future__ import annotations

MESSAGE = (b"From: pfi@hopital-test.mssante.fr\r\nTo: dr.martin@hopital-test.mssante.fr\r\n"
           b"Subject: test\r\nMessage-ID: <dsn-sink@test>\r\n\r\nBonjour.\r\n")
MARTIN, LABO = "dr.martin@hopital-test.mssante.fr", "biologie@labo-test.mssante.fr"


async def test_a_sink_offering_dsn_keeps_envid_and_notify_per_recipient(start_sink, make_mailer):
    sink = await start_sink(dsn=True, rcpt_script={LABO: [550]})
    mailer = make_mailer(sink.port)
    results = await mailer.send(MESSAGE, sender="pfi@hopital-test.mssante.fr", recipients=[MARTIN, LABO],
                                envelope_id="ENV+id=42")     # sent as xtext: ENV+2Bid+3D42
    assert [r.code for r in results] == [250, 550]
    [mail] = await sink.wait_for(1)
    assert mail.envelope_id == "ENV+id=42"
    assert mail.recipients == (MARTIN,)
    assert mail.notify == {MARTIN: "SUCCESS,FAILURE"}


async def test_a_sink_without_dsn_is_asked_for_none(start_sink, make_mailer):
    sink = await start_sink()
    await make_mailer(sink.port).send(MESSAGE, sender="pfi@hopital-test.mssante.fr", recipients=[MARTIN],
                                      envelope_id="ENV42")
    [mail] = await sink.wait_for(1)
    assert mail.envelope_id == "" and mail.notify == {MARTIN: ""}
