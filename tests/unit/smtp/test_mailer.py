"""SmtpMailer against the aiosmtpd sink over real TLS with client certificates.

What every relay must do (per-recipient refusals, client certificates, a relay that is down) is in
the Mailer contract suite, tests/contract/test_mailer.py, which runs against this sink and Postfix.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from structlog.testing import capture_logs

from channels.smtp.mailer import SmtpMailer, xtext
from router.errors import ConfigError, PeerUnavailable, RejectedByPeer
from router.ports import RecipientStatus

SENDER = "pfi@hopital-test.mssante.fr"
MARTIN = "dr.martin@hopital-test.mssante.fr"
DURAND = "dr.durand@hopital-test.mssante.fr"
LABO = "biologie@labo-test.mssante.fr"
PATIENT = "280017512345678@patient.mssante.fr"
MESSAGE = (b"From: pfi@hopital-test.mssante.fr\r\nTo: dr.martin@hopital-test.mssante.fr\r\n"
           b"Subject: XDM/1.0/DDM+Test\r\nX-MSS-NIL: TEST-0001\r\n\r\nBonjour,\r\n.ligne qui commence par un point\r\n")


async def test_delivers_with_the_client_certificate(start_sink, make_mailer, tmp_path):
    sink = await start_sink()
    mailer = make_mailer(sink.port)

    results = await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])

    assert [(r.address, r.status, r.code) for r in results] == [(MARTIN, RecipientStatus.ACCEPTED, 250)]
    [mail] = await sink.wait_for(1)
    assert mail.data == MESSAGE                      # dot-stuffing undone by the server: same bytes
    assert mail.sender == SENDER and mail.recipients == (MARTIN,)
    assert mail.client_subject == "pfi.hopital-test.mssante.fr"
    [stored] = mail.files
    assert stored.parent == sink.maildir / MARTIN / "new"
    assert stored.read_bytes().endswith(MESSAGE)


async def test_implicit_tls(start_sink, make_mailer):
    sink = await start_sink(implicit_tls=True)
    mailer = make_mailer(sink.port, security="tls")

    results = await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])

    assert results[0].status is RecipientStatus.ACCEPTED
    [mail] = await sink.wait_for(1)
    assert mail.client_subject == "pfi.hopital-test.mssante.fr"


async def test_temporary_refusal_then_acceptance(start_sink, make_mailer):
    sink = await start_sink(rcpt_script={MARTIN: [451, 250]})
    mailer = make_mailer(sink.port)

    first = await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    assert [(r.status, r.code) for r in first] == [(RecipientStatus.TEMPORARY, 451)]
    assert sink.messages == [] and sink.data_commands == 0     # no DATA when nobody was accepted

    second = await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    assert [(r.status, r.code) for r in second] == [(RecipientStatus.ACCEPTED, 250)]
    [mail] = await sink.wait_for(1)
    assert mail.recipients == (MARTIN,)


async def test_failed_data_marks_accepted_recipients_temporary(start_sink, make_mailer):
    sink = await start_sink(rcpt_script={DURAND: [550]}, data_script=[452, 250])
    mailer = make_mailer(sink.port)

    results = await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN, DURAND, LABO])

    assert [(r.status, r.code) for r in results] == [
        (RecipientStatus.TEMPORARY, 452), (RecipientStatus.REJECTED, 550), (RecipientStatus.TEMPORARY, 452)]
    assert sink.messages == []
    again = await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])   # the session is still usable
    assert again[0].status is RecipientStatus.ACCEPTED
    assert sink.connections == 1


async def test_data_refused_for_good_rejects_accepted_recipients(start_sink, make_mailer):
    sink = await start_sink(data_script=[554])
    mailer = make_mailer(sink.port)

    results = await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN, LABO])

    assert [(r.status, r.code) for r in results] == [(RecipientStatus.REJECTED, 554)] * 2


async def test_sender_refused_for_good_is_rejected_by_peer(start_sink, make_mailer):
    sink = await start_sink(mail_script=["553 5.7.1 Sender address rejected: not owned by user"])
    mailer = make_mailer(sink.port)

    with pytest.raises(RejectedByPeer, match="MAIL FROM: 553 5.7.1") as caught:
        await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    assert caught.value.code == 553


async def test_sender_refused_for_now_is_peer_unavailable(start_sink, make_mailer):
    sink = await start_sink(mail_script=[451, 250])
    mailer = make_mailer(sink.port)

    with pytest.raises(PeerUnavailable, match="451"):
        await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    results = await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    assert results[0].status is RecipientStatus.ACCEPTED


async def test_421_is_peer_unavailable_and_drops_the_session(start_sink, make_mailer):
    sink = await start_sink(rcpt_script={MARTIN: [421, 250]})
    mailer = make_mailer(sink.port)

    with pytest.raises(PeerUnavailable, match="421"):
        await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    assert sink.connections == 2


async def test_connection_refused_is_peer_unavailable(make_mailer):
    with socket.socket() as sock:                    # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mailer = make_mailer(port)

    with pytest.raises(PeerUnavailable, match="cannot connect") as caught:
        await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    assert isinstance(caught.value.__cause__, Exception)


async def test_silent_relay_times_out_as_peer_unavailable(make_mailer):
    writers = []

    async def never_greet(reader, writer):          # hold the connection open without a 220 banner
        writers.append(writer)

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    try:
        mailer = make_mailer(server.sockets[0].getsockname()[1], timeout=0.3)
        with pytest.raises(PeerUnavailable, match="timed out"):
            await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    finally:
        server.close()
        for writer in writers:
            writer.close()
    assert writers                                  # it did connect, then gave up waiting


async def test_relay_certificate_from_an_unknown_ca_is_refused(start_sink, make_mailer, pki):
    sink = await start_sink()
    mailer = make_mailer(sink.port, ca_file=pki.untrusted_ca_cert)

    with pytest.raises(PeerUnavailable, match="TLS handshake .* failed"):
        await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    assert sink.messages == []


async def test_relay_name_must_match_its_certificate(start_sink, make_mailer):
    sink = await start_sink()
    mailer = make_mailer(sink.port, server_hostname="relay.ailleurs.example")

    with pytest.raises(PeerUnavailable, match="TLS handshake"):
        await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])


async def test_connection_is_reused_across_sends(start_sink, make_mailer):
    sink = await start_sink()
    mailer = make_mailer(sink.port)

    await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    await mailer.send(MESSAGE, sender=SENDER, recipients=[LABO])

    mails = await sink.wait_for(2)
    assert [m.recipients for m in mails] == [(MARTIN,), (LABO,)]
    assert sink.connections == 1
    assert {m.connection for m in mails} == {1}


async def test_reconnects_when_the_relay_closed_the_connection(start_sink, make_mailer):
    sink = await start_sink()
    mailer = make_mailer(sink.port)
    await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])

    sink.drop_connections()
    results = await mailer.send(MESSAGE, sender=SENDER, recipients=[LABO])

    assert results[0].status is RecipientStatus.ACCEPTED
    mails = await sink.wait_for(2)
    assert [m.connection for m in mails] == [1, 2]


async def test_pool_sends_concurrently_over_several_connections(start_sink, make_mailer):
    sink = await start_sink()
    mailer = make_mailer(sink.port, pool_size=3)

    batches = await asyncio.gather(*(mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN]) for _ in range(6)))

    assert all(results[0].status is RecipientStatus.ACCEPTED for results in batches)
    mails = await sink.wait_for(6)
    assert 1 < sink.connections <= 3
    assert len({m.connection for m in mails}) == sink.connections


async def test_close_says_quit_and_a_later_send_reconnects(start_sink, make_mailer):
    sink = await start_sink()
    mailer = make_mailer(sink.port)
    await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])

    await mailer.close()
    await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])

    assert sink.connections == 2


async def test_logs_carry_no_recipient_address(start_sink, make_mailer):
    sink = await start_sink()
    mailer = make_mailer(sink.port)

    with capture_logs() as logs:
        await mailer.send(MESSAGE, sender=SENDER, recipients=[PATIENT])

    assert any(entry["event"] == "smtp.sent" for entry in logs)
    assert "280017512345678" not in repr(logs)


async def test_invalid_recipient_address_is_rejected_without_asking_the_relay(start_sink, make_mailer):
    sink = await start_sink()
    mailer = make_mailer(sink.port)

    results = await mailer.send(MESSAGE, sender=SENDER, recipients=["dr martin@hopital-test.mssante.fr\r\nRSET",
                                                                   MARTIN])

    assert [r.status for r in results] == [RecipientStatus.REJECTED, RecipientStatus.ACCEPTED]
    [mail] = await sink.wait_for(1)
    assert mail.recipients == (MARTIN,)


def test_from_url_reads_security_port_and_options(pki):
    tls = dict(client_cert=pki.client_cert, client_key=pki.client_key, ca_file=pki.ca_cert)

    starttls = SmtpMailer.from_url("smtp://relay.hopital-test.mssante.fr?timeout=5&pool=2&helo=pfi.test", **tls)
    implicit = SmtpMailer.from_url("smtps://relay.hopital-test.mssante.fr", **tls)
    explicit = SmtpMailer.from_url("smtp://relay.hopital-test.mssante.fr:2525?security=starttls", **tls)

    assert (starttls.security, starttls.port, starttls.timeout, starttls.helo) == ("starttls", 587, 5.0, "pfi.test")
    assert (implicit.security, implicit.port) == ("tls", 465)
    assert explicit.port == 2525
    assert starttls.tls_context.minimum_version >= __import__("ssl").TLSVersion.TLSv1_2


@pytest.mark.parametrize("url, key", [
    ("http://relay.example.fr", "smtp.url"),
    ("smtp://relay.example.fr?sécurité=tls", "smtp.url"),
    ("smtp://relay.example.fr?security=none", "smtp.security"),
    ("smtp://relay.example.fr?min_tls=TLSv1_1", "smtp.min_tls"),
])
def test_from_url_names_the_wrong_key(url, key):
    with pytest.raises(ConfigError) as caught:
        SmtpMailer.from_url(url)
    assert caught.value.key == key


def test_missing_client_certificate_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="mss.client_cert: .*absent.pem does not exist"):
        SmtpMailer("localhost", 587, client_cert=tmp_path / "absent.pem", client_key=tmp_path / "absent.key")


async def test_by_default_sequential_sends_keep_to_one_connection(start_sink, make_mailer):
    sink = await start_sink()
    mailer = make_mailer(sink.port)
    for _ in range(5):
        await mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN])
    await sink.wait_for(5)
    assert sink.connections == 1


async def test_by_default_a_slow_relay_gets_concurrent_sends_one_connection_each(start_sink, make_mailer):
    # A relay holding each DATA reply: sent one at a time (the former pool of 1), 8 mails would queue behind
    # each other; the default pool keeps them all in flight at once, each on a connection of its own.
    sink = await start_sink(data_delay=0.3)
    mailer = make_mailer(sink.port)
    batches = await asyncio.gather(*(mailer.send(MESSAGE, sender=SENDER, recipients=[MARTIN]) for _ in range(8)))
    assert all(results[0].status is RecipientStatus.ACCEPTED for results in batches)
    mails = await sink.wait_for(8)
    assert sink.connections == 8 and len({m.connection for m in mails}) == 8


def test_xtext_keeps_printable_ascii_and_escapes_plus_equals_and_the_rest():
    assert xtext("dr.martin@hopital-test.mssante.fr") == b"dr.martin@hopital-test.mssante.fr"
    assert xtext("a+b=c d\u00e9") == b"a+2Bb+3Dc+20d+C3+A9"
