"""The local TLS mail sink (``channels/testing/mail_sink.py``) in a process of its own, for ``bench/e2e.py``.

STARTTLS required before MAIL, TLS ≥ 1.2, a client certificate signed by the PKI's CA; every accepted
mail is written Maildir style under ``--maildir``, one file per accepted recipient. It is the sink, not
Postfix: it queues nothing and relays nothing, so it is a lighter relay than a real MTA.

    python -m bench.smtp_sink --pki DIR --maildir DIR --port PORT [--delay SECONDS]

``--delay`` holds each DATA reply that long: a slow relay, for sizing the mailer's pool.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

import structlog

from channels.testing.mail_sink import SmtpSink


async def serve(pki: Path, maildir: Path, port: int, delay: float = 0.0) -> None:
    sink = SmtpSink(maildir, server_cert=pki / "server.pem", server_key=pki / "server.key",
                    ca_cert=pki / "ca.pem", port=port, data_delay=delay,
                    keep_in_memory=False)   # the bench counts mails in the Maildir
    await sink.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pki", type=Path, required=True, help="directory written by make_test_pki")
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each DATA reply")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(serve(args.pki, args.maildir, args.port, args.delay))


if __name__ == "__main__":
    main()
