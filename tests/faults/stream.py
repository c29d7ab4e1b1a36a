"""The HIS side of a scenario: a stream of PFI messages over MLLP to every listener, resent until AA.

Each message has its own MSH-10 and its own document (a CR-BIO CDA whose id carries the run and the
message's number), and 1 to 3 recipients: Dr Martin, the cardiology ward, the patient (with
``DESTMSSANTEPAT=Y``), always at least one professional. ``connections`` MLLP connections share the
stream, spread over the listeners; a connection that fails (refused, cut, no ACK in time) moves to the
next listener, and its message goes back to the head of the queue; an answer other than AA (an AR when
the bus or the journal is away) sends the message again too. That is what a HIS does: it resends what
was not acknowledged, with the same MSH-10, to whichever listener answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from channels.mllp.sender import MllpSender
from channels.testing.messages import CARDIOLOGIE, DR_MARTIN, encode_message, make_cda, make_pfi_oru, patient_rct
from router.errors import PeerUnavailable

PATIENT_RCT = patient_rct()
# Recipient sets, in turn: 1, 2, 3 recipients, never the patient alone.
RECIPIENT_SETS = ((DR_MARTIN,), (DR_MARTIN, CARDIOLOGIE), (CARDIOLOGIE, PATIENT_RCT),
                  (DR_MARTIN, CARDIOLOGIE, PATIENT_RCT), (CARDIOLOGIE,))


@dataclass(frozen=True)
class Message:
    control_id: str
    extension: str                    # the document id's extension: found again in the mailed CDA
    recipients: tuple[str, ...]
    raw: bytes


def make_messages(run: str, count: int) -> list[Message]:
    messages = []
    for i in range(count):
        rcts = RECIPIENT_SETS[i % len(RECIPIENT_SETS)]
        extension = f"FLT-{run}-{i:05d}"
        flags = {"ACK_RECEPTION": "Y", "DESTMSSANTEPAT": "Y" if PATIENT_RCT in rcts else "N"}
        raw = encode_message(make_pfi_oru(make_cda(document_extension=extension),
                                          control_id=f"F{run}{i:05d}", recipients=list(rcts), flags=flags))
        messages.append(Message(f"F{run}{i:05d}", extension, tuple(r.address for r in rcts), raw))
    return messages


@dataclass
class Stream:
    """Send ``messages`` to ``ports`` until each one got an AA (or ``stop()``)."""

    ports: list[int]
    messages: list[Message]
    connections: int = 4
    rate: float = 40.0                       # messages per second offered, all connections together
    aa: dict[str, float] = field(default_factory=dict)        # control id -> when its AA came
    answers: Counter = field(default_factory=Counter)          # every answer code, and "no answer"
    resent: int = 0
    _pending: deque = field(default_factory=deque)
    _stopped: bool = False

    async def run(self, timeout: float) -> None:
        self._pending.extend(self.messages)
        deadline = time.monotonic() + timeout
        await asyncio.gather(*(self._connection(i, deadline) for i in range(self.connections)))

    def stop(self) -> None:
        self._stopped = True

    @property
    def done(self) -> bool:
        return len(self.aa) == len(self.messages)

    async def _connection(self, index: int, deadline: float) -> None:
        listener = index % len(self.ports)
        sender: MllpSender | None = None
        pause = self.connections / self.rate
        try:
            while not self._stopped and time.monotonic() < deadline and not self.done:
                if not self._pending:
                    await asyncio.sleep(0.05)            # the others' messages in flight may come back
                    continue
                message = self._pending.popleft()
                if sender is None:
                    sender = MllpSender("127.0.0.1", self.ports[listener], timeout=15.0)
                try:
                    reply, _ = await sender.exchange(message.raw)
                except PeerUnavailable:
                    self.answers["no answer"] += 1
                    self._again(message)
                    await sender.close()
                    sender = None
                    listener = (listener + 1) % len(self.ports)
                    await asyncio.sleep(0.2)
                    continue
                self.answers[reply.code] += 1
                if reply.code == "AA":
                    self.aa.setdefault(message.control_id, time.monotonic())
                    await asyncio.sleep(pause)
                else:
                    self._again(message)
                    await asyncio.sleep(0.2)
        finally:
            if sender is not None:
                with contextlib.suppress(Exception):
                    await sender.close()

    def _again(self, message: Message) -> None:
        self.resent += 1
        self._pending.appendleft(message)
