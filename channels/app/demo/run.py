"""``liaison demo``: the whole PFI chain on loopback, with no configuration at all.

Starts, in one process and on 127.0.0.1 only: a throw-away test PKI, a TLS
mail server that requires the client certificate and offers DSN (standing in for the
MSSanté operator; it delivers into one Maildir per address), a fake HIS that receives
the ZAM acknowledgements, and the engine itself on the embedded bus with an encrypted
SQLite journal, reading its notices from the structure's Maildir (``[notices] maildir``).
Sends the sample messages over MLLP, waits (bounded) until every message has a final
state, then answers as the far side would (``answers.py``: a DSN ``delivered`` where one
was asked, an MDN ``displayed`` where a read receipt was asked), waits (bounded) for the
ZAMs those notices call for, prints what happened, and exits 0 only if every recipient got
its mail and every notice asked for was applied.
"""

from __future__ import annotations

import asyncio
import base64
import email
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from email import policy
from pathlib import Path

from channels.app.demo.answers import answer_mails
from channels.app.demo.his import RecordingHis
from channels.app.demo.render_samples import CORRESPONDENTS, render_messages
from channels.testing.whitelist_publish import list_xml, publish
from channels.whitelist.settings import WhitelistSettings
from channels.whitelist.settings import from_config as whitelist_settings
from channels.app.demo.samples import Sample, demo_messages
from channels.app.engine import Engine
from channels.app.settings import Settings
from channels.mllp.sender import MllpSender
from channels.mllp.settings import AckSettings, ListenerSettings
from channels.smtp.settings import MssSettings
from channels.notices.settings import MaildirSettings
from channels.testing.mail_sink import SmtpSink, folder_name
from channels.testing.maildir import make_maildir
from channels.testing.pki import make_test_pki
from router.hl7.charset import decode_lenient
from router.ports import MessageState, OutcomeStatus, SentMail

FINAL = {MessageState.DELIVERED, MessageState.PARTIAL, MessageState.FAILED, MessageState.PARKED,
         MessageState.REJECTED}
DEMO_DOMAINS = ("ch-test.mssante.fr", "cabinet-test.mssante.fr", "patient.mssante.fr")
DEMO_OPERATOR = "CN=mss.operateur-demo.invalid,OU=000000000,O=OPERATEUR DEMO,C=FR"
DEADLINE_SECONDS = 60.0
STRUCTURE_MAILBOX = "pfi@ch-test.mssante.fr"     # the sender; DSNs and MDNs come back here


async def run_demo(directory: Path | None = None, out=print) -> int:
    root = Path(directory or tempfile.mkdtemp(prefix="liaison-demo-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    pki = make_test_pki(root / "pki")
    sink = SmtpSink.from_pki(pki, root / "mail", dsn=True)
    structure_box = make_maildir(root / "mail" / folder_name(STRUCTURE_MAILBOX))
    his = RecordingHis(root / "his")
    smtp_port, his_port = await sink.start(), await his.start()
    whitelist = await _demo_whitelist(root)
    journal_key = os.urandom(32)
    _write_journal_config(root, journal_key)
    settings = Settings(
        bus=f"embedded://{root / 'bus.sqlite'}",
        journal=f"sqlite://{root / 'journal.sqlite'}",
        journal_key=journal_key,
        cda_schema_required=False,          # the demo runs without the ANS files too, and says so
        listeners=(ListenerSettings(name="demo", host="127.0.0.1", port=0),),
        retry_delays=(0.5, 1.0, 2.0),
        mss=MssSettings(relay=f"smtp://127.0.0.1:{smtp_port}", sender=STRUCTURE_MAILBOX,
                        client_cert=str(pki.client_cert), client_key=str(pki.client_key), ca_file=str(pki.ca_cert),
                        nil="DEMO-0000", message_id_domain="ch-test.mssante.fr"),
        acks=AckSettings(host="127.0.0.1", port=his_port),
        correspondents=CORRESPONDENTS,
        whitelist=whitelist,
        notices_maildir=MaildirSettings(path=structure_box, poll_interval=0.2),
    )
    engine = Engine(settings)
    await engine.start()
    try:
        now = datetime.now()
        samples = demo_messages(now) + render_messages(now.strftime("%Y%m%d%H%M%S"))
        out(f"Liaison demo in {root}")
        out(f"  engine MLLP on 127.0.0.1:{engine.port('demo')}, MSSanté relay (TLS + client certificate) on "
            f"127.0.0.1:{smtp_port}, HIS for ZAMs on 127.0.0.1:{his_port}")
        out(f"  MSSanté whitelist: the demo's own list ({', '.join(DEMO_DOMAINS)}), SHA-256 verified, "
            f"checked before every mail")
        if not engine.schema_dir:
            out("  CDA_extended.xsd not found: schema check OFF (set LIAISON_CDA_SCHEMA_DIR or put the ANS "
                "fixtures in ../shared/fixtures)")
        else:
            out(f"  CDAs checked against {engine.schema_dir}/CDA_extended.xsd")
        keys = await _send_all(engine, samples, out)
        states = await _wait_final(engine, keys)
        mails = await _wait_mails(sink, copies=sum(len(_recipients(s)) for s in samples))
        answers = answer_mails(mails, root / "mail")
        await _wait_notices_read(structure_box)
        # ZAM business acknowledgements answer PFI messages (ACK_RECEPTION=Y, ACK_LECTURE_MSS=Y); render mode asks
        # for none. Each asked step gives one: the relay took it (Z02), the DSN said delivered (Z02), the MDN read (Z03).
        zams = await his.wait_for(await _zams_asked(engine, keys), timeout=20.0)
        ok = await _report(engine, samples, keys, states, root, mails, zams, answers, out)
    finally:
        await engine.stop()
        await his.close()
        sink.stop()
    return 0 if ok else 1


async def _demo_whitelist(root: Path) -> WhitelistSettings:
    """The demo's domains published as a liste blanche, verified and stored the way the national one is."""
    source = publish(root / "whitelist-published", list_xml(DEMO_DOMAINS, operator=DEMO_OPERATOR,
                                                            generated="2026-01-01T00:00:00Z"))
    settings = whitelist_settings({"source": str(source), "store_dir": str(root / "whitelist")})
    result = await settings.open_store().update(str(source))
    if not result.accepted:
        raise RuntimeError(f"demo whitelist refused: {result.reason}")
    return settings


def _write_journal_config(root: Path, key: bytes) -> None:
    """Keep the journal's key (mode 0600) and a configuration naming it, for ``liaison journal``."""
    key_file = root / "journal.key"
    key_file.touch(mode=0o600)
    key_file.write_text(base64.b64encode(key).decode("ascii") + "\n")
    (root / "liaison.toml").write_text(f'[engine]\njournal = "sqlite://{root / "journal.sqlite"}"\n'
                                       f'journal_key_file = "journal.key"\n')


async def _send_all(engine: Engine, samples: list[Sample], out) -> dict[str, str]:
    sender = MllpSender("127.0.0.1", engine.port("demo"), timeout=10.0)
    keys: dict[str, str] = {}
    try:
        for sample in samples:
            reply, _ = await sender.exchange(sample.raw)
            out(f"  sent {sample.name} ({sample.control_id}): ACK {reply.code} {reply.text}".rstrip())
            found = await engine.journal.search(control_id=sample.control_id, limit=1)
            if found:
                keys[sample.control_id] = found[0].key
    finally:
        await sender.close()
    return keys


async def _wait_final(engine: Engine, keys: dict[str, str]) -> dict[str, MessageState]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    states: dict[str, MessageState] = {}
    while time.monotonic() < deadline:
        for control_id, key in keys.items():
            record = await engine.journal.message(key)
            states[control_id] = record.state if record else MessageState.RECEIVED
        if all(state in FINAL for state in states.values()):
            break
        await asyncio.sleep(0.1)
    return states


async def _wait_mails(sink: SmtpSink, copies: int, timeout: float = 5.0):
    """The mails the relay took, once they reach ``copies`` recipients in all (or the timeout passed).

    One mail goes to every recipient of one audience of a document (its professionals, or its patient),
    so the relay holds fewer mails than recipients: each mail is one .eml copy per recipient's mailbox.
    """
    deadline = time.monotonic() + timeout
    while sum(len(mail.recipients) for mail in sink.messages) < copies and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return list(sink.messages)


async def _wait_notices_read(maildir: Path, timeout: float = 20.0) -> None:
    """Until the engine moved every notice out of the structure's inbox (``new/``, ``cur/``), or the timeout."""
    deadline = time.monotonic() + timeout
    while any(next((maildir / sub).iterdir(), None) for sub in ("new", "cur")) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def _zams_asked(engine: Engine, keys: dict[str, str]) -> int:
    """ZAMs the sent mails call for: per recipient, Z02 at the relay and Z02 at the DSN when ACK_RECEPTION=Y,
    Z03 at the MDN when ACK_LECTURE_MSS=Y (the demo's relay offers DSN, every recipient answers read receipts)."""
    count = 0
    for key in keys.values():
        for mail in await engine.journal.sent_mails(key):
            count += len(mail.recipients) * (2 * mail.ack_reception + mail.ack_lecture)
    return count


def _recipients(sample: Sample) -> list[str]:
    if sample.recipients is not None:
        return list(sample.recipients)
    text = decode_lenient(sample.raw)[0]
    return [seg.rsplit("^", 1)[-1] for seg in text.split("\r") if seg.startswith("PRT||UC||RCT")]


def liaison_command() -> tuple[str, str]:
    """How to run ``liaison`` again from any directory, and a hint when it is not on the PATH.

    ``deploy/scripts/demo.sh`` installs Liaison in the clone's ``.venv``: its ``liaison`` is not on
    the PATH of the shell that ran the script, so the demo names it by its full path.
    """
    on_path = shutil.which("liaison")
    invoked = Path(sys.argv[0])
    if invoked.name == "liaison" and invoked.exists():
        itself = invoked.resolve()
        if on_path and Path(on_path).resolve() == itself:
            return "liaison", ""
        activate = itself.parent / "activate"
        hint = f"or run '. {activate}' once, and then plain 'liaison'" if activate.exists() else ""
        return str(itself), hint
    if on_path:
        return "liaison", ""
    return f"{sys.executable} -m channels.app.cli.main", "liaison is not installed on the PATH"


async def _report(engine: Engine, samples, keys, states, root: Path, mails, zams, answers, out) -> bool:
    xdm_dir = root / "xdm"
    xdm_dir.mkdir(exist_ok=True)
    for index, mail in enumerate(mails, 1):
        parsed = email.message_from_bytes(mail.data, policy=policy.SMTP)
        for part in parsed.iter_attachments():
            if part.get_filename() == "IHE_XDM.ZIP":
                (xdm_dir / f"{index:03d}_IHE_XDM.ZIP").write_bytes(part.get_content())
    name_width = max(len("message"), *(len(s.name) for s in samples))
    title_width = max(len("document"), *(len(s.document or s.description) for s in samples))
    address_width = max(len("(no mail: stay state)"), *(len(a) for s in samples for a in _recipients(s)))
    columns = ((f"{'relay':<15}", 15), (f"{'DSN':<15}", 15), ("MDN", 10))
    out("")
    out(f"{'message':<{name_width}} {'document':<{title_width}} {'recipient':<{address_width}} "
        + " ".join(title for title, _ in columns))
    out("-" * (name_width + title_width + address_width + 3 + sum(w + 1 for _, w in columns)))
    all_ok = True
    by_notice = {"relay": 0, "DSN": 0, "MDN": 0}
    delivered = read = 0
    for sample in samples:
        key = keys.get(sample.control_id)
        record = await engine.journal.message(key) if key else None
        events = await engine.journal.events(key) if key else []
        document_id = next((e.document_id for e in events if e.document_id), "")
        outcomes = {o.destination: o for o in await engine.journal.outcomes(document_id)} if document_id else {}
        sent = {r.address: (m, r) for m in (await engine.journal.sent_mails(key) if key else [])
                for r in m.recipients}
        title = sample.document or sample.description
        if not _recipients(sample):
            state = record.state.value if record else "not received"
            all_ok = all_ok and record is not None and record.state == MessageState.DELIVERED
            out(f"{sample.name:<{name_width}} {title:<{title_width}} {'(no mail: stay state)':<{address_width}} "
                f"{state}")
        for n, address in enumerate(_recipients(sample)):
            outcome = outcomes.get(address)
            status = outcome.status.value if outcome else (record.state.value if record else "not received")
            if outcome is None or outcome.status != OutcomeStatus.ACCEPTED:
                all_ok = False
                status += f" ({outcome.detail if outcome else (record.detail if record else '')})"
            mail, recipient = sent.get(address, (None, None))
            relay, dsn, mdn = _notice_cells(status, mail, recipient, _zams_of(zams, sample.control_id, address),
                                            by_notice)
            delivered += bool(recipient and recipient.delivered_at)
            read += bool(recipient and recipient.read_at)
            out(f"{sample.name if n == 0 else '':<{name_width}} {title if n == 0 else '':<{title_width}} "
                f"{address:<{address_width}} {relay:<15} {dsn:<15} {mdn}")
    copies = sum(len(mail.recipients) for mail in mails)
    mailboxes = len({address.lower() for mail in mails for address in mail.recipients})
    pfi_messages = sum(1 for s in samples if s.recipients is None)
    structure_box = engine.settings.notices_maildir
    kept = len(list((structure_box.path / structure_box.done_folder / "cur").iterdir()))
    notices_ok = delivered == answers.dsns and read == answers.mdns
    command, hint = liaison_command()
    out("relay: the relay's answer; DSN: the delivery notice it sent back; MDN: the read notice the recipient's")
    out("software sent back; (Z02)/(Z03): the ZAM the HIS received for that answer or notice")
    out("")
    out(f"mails sent through the relay: {len(mails)}, one per document and audience (its professionals, or its patient);")
    out(f"  {copies} copies, one per recipient, in {mailboxes} mailboxes: {root / 'mail'}/<address>/new/*.eml")
    out(f"notices back to {STRUCTURE_MAILBOX}: {answers.dsns} DSN 'delivered' (the relay, NOTIFY=SUCCESS asked), "
        f"{answers.mdns} MDN 'displayed' (the readers, Disposition-Notification-To asked);")
    out(f"  read by the engine from its Maildir {structure_box.path}, {kept} moved to {structure_box.done_folder}")
    out(f"IHE_XDM.ZIP attachments:      {len(list(xdm_dir.glob('*_IHE_XDM.ZIP')))} in {xdm_dir}")
    out(f"ZAM acknowledgements (HIS):   {len(zams)} in {root / 'his'}: {by_notice['relay']} ZAM^Z02 when the relay "
        f"took the mail, {by_notice['DSN']} ZAM^Z02 when the DSN said delivered (ACK_RECEPTION=Y), "
        f"{by_notice['MDN']} ZAM^Z03 when the MDN said read (ACK_LECTURE_MSS=Y), for the {pfi_messages} PFI messages; "
        f"render-mode messages ask for none")
    out(f"journal (encrypted SQLite):   {root / 'journal.sqlite'}")
    out(f"  see every step:             {command} journal -c {root / 'liaison.toml'} search")
    out(f"                              {command} journal -c {root / 'liaison.toml'} show <key>")
    if hint:
        out(f"  ({hint})")
    out("result: " + ("every document was delivered to every recipient" if all_ok and mails
                      else "NOT everything was delivered"))
    out("notices: " + (f"every DSN and MDN was applied ({delivered} delivered, {read} read)" if notices_ok
                       else f"NOT every notice was applied ({delivered}/{answers.dsns} delivered, "
                            f"{read}/{answers.mdns} read)"))
    return all_ok and bool(mails) and notices_ok


def _zams_of(zams: list[str], control_id: str, address: str) -> tuple[int, int]:
    """How many ZAM^Z02 and ZAM^Z03 the HIS received about one recipient of one message."""
    about = [z for z in zams if f"|{control_id}|" in z and f"^X.400^{address}|" in z]
    return sum("ZAM^Z02" in z for z in about), sum("ZAM^Z03" in z for z in about)


def _notice_cells(relay: str, mail: SentMail | None, recipient, zams: tuple[int, int],
                  by_notice: dict[str, int]) -> tuple[str, str, str]:
    """The relay, DSN and MDN cells of one row, each with the ZAM it gave (counted into ``by_notice``).

    A recipient's first Z02 is the relay's (queued when the relay answered), the second the DSN's.
    """
    z02, z03 = zams
    relay_zam = bool(mail and mail.ack_reception and z02 >= 1)
    dsn_zam = bool(mail and mail.ack_reception and z02 >= 2)
    by_notice["relay"] += relay_zam
    by_notice["DSN"] += dsn_zam
    by_notice["MDN"] += bool(z03)
    if recipient is None:
        return relay, "-", "-"
    dsn = "delivered" if recipient.delivered_at else "failed" if recipient.failed_at else "-"
    mdn = "read" if recipient.read_at else "error" if recipient.error_at else "-"
    return (relay + (" (Z02)" if relay_zam else ""), dsn + (" (Z02)" if dsn_zam else ""),
            mdn + (" (Z03)" if z03 else ""))
