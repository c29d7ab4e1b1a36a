"""What ``bench/e2e.py`` watches: the fake HIS's ZAMs, the mails at the sink, the DMP double's ledger, and
each process's CPU time."""

from __future__ import annotations

import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from channels.app.demo.his import RecordingHis
from channels.xds.soap import ITI41_ACTION
from router.hl7.msh import MshHeader

DMP = "dmp"                # where a ZAM^Z01 is filed in FakeHis.zams
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class FakeHis(RecordingHis):
    """The demo's recording HIS, keeping per document and recipient the ZAM^Z02 it got and when, and per
    document its ZAM^Z01 (the DMP's answer), filed under the address ``dmp``.

    A ZAM is known by its own MSH-10: the same ZAM twice is a redelivery by the bus (counted, harmless);
    two different ZAMs for one document and one recipient (or the DMP) are a duplicate answer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.first_seen: dict[str, float] = {}                     # ZAM MSH-10 → arrival (wall clock)
        self.zams: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
        self.redelivered = 0
        self.other: Counter[str] = Counter()                       # other message types (ZAM^Z01, ...)
        self._reported: set[tuple[str, str]] = set()

    async def record(self, raw: bytes, text: str, header: MshHeader) -> None:
        now = time.time()
        segments = text.split("\r")
        msh = segments[0].split("|")
        if msh[8].startswith(("ZAM^Z02", "ZAM^Z01")):
            zam_id = msh[9]
            if zam_id in self.first_seen:
                self.redelivered += 1
            else:
                self.first_seen[zam_id] = now
                obx = [s.split("|") for s in segments if s.startswith("OBX|")]
                address = obx[1][5].split("^")[3] if msh[8].startswith("ZAM^Z02") else DMP
                answered, answer = obx[0][4], obx[0][5][:1]
                self.zams[answered][address].append((zam_id, answer))
        else:
            self.other[msh[8]] += 1

    def done_at(self, control_id: str, recipients: Iterable[str]) -> float | None:
        """When the last of the document's ZAMs arrived, once there is one for every recipient."""
        got = self.zams.get(control_id)
        if got is None:
            return None
        times = []
        for address in recipients:
            if not got.get(address):
                return None
            times.append(self.first_seen[got[address][0][0]])
        return max(times)

    def duplicates(self) -> list[str]:
        problems = []
        for control_id, by_address in self.zams.items():
            for address, zams in by_address.items():
                if len(zams) > 1 and (control_id, address) not in self._reported:
                    self._reported.add((control_id, address))
                    problems.append(f"DUPLICATE: {len(zams)} distinct ZAM^Z02 for {control_id} → {address}")
        return problems

    def refusals(self, documents) -> list[str]:
        """A ZAM that is not Y (the recipient was not mailed, the DMP did not store it), per document and target."""
        return [f"ZAM {zams[0][1]} for {d.control_id} → {address}" for d in documents
                for address, zams in self.zams.get(d.control_id, {}).items() if zams[0][1] != "Y"]


class DmpLedger:
    """What the DMP double (``bench/dmp_double.py``) received and stored, read from its ledger as it grows.

    Every expected uniqueId must be stored once, nothing else stored, and the double must have received
    one ITI-41 request per document (a second request for a stored document is a duplicate deposit even
    though the double refuses it, as the real DMP would). Render mode: Liaison assigns the uniqueIds,
    so only their count and distinctness are checked (``expect_any``).
    """

    def __init__(self, path: Path):
        self.path = path
        self.stored: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()        # SOAP action → count
        self.expected: set[str] = set()
        self.expected_any = 0
        self._offset = 0
        self._reported: set[str] = set()

    def expect(self, documents) -> None:
        for doc in documents:
            if doc.dmp and doc.unique_id:
                self.expected.add(doc.unique_id)
            elif doc.dmp:
                self.expected_any += 1

    def scan(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        complete = data[:data.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode().splitlines():
            kind, _, value = line.partition("\t")
            (self.stored if kind == "stored" else self.requests)[value] += 1

    def has(self, unique_id: str) -> bool:
        return unique_id in self.stored

    def check(self, final: bool = False) -> list[str]:
        """Duplicates and unexpected entries now; with ``final``, what is missing and the requests' count."""
        self.scan()
        problems = []
        for unique_id, count in self.stored.items():
            if unique_id in self._reported:
                continue
            if count > 1 or (not self.expected_any and unique_id not in self.expected):
                self._reported.add(unique_id)
                problems.append(f"{'DUPLICATE' if count > 1 else 'UNEXPECTED'} at the DMP: {unique_id} stored "
                                f"{count} time(s)")
        if final:
            want = len(self.expected) + self.expected_any
            deposits = self.requests[ITI41_ACTION]
            missing = self.expected - set(self.stored)
            if missing or len(self.stored) != want:
                problems.append(f"LOST at the DMP: {len(self.stored)} stored, expected {want}"
                                + (f" (missing {', '.join(sorted(missing)[:5])})" if missing else ""))
            if deposits != want or sum(self.requests.values()) != deposits:
                problems.append(f"DMP requests: {dict(self.requests)} for {want} document(s) (one ITI-41 each)")
        return problems


class MailCount:
    """The sink's Maildir, read as it fills: mails per recipient and per Message-ID."""

    def __init__(self, maildir: Path):
        self.maildir = maildir
        self.expected: Counter[str] = Counter()
        self.by_recipient: dict[str, Counter[bytes]] = defaultdict(Counter)
        self._seen: set[Path] = set()
        self._reported: set[tuple[str, bytes]] = set()

    def expect(self, documents) -> None:
        for doc in documents:
            self.expected.update(doc.recipients)

    def scan(self) -> None:
        if not self.maildir.exists():
            return
        for folder in self.maildir.iterdir():
            for path in (folder / "new").iterdir():
                if path in self._seen:
                    continue
                self._seen.add(path)
                with path.open("rb") as f:
                    head = f.read(16384)
                found = _MESSAGE_ID.search(head)
                self.by_recipient[folder.name][found.group(1) if found else b"(no Message-ID) " + path.name.encode()] += 1

    def check(self, final: bool = False) -> list[str]:
        """Duplicates and unexpected recipients now; with ``final``, a count per recipient off what was expected."""
        self.scan()
        problems = []
        for recipient, ids in self.by_recipient.items():
            if recipient not in self.expected:
                problems.append(f"UNEXPECTED recipient at the sink: {recipient} ({sum(ids.values())} mail(s))")
            for message_id, count in ids.items():
                if count > 1 and (recipient, message_id) not in self._reported:
                    self._reported.add((recipient, message_id))
                    problems.append(f"DUPLICATE mail: {count} × {message_id.decode(errors='replace')} to {recipient}")
        if final:
            for recipient, expected in self.expected.items():
                got = sum(self.by_recipient.get(recipient, Counter()).values())
                if got != expected:
                    problems.append(f"{'LOST' if got < expected else 'EXTRA'} mail: {recipient} got {got}, "
                                    f"expected {expected}")
        return problems


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (``/proc/<pid>/stat``), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_rabbitmq_pid() -> int | None:
    """The broker's Erlang VM (``beam.smp``), to read its CPU time; None when it is not found."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    return int(entry.name)
            except OSError:
                continue
    return None
