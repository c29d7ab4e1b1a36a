"""What a scenario counts once it settled: the fault table's row.

- **lost**: (message, recipient) pairs expected — every recipient of every message that got an AA —
  with no mail in Postfix's Maildir;
- **duplicates**: mails delivered beyond one per (message, recipient), told apart in two kinds.
  *SMTP window*: the worker was killed after the relay took the mail and before the journal
  recorded it, so the job's next copy took the claim over and sent it again, with the same
  Message-ID (SMTP has no way to ask a relay whether it already holds a mail). Such a copy is
  recognised by all of: the journal says the claim was taken over, both copies have one Message-ID,
  and the first copy was in the Maildir within ``WINDOW_SLACK`` seconds of the kill (Postfix writes
  the Maildir file after it answered 250, later under load). Every other extra copy is a
  **duplicate**, and a bug;
- **AA without record**: messages answered AA that the journal does not hold (read after the fault,
  from the database itself);
- **ZAMs missing**: expected (message, recipient) pairs without a ZAM^Z02 at the HIS (a ZAM the bus
  brought twice is one: the HIS sees the same MSH-10 again);
- **parked / failed**: messages the journal ends PARKED, FAILED or PARTIAL; **stuck**: messages not in a
  final state when the scenario's time was up;
- **settled after**: seconds from the fault to the moment every count above was reached;
- **died**: engine processes that exited by themselves (a fault must not end a process).
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from router.ports import MessageState
from tests.faults.stream import Message
from tests.integration.harness import xdm_cda

FINAL = {MessageState.DELIVERED, MessageState.PARTIAL, MessageState.FAILED, MessageState.PARKED,
         MessageState.REJECTED}
WINDOW_SLACK = 5.0                # seconds between the relay's 250 and its Maildir file, at most, under load
BAD = {MessageState.PARTIAL, MessageState.FAILED, MessageState.PARKED, MessageState.REJECTED}


@dataclass
class Row:
    scenario: str
    messages: int
    aa: int
    mails_expected: int
    lost: int
    duplicates: int
    aa_without_record: int
    zams_missing: int
    parked: int
    stuck: int
    settled_after: float
    resent: int
    died: int = 0                     # engine processes that exited by themselves (none is meant to)
    smtp_window: int = 0              # extra copies explained by a kill between the relay's 250 and the journal
    taken_over: int = 0               # claims of a dead worker taken over by another (journal step claim)

    def zeros(self) -> bool:
        return not (self.lost or self.duplicates or self.aa_without_record or self.zams_missing or self.parked
                    or self.stuck or self.died) and self.aa == self.messages

    def as_dict(self) -> dict:
        return asdict(self)


class MailIndex:
    """(message extension, recipient) of each mail in the Maildir, read once per file."""

    def __init__(self, postfix, run: str):
        self.postfix = postfix
        self.pattern = re.compile(rf"FLT-{run}-\d{{5}}".encode())
        self._seen: dict[Path, tuple[str, str] | None] = {}
        self.copies: dict[tuple[str, str], list[tuple[float, str]]] = {}   # pair -> (mtime, Message-ID) each

    def mails(self) -> list[tuple[str, str]]:
        """Only the files not read yet are parsed (the Maildir holds every scenario's mails)."""
        folder = self.postfix.maildir / "new"
        for path in (sorted(folder.iterdir()) if folder.is_dir() else []):
            if path in self._seen:
                continue
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            cda = xdm_cda(message)
            found = self.pattern.search(cda) if cda else None
            pair = (found.group().decode(), str(message.get("Delivered-To", ""))) if found else None
            self._seen[path] = pair
            if pair is not None:
                self.copies.setdefault(pair, []).append((path.stat().st_mtime, str(message.get("Message-ID", ""))))
        return [pair for pair in self._seen.values() if pair is not None]

    def window_copies(self, taken_over: set[tuple[str, str]], killed_at: list[float]) -> int:
        """Extra copies explained by a kill in the SMTP window (see the module docstring)."""
        return sum(len(self.copies[pair]) - 1 for pair in self.explained(taken_over, killed_at))

    def explained(self, taken_over: set[tuple[str, str]], killed_at: list[float]) -> set[tuple[str, str]]:
        found = set()
        for pair, copies in self.copies.items():
            if len(copies) < 2 or pair not in taken_over or len({mid for _, mid in copies}) != 1:
                continue
            first = min(at for at, _ in copies)
            if any(first <= kill + WINDOW_SLACK for kill in killed_at):
                found.add(pair)
        return found


def distinct_zams(his) -> set[tuple[str, str]]:
    """(MSH-10 answered, recipient address) of every ZAM^Z02 "delivered" (Y) the HIS received, a repeated one once."""
    found = set()
    for text in his.received:
        segments = text.split("\r")
        if segments[0].split("|")[8].startswith("ZAM^Z02"):
            obx = [s.split("|") for s in segments if s.startswith("OBX|")][:2]
            if obx[0][5][:1] == "Y":                       # delivered; an N says the recipient was not
                found.add((obx[0][4], obx[1][5].split("^")[3]))
    return found


def expected_pairs(messages: list[Message], aa: dict[str, float]) -> set[tuple[str, str]]:
    return {(m.extension, address) for m in messages if m.control_id in aa for address in m.recipients}


def expected_zams(messages: list[Message], aa: dict[str, float]) -> set[tuple[str, str]]:
    return {(m.control_id, address) for m in messages if m.control_id in aa for address in m.recipients}


async def journal_states(journal, messages: list[Message]) -> dict[str, MessageState]:
    ours = {m.control_id for m in messages}
    records = await journal.search(limit=4 * len(messages) + 100)
    return {r.control_id: r.state for r in records if r.control_id in ours}


async def claims_taken_over(journal, messages: list[Message]) -> set[tuple[str, str]]:
    """(document extension, recipient) of the journal's "claim taken_over" events: a dead worker's claim."""
    ours = {m.control_id for m in messages}
    found = set()
    for record in await journal.search(limit=4 * len(messages) + 100):
        if record.control_id in ours:
            found |= {(e.document_id.split("^", 1)[-1].split("#", 1)[0], e.destination)
                      for e in await journal.events(record.key) if e.step == "claim" and e.state == "taken_over"}
    return found
