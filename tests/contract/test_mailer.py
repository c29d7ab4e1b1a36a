"""The Mailer contract: ``SmtpMailer`` must behave the same against every relay it is pointed at.

Relays, both TLS-only with a client certificate required, both knowing the same two odd
mailboxes (``inconnu@`` unknown, ``550 5.1.1``; ``occupe@`` busy, ``450 4.2.1``):

- ``sink``: the test and demo relay :class:`channels.testing.mail_sink.SmtpSink` (aiosmtpd),
  started per test with those two mailboxes scripted;
- ``postfix``: a real Postfix, private to the test session (:mod:`tests.support.postfix`);
  skipped when it cannot run here, failed instead when ``LIAISON_REQUIRE_POSTFIX=1``.

A relay that is down is played by a :class:`~tests.support.tcp_proxy.TcpProxy` in front of it.
What only one relay can show (the sink's scripted DATA replies, Postfix's own reply texts,
connection reuse) stays in ``tests/unit/smtp`` and ``tests/integration/test_postfix_mail.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from channels.smtp.mailer import SmtpMailer
from channels.testing.pki import TestPki, make_test_pki
from router.errors import PeerUnavailable
from router.ports import RecipientResult, RecipientStatus
from tests.support.postfix import BUSY, BUSY_REPLY, UNKNOWN, UNKNOWN_REPLY, postfix_fixture
from tests.support.smtp_sink import SmtpSink
from tests.support.tcp_proxy import TcpProxy

postfix = postfix_fixture()

SENDER = "pfi@hopital-test.mssante.fr"
MARTIN = "dr.martin@hopital-test.mssante.fr"
LABO = "biologie@labo-test.mssante.fr"
[INCONNU] = UNKNOWN
[OCCUPE] = BUSY
DEADLINE = 20.0


def mime(message_id: str) -> bytes:
    """A small MIME message whose body has the lines SMTP transparency must carry (leading dots)."""
    return (f"From: {SENDER}\r\nTo: {MARTIN}\r\nSubject: XDM/1.0/DDM+Contrat\r\n"
            f"Message-ID: <{message_id}>\r\nDate: Fri, 14 Mar 2025 09:30:00 +0100\r\nMIME-Version: 1.0\r\n"
            "X-MSS-NIL: TEST-NIL-0001\r\nContent-Type: multipart/mixed; boundary=\"liaison-frontiere\"\r\n\r\n"
            "--liaison-frontiere\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            "Bonjour,\r\n.\r\n..deux points\r\n.une ligne qui commence par un point\r\n\r\n"
            "--liaison-frontiere\r\nContent-Type: application/zip; name=IHE_XDM.ZIP\r\n"
            "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=IHE_XDM.ZIP\r\n\r\n"
            "UEsDBBQAAAAIAAAAIQBkb2N1bWVudCBmaWN0aWY=\r\n--liaison-frontiere--\r\n").encode("ascii")


def lf(raw: bytes) -> bytes:
    """A message with LF line ends, as a Maildir keeps it (Postfix writes LF, the sink keeps CRLF)."""
    return raw.replace(b"\r\n", b"\n")


# ---------------------------------------------------------------------------- relays


@dataclass
class Relay:
    """A running relay: where it listens, the PKI it trusts, and what it delivered."""

    port: int
    pki: TestPki
    copies: Callable[[str, str], list[bytes]]      # (recipient, Message-ID) -> copies delivered, LF line ends

    async def arrived(self, recipient: str, message_id: str) -> list[bytes]:
        """The copies delivered to ``recipient``, waiting (up to a deadline) for the first one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while not (found := self.copies(recipient, message_id)):
            if loop.time() > deadline:
                pytest.fail(f"nothing delivered to {recipient} within {DEADLINE:g} s")
            await asyncio.sleep(0.05)
        return found


@pytest.fixture(scope="session")
def sink_pki(tmp_path_factory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("mailer-pki"))


async def sink_relay(request, tmp_path) -> AsyncIterator[Relay]:
    pki = request.getfixturevalue("sink_pki")
    sink = SmtpSink.from_pki(pki, tmp_path / "mail", rcpt_script={INCONNU: [UNKNOWN_REPLY], OCCUPE: [BUSY_REPLY]})
    await sink.start()

    def copies(recipient: str, message_id: str) -> list[bytes]:
        return [lf(path.read_bytes()) for mail in sink.messages for to, path in zip(mail.recipients, mail.files)
                if to == recipient and f"<{message_id}>".encode() in mail.data]

    yield Relay(sink.port, pki, copies)
    sink.stop()


async def postfix_relay(request, tmp_path) -> AsyncIterator[Relay]:
    instance = request.getfixturevalue("postfix")

    def copies(recipient: str, message_id: str) -> list[bytes]:
        return [lf(mail.raw) for mail in instance.delivered()
                if mail.recipient == recipient and mail.message["Message-ID"] == f"<{message_id}>"]

    yield Relay(instance.port, instance.pki, copies)


RELAYS = {"sink": sink_relay, "postfix": postfix_relay}


@pytest.fixture(params=sorted(RELAYS))
async def relay(request, tmp_path) -> AsyncIterator[Relay]:
    async for running in RELAYS[request.param](request, tmp_path):
        yield running


@pytest.fixture
async def make_mailer(relay) -> AsyncIterator[Callable[..., SmtpMailer]]:
    """``make_mailer(port=relay.port, **options)``: an SmtpMailer with the relay's client certificate."""
    made: list[SmtpMailer] = []

    def make(port: int | None = None, **options) -> SmtpMailer:
        pki = relay.pki
        options = {"client_cert": pki.client_cert, "client_key": pki.client_key, "ca_file": pki.ca_cert,
                   "timeout": 15.0, "helo": "pfi.hopital-test.mssante.fr", **options}
        made.append(SmtpMailer("localhost", relay.port if port is None else port, **options))
        return made[-1]

    yield make
    for mailer in made:
        await mailer.close()


def statuses(results: list[RecipientResult]) -> list[tuple[str, RecipientStatus, int]]:
    return [(r.address, r.status, r.code) for r in results]


def new_id() -> str:
    return f"{uuid.uuid4().hex}@hopital-test.mssante.fr"


# ---------------------------------------------------------------------------- per-recipient results


async def test_accepted_recipients_get_the_message_byte_for_byte(relay, make_mailer):
    message_id = new_id()
    message = mime(message_id)

    results = await make_mailer().send(message, sender=SENDER, recipients=[MARTIN, LABO])

    assert statuses(results) == [(MARTIN, RecipientStatus.ACCEPTED, 250), (LABO, RecipientStatus.ACCEPTED, 250)]
    for recipient in (MARTIN, LABO):
        [copy] = await relay.arrived(recipient, message_id)
        assert copy.endswith(lf(message))              # only trace headers (Return-Path, Received...) above it


async def test_a_refused_recipient_is_rejected_without_failing_the_others(relay, make_mailer):
    message_id = new_id()

    results = await make_mailer().send(mime(message_id), sender=SENDER, recipients=[MARTIN, INCONNU, LABO])

    assert statuses(results) == [(MARTIN, RecipientStatus.ACCEPTED, 250), (INCONNU, RecipientStatus.REJECTED, 550),
                                 (LABO, RecipientStatus.ACCEPTED, 250)]
    assert "5.1.1" in results[1].text
    await relay.arrived(MARTIN, message_id)
    await relay.arrived(LABO, message_id)
    assert relay.copies(INCONNU, message_id) == []


async def test_a_recipient_refused_for_now_is_temporary_and_the_others_are_served(relay, make_mailer):
    message_id = new_id()

    results = await make_mailer().send(mime(message_id), sender=SENDER, recipients=[OCCUPE, MARTIN])

    assert statuses(results) == [(OCCUPE, RecipientStatus.TEMPORARY, 450), (MARTIN, RecipientStatus.ACCEPTED, 250)]
    assert "4.2.1" in results[0].text
    await relay.arrived(MARTIN, message_id)
    assert relay.copies(OCCUPE, message_id) == []


# ---------------------------------------------------------------------------- the relay as a whole


async def test_a_relay_that_is_down_is_peer_unavailable(relay, make_mailer):
    async with TcpProxy(relay.port) as proxy:
        mailer = make_mailer(proxy.port)
        before = await mailer.send(mime(new_id()), sender=SENDER, recipients=[MARTIN])   # its session is kept
        assert before[0].status is RecipientStatus.ACCEPTED
        await proxy.stop()

        with pytest.raises(PeerUnavailable):
            await mailer.send(mime(new_id()), sender=SENDER, recipients=[MARTIN])


async def test_the_mailer_sends_again_once_the_relay_is_back(relay, make_mailer):
    async with TcpProxy(relay.port) as proxy:
        mailer = make_mailer(proxy.port)
        await proxy.stop()
        with pytest.raises(PeerUnavailable):
            await mailer.send(mime(new_id()), sender=SENDER, recipients=[MARTIN])
        await proxy.start()
        message_id = new_id()

        results = await mailer.send(mime(message_id), sender=SENDER, recipients=[MARTIN])

    assert statuses(results) == [(MARTIN, RecipientStatus.ACCEPTED, 250)]
    await relay.arrived(MARTIN, message_id)


async def test_a_client_without_its_certificate_is_refused(relay, make_mailer):
    message_id = new_id()
    mailer = make_mailer(client_cert=None, client_key=None)

    with pytest.raises(PeerUnavailable, match="certificate"):
        await mailer.send(mime(message_id), sender=SENDER, recipients=[MARTIN])
    assert relay.copies(MARTIN, message_id) == []


async def test_a_client_certificate_from_another_ca_is_refused(relay, make_mailer):
    message_id = new_id()
    mailer = make_mailer(client_cert=relay.pki.untrusted_client_cert, client_key=relay.pki.untrusted_client_key)

    with pytest.raises(PeerUnavailable, match="certificate"):
        await mailer.send(mime(message_id), sender=SENDER, recipients=[MARTIN])
    assert relay.copies(MARTIN, message_id) == []
