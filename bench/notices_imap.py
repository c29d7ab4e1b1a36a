"""How fast the IMAP notice reader works through a full mailbox: N DSNs for journaled mails in a private Dovecot.

    sudo .venv/bin/python -m bench.notices_imap [--count 1000] [--batch 50]

Journals N mails (SQLite), APPENDs one delivered DSN for each into the structure's mailbox of a
private Dovecot (TLS, client certificate required), then starts the reader and prints how long it
took until every DSN was applied (a ZAM queued for each) and moved to ``Liaison/Traités``, and the
process's peak RSS. Needs root and dovecot-imapd (the test support's private instance).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

import aioimaplib

from channels.journal import SqliteJournal
from channels.notices.imap import ImapNoticeReader
from channels.notices.settings import ImapSettings
from channels.smtp.tls import client_context
from channels.testing.dovecot import start_dovecot
from channels.testing.notices import dsn_mail
from router.model import MessageSource
from router.notices import NoticeDecider
from router.ports import MailRecipient, SentMail
from router.stages.zam import ZamQueue

PFI = "pfi@hopital-test.mssante.fr"
MARTIN = "dr.martin@hopital-test.mssante.fr"
MSH = "MSH|^~\\&|DXCARE|CHU|LIAISON|CHU|20260302101500||ORU^R01^ORU_R01|C1|P|2.5|||||FRA|UNICODE UTF-8"


class CountingBus:
    def __init__(self):
        self.published = 0

    async def publish(self, queue, body, *, message_id, headers=None):
        self.published += 1


async def main(count: int, batch: int) -> None:
    dovecot = start_dovecot({PFI: "bench"})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with SqliteJournal(Path(tmp) / "journal.sqlite") as journal:
                source = MessageSource("DXCARE", "CHU", "LIAISON", "CHU", "C1", "ORU^R01", msh=MSH)
                for i in range(count):
                    await journal.record_mail(SentMail(f"ENV{i:06d}", f"<m{i}@bench>", "K1", f"DOC-{i}",
                                                       f"DOC-{i}", source, ack_reception=True,
                                                       recipients=(MailRecipient(MARTIN, "810000123454"),)))
                tls = client_context(client_cert=dovecot.pki.client_cert, client_key=dovecot.pki.client_key,
                                     ca_file=dovecot.pki.ca_cert)
                imap = aioimaplib.IMAP4(host="127.0.0.1", port=dovecot.port, ssl_context=tls, timeout=30)
                await imap.wait_hello_from_server()
                await imap.login(PFI, "bench")
                for i in range(count):
                    await imap.append(dsn_mail(envelope_id=f"ENV{i:06d}", recipient=MARTIN), mailbox="INBOX")
                await imap.logout()
                bus = CountingBus()
                settings = ImapSettings(host="127.0.0.1", port=dovecot.port, user=PFI, password="bench",
                                        client_cert=str(dovecot.pki.client_cert),
                                        client_key=str(dovecot.pki.client_key), ca_file=str(dovecot.pki.ca_cert),
                                        batch=batch, reconnect_delay=0.2)
                reader = ImapNoticeReader(settings, journal, NoticeDecider(journal, ZamQueue(bus, journal,
                                                                                              enabled=True)))
                start = time.perf_counter()
                reader.start()
                while reader.handled < count:
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - start
                await reader.stop()
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"{count} DSNs, batch {batch}: {elapsed:.1f} s, {count / elapsed:.0f} notices/s, "
                      f"{bus.published} ZAMs queued, moved {len(dovecot.messages(PFI, 'Liaison/Traités'))}, "
                      f"peak RSS {rss:.0f} MB")
    finally:
        dovecot.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.batch))
