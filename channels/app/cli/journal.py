"""``liaison journal search|show``: what happened to a message, step by step, from the journal.

    liaison journal [-c liaison.toml] search [--state S] [--control-id ID] [--ipp IPP] [--ins INS]
                                             [--document ID] [--recipient ADDRESS] [--limit N]
    liaison journal [-c liaison.toml] show KEY [--raw]
    liaison journal [-c liaison.toml] notices [--unrecognised] [--limit N]
    liaison journal migrate [-c liaison.toml]      (journal_migrate.py)

``-c`` may also come after ``search`` or ``show``.

Reads the journal named by the configuration (its key from LIAISON_JOURNAL_KEY
or the key file, as the engine does), read-only: a journal that does not exist
is an error naming its path (exit 2), never created. Prints identifiers, states
and reasons; the raw message is shown only with ``--raw``. ``--ipp``, ``--ins``,
``--document`` and ``--recipient`` are looked up by their keyed digests (the
journal does not hold them in clear; messages journaled before schema v7 have
none and are found by MSH-10, state or date).
"""

from __future__ import annotations

import argparse

from channels.app.cli import journal_migrate
from channels.app.cli.options import command_group
from channels.app.settings import Settings, load_settings
from router.config_values import redact_url
from router.ports import MessageState, NoticeVerdict


def add_parser(subparsers) -> None:
    """Add ``journal`` (with ``search`` and ``show``) to the ``liaison`` sub-commands."""
    command = command_group(subparsers, "journal", help="search the journal, or show one message's timeline",
                            dest="journal_command",
                            config_help="the liaison.toml naming the journal (engine.journal) and its key; default: "
                                        "the default journal, sqlite:///var/lib/liaison/journal.sqlite")
    search_parser = command("search", help="messages in the journal, newest first")
    search_parser.add_argument("--state", choices=[s.value for s in MessageState], metavar="STATE",
                               help="only messages in this state: " + ", ".join(s.value for s in MessageState))
    search_parser.add_argument("--control-id", metavar="ID", help="only the message with this MSH-10")
    for option, what in (("--ipp", "the patient's IPP (PID-3 of type PI)"), ("--ins", "the patient's INS"),
                         ("--document", "a document id (root^extension, or the extension)"),
                         ("--recipient", "a recipient's address")):
        search_parser.add_argument(option, metavar=option[2:].upper(), help=f"only messages about {what}")
    search_parser.add_argument("--limit", type=int, default=50, help="at most this many rows (default %(default)s)")
    show_parser = command("show", help="one message's timeline: every step, state, reason and outcome")
    show_parser.add_argument("key", help="the message's journal key (first column of 'search')")
    show_parser.add_argument("--raw", action="store_true", help="also print the message as received")
    notices_parser = command("notices", help="notices read from the structure's mailbox (DSN, MDN, error mails), "
                                             "newest first")
    notices_parser.add_argument("--unrecognised", action="store_true",
                                help="only those matching no mail of ours or not readable")
    notices_parser.add_argument("--limit", type=int, default=50, help="at most this many rows (default %(default)s)")
    command("migrate", help="create or upgrade the journal's schema (SQLite or PostgreSQL) to this Liaison's")


async def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config) if args.config else Settings()
    if args.journal_command == "migrate":
        return await journal_migrate.migrate(settings)
    if args.journal_command == "search":
        return await search(settings, state=args.state, control_id=args.control_id, limit=args.limit,
                            ipp=args.ipp, ins=args.ins, document_id=args.document, recipient=args.recipient)
    if args.journal_command == "notices":
        return await notices(settings, unrecognised=args.unrecognised, limit=args.limit)
    return await show(settings, args.key, raw=args.raw)


async def search(settings: Settings, *, state: str | None, control_id: str | None, limit: int, out=print,
                 ipp: str | None = None, ins: str | None = None, document_id: str | None = None,
                 recipient: str | None = None) -> int:
    from channels.app.engine import journal_from_url
    journal = journal_from_url(settings.journal, settings.journal_key, read_only=True)
    await journal.open()
    try:
        records = await journal.search(state=MessageState(state) if state else None, control_id=control_id,
                                       limit=limit, ipp=ipp, ins=ins, document_id=document_id, recipient=recipient)
    finally:
        await journal.close()
    out(f"{'key':<27} {'received (UTC)':<20} {'type':<8} {'MSH-10':<24} {'from':<14} {'state':<10} ack")
    for r in records:
        out(f"{r.key:<27} {r.received_at:%Y-%m-%d %H:%M:%S} {r.message_type:<8} {r.control_id[:24]:<24} "
            f"{r.sending_application[:14]:<14} {r.state.value:<10} {r.ack_code}")
    return 0


async def show(settings: Settings, key: str, *, raw: bool, out=print) -> int:
    from channels.app.engine import journal_from_url
    journal = journal_from_url(settings.journal, settings.journal_key, read_only=True)
    await journal.open()
    try:
        record = await journal.message(key)
        if record is None:
            out(f"no message {key} in {redact_url(settings.journal)}")
            return 1
        events = await journal.events(key)
        documents = sorted({e.document_id for e in events if e.document_id})
        outcomes = [o for d in documents for o in await journal.outcomes(d)]
        mails = await journal.sent_mails(key)
    finally:
        await journal.close()
    out(f"message {record.key}: {record.message_type} MSH-10 {record.control_id} from "
        f"{record.sending_application}/{record.sending_facility} on {record.channel}")
    out(f"state {record.state.value} (ACK {record.ack_code or '-'}) {record.detail}")
    out("timeline:")
    for e in events:
        where = " ".join(x for x in (e.document_id and f"doc={e.document_id}", e.destination and f"to={e.destination}")
                         if x)
        out(f"  {e.at:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f"  {e.step:<11} {e.state:<12} {where} {e.detail}".rstrip())
    if outcomes:
        out("outcomes:")
        for o in outcomes:
            out(f"  {o.destination:<42} {o.status.value:<9} {o.detail}")
    if mails:
        out("mails (per recipient: relayed = accepted by the relay, then what the notices said; times UTC):")
        for mail in mails:
            out(f"  {mail.message_id} ENVID {mail.envelope_id} doc={mail.document_id}")
            for r in mail.recipients:
                steps = "  ".join(f"{name} {when:%Y-%m-%d %H:%M:%S}" for name, when in (
                    ("relayed", r.relayed_at), ("delivered", r.delivered_at), ("failed", r.failed_at),
                    ("read", r.read_at), ("error", r.error_at)) if when is not None)
                out(f"    {r.address:<42} {steps or 'not accepted by the relay'}  {r.detail}".rstrip())
    if raw:
        out("raw message:")
        out(record.raw.decode("utf-8", errors="replace").replace("\r", "\n"))
    return 0


async def notices(settings: Settings, *, unrecognised: bool, limit: int, out=print) -> int:
    """The notices read back over IMAP and what became of each (matched, duplicate, unmatched, malformed)."""
    from channels.app.engine import journal_from_url
    journal = journal_from_url(settings.journal, settings.journal_key, read_only=True)
    await journal.open()
    try:
        verdicts = frozenset({NoticeVerdict.UNMATCHED, NoticeVerdict.MALFORMED}) if unrecognised else None
        found = await journal.notices(limit=limit, verdicts=verdicts)
    finally:
        await journal.close()
    out(f"{'read (UTC)':<20} {'kind':<10} {'verdict':<10} {'message':<27} notice, what was made of it")
    for n in found:
        out(f"{n.at:%Y-%m-%d %H:%M:%S} {n.kind:<10} {n.verdict.value:<10} {n.message_key or '-':<27} "
            f"{n.notice_id} {n.detail}")
    return 0
