"""What a laboratory report is made of, as :mod:`router.lab` reads it and :mod:`mappings.cr_bio` renders it.

Plain frozen dataclasses, no HL7 and no CDA: the coded values, specimens,
results, microbiology isolates, batteries and the report, with the few
derived facts both sides need (prescriber, copies, validation, collection time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.model import Action, Participant


@dataclass(frozen=True)
class Coded:
    """A CE/CWE: identifier, text, coding system, and the alternate triplet (components 4-6)."""

    code: str = ""
    display: str = ""
    system: str = ""
    alt_code: str = ""
    alt_display: str = ""
    alt_system: str = ""
    original_text: str = ""        # CWE.9

    @property
    def label(self) -> str:
        """The best human label: text, alternate text, original text, then the code."""
        return self.display or self.alt_display or self.original_text or self.code or self.alt_code

    def __bool__(self) -> bool:
        return bool(self.code or self.display or self.alt_code or self.original_text)


@dataclass(frozen=True)
class Specimen:
    """What was sampled and when (SPM, else OBR-7/14/15)."""

    id: str = ""                    # SPM-2.1 (placer) else SPM-2.2 (filler)
    type: Coded = field(default_factory=Coded)    # SPM-4 / OBR-15.1
    collected: str = ""             # SPM-17.1 / OBR-7
    received: str = ""              # SPM-18 / OBR-14


@dataclass(frozen=True)
class LabResult:
    """One OBX."""

    set_id: str                     # OBX-1
    value_type: str                 # OBX-2 as sent
    code: Coded                     # OBX-3
    sub_id: str = ""                # OBX-4
    kind: str = "text"              # numeric | range | coded | text (how the value was read)
    value: str = ""                 # numeric value ("4.89"), text, or the coded value's label
    comparator: str = ""            # SN.1: <, >, <=, >=, = (range/numeric)
    low: str = ""                   # SN range / comparator bound
    high: str = ""
    coded_value: Coded | None = None
    units: Coded = field(default_factory=Coded)   # OBX-6
    reference_range: str = ""       # OBX-7
    flags: tuple[str, ...] = ()     # OBX-8
    status: str = ""                # OBX-11
    time: str = ""                  # OBX-14
    validator: Participant | None = None          # OBX-16
    method: Coded = field(default_factory=Coded)  # OBX-17
    comments: tuple[str, ...] = ()  # NTE after this OBX


@dataclass(frozen=True)
class Isolate:
    """A micro-organism found (a coded OBX) and the results about it."""

    organism: Coded
    sub_id: str
    status: str = ""
    time: str = ""
    results: tuple[LabResult, ...] = ()           # OBX-4 = "<sub_id>.m"
    batteries: tuple["Battery", ...] = ()         # child OBR (antibiogram)
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Battery:
    """One OBR with its results."""

    code: Coded                     # OBR-4
    section: str = ""               # OBR-24
    placer_order: str = ""          # ORC-2 / OBR-2
    filler_order: str = ""          # ORC-3 / OBR-3
    observation_time: str = ""      # OBR-7
    received_time: str = ""         # OBR-14
    report_time: str = ""           # OBR-22
    status: str = ""                # OBR-25
    specimen: Specimen | None = None
    validator: Participant | None = None          # OBR-32
    validated_time: str = ""        # OBR-32 NDL.2
    prescriber: Participant | None = None         # ORC-12 / OBR-16
    copies: tuple[Participant, ...] = ()          # OBR-28
    parent: tuple[str, str] = ("", "")            # OBR-26: (parent OBX-3 code, parent OBX-4 sub-id)
    results: tuple[LabResult, ...] = ()
    isolates: tuple[Isolate, ...] = ()
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabReport:
    """What an ORU^R01 from a laboratory says, patient aside."""

    control_id: str
    message_time: str               # MSH-7
    sending_facility: str = ""      # MSH-4.1
    order_control: str = ""         # ORC-1 of the first order
    placer_order: str = ""
    filler_order: str = ""
    order_authority: str = ""       # ORC-2.3 / OBR-2.3: universal id (OID) of the placer order number
    batteries: tuple[Battery, ...] = ()
    pdf: bytes | None = field(default=None, repr=False)
    action: Action = Action.PUBLISH
    warnings: tuple[str, ...] = ()

    @property
    def prescriber(self) -> Participant | None:
        return next((b.prescriber for b in self.batteries if b.prescriber is not None), None)

    @property
    def copies(self) -> tuple[Participant, ...]:
        seen: dict[str, Participant] = {}
        for battery in self.batteries:
            for who in battery.copies:
                seen.setdefault(who.identifier or f"{who.family}^{who.given}", who)
        return tuple(seen.values())

    @property
    def validation(self) -> tuple[Participant | None, str]:
        """The biologist of the latest validation and its time (OBR-32 / OBX-16, OBR-22 / OBX-14)."""
        found: list[tuple[str, Participant]] = []
        for battery in self.batteries:
            for result in all_results(battery):
                if result.validator is not None:
                    found.append((result.time or battery.validated_time or battery.report_time, result.validator))
            if battery.validator is not None:
                found.append((battery.validated_time or battery.report_time, battery.validator))
        if not found:
            return None, ""
        when, who = max(found, key=lambda pair: pair[0][:14])
        return who, when

    @property
    def collected(self) -> str:
        """The earliest collection time of the report ("" when none is known)."""
        times = [t for b in self.batteries for t in ((b.specimen.collected if b.specimen else ""),
                                                      b.observation_time) if t]
        return min(times, key=lambda t: t[:14]) if times else ""

    @property
    def statuses(self) -> tuple[str, ...]:
        return tuple(r.status for b in self.batteries for r in all_results(b))


def all_results(battery: Battery):
    """Every result of a battery: its own, its isolates' and their antibiograms'."""
    yield from battery.results
    for isolate in battery.isolates:
        yield from isolate.results
        for child in isolate.batteries:
            yield from all_results(child)
