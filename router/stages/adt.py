"""Stage ``inbound``, ADT branch: a movement (IHE PAM-FR) updates the stay it is about.

:class:`~router.stages.process.ProcessStage` hands every parsed ADT message
here (one routing point, by MSH-9). The stay is keyed by (MSH-4, encounter)
— MSH-4 of the feed (the channel name when empty) and PID-18, else PV1-19:

- A01/A04 → admitted (a re-sent admission refreshes the fields);
- A03 → discharged; the lettre de liaison is due by the deadline policy
  (``engine.letter_deadline``, see :mod:`router.stays`) counted from PV1-45,
  else EVN-6/EVN-2, else MSH-7; a letter already sent stays sent;
- A11 → cancelled; A13 → admitted again, deadline and any alert dropped
  (journal event ``alert_cleared``);
- A08 → the fields it carries replace the stored ones; the state is kept;
- A28/A31 → patient-level (no encounter): no stay is created or changed, only
  the patient's DMP consent below.

A field the message leaves empty keeps its stored value. Every step is a
journal event (step ``stay``) and the message ends ``delivered``: the stay
table was its destination. An ADT that cannot be read raises (settle parks it).

DMP consent (PAM-FR ZFA): every ADT that carries a ZFA and an IPP (PID-3 PI)
gives the patient's consent in force, kept by the journal per (facility, IPP)
— the facility as for stays — all ZFA fields at once: the latest message wins
(journal keys sort by arrival, so a redelivered older ADT never undoes a newer
one), and every stay of that patient shows it (a new stay starts with it). The
DMP deposit reads it when the document's own message carries no ZFA
(:mod:`router.dmp_rules`). Each ZFA is a journal event (step ``dmp_consent``)
on the ADT message, with the DMP status, the feeding objection (ZFA-9) and the
consultation consent (ZFA-11): what ``liaison journal show`` prints for it.

Letters: :meth:`AdtStage.letter_dispatched` is called by the process stage
when a lettre de liaison (a type the registry marks ``stay_letter``) has been handed to delivery. The
matching rule: the stay whose facility is the document message's MSH-4 (else
its channel) and whose encounter is that message's PID-18 or PV1-19 — the
same keys the ADT feed uses, so a DPI and a GAM of one facility meet. The
first of PID-18, PV1-19 that names a known stay wins; no stay, nothing marked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from router.adt import AdtEvent, read_adt
from router.dmp_rules import describe
from router.ports import Journal, JournalEvent, MessageState, PatientConsent, Stay, StayState
from router.stages.clock import now as system_now
from router.stays import END_OF_DAY, hl7_time, letter_due

log = structlog.get_logger(__name__)

class AdtStage:
    def __init__(self, journal: Journal, *, letter_types: Iterable[str] = (), deadline: str | float = END_OF_DAY,
                 timezone: str = "Europe/Paris", clock: Callable[[], datetime] = system_now):
        """``letter_types``: the type codes of a stay's lettre de liaison (from the volet registry).

        ``clock`` decides business times (letter sent at, fallback discharge time); events use real time.
        """
        self.journal = journal
        self.letter_types = frozenset(letter_types)
        self.deadline = deadline
        self.zone = ZoneInfo(timezone)
        self.clock = clock

    async def handle(self, key: str, parsed, channel: str = "") -> None:
        """Apply one parsed ADT message (``router.hl7.parse.ParsedMessage``) to its stay."""
        event = read_adt(parsed.text)
        facility = parsed.header.sending_facility or channel
        if event.kind == "patient":
            await self._keep_consent(key, event, facility)
            await self._finish(key, "updated", f"patient {event.ipp or '(no IPP)'} ({facility}): "
                                               f"ADT^{event.trigger}, no stay changed", step="patient")
            return
        if not event.encounter:
            await self._keep_consent(key, event, facility)
            await self._finish(key, "ignored", f"ADT^{event.trigger} without PID-18 nor PV1-19: no stay to update")
            return
        old = await self.journal.stay(facility, event.encounter)
        stay = _merge(old, event, facility, key, self.zone)
        if old is None and event.ipp:
            known = await self.journal.dmp_consent(facility, event.ipp)
            stay = replace(stay, dmp_consent=known.consent if known is not None else None)
        cleared = False
        if event.kind == "admission":
            stay = replace(stay, state=StayState.ADMITTED)
        elif event.kind == "discharge":
            left = (hl7_time(event.discharge_time, self.zone) or hl7_time(event.event_time, self.zone)
                    or hl7_time(event.message_time, self.zone) or self.clock())
            stay = replace(stay, state=StayState.DISCHARGED, discharged_at=left, alert_raised_at=None,
                           letter_due_at=letter_due(left, self.deadline, self.zone))
        elif event.kind in ("cancel_admission", "cancel_discharge"):
            cleared = old is not None and old.alert_raised_at is not None
            state = StayState.CANCELLED if event.kind == "cancel_admission" else StayState.ADMITTED
            stay = replace(stay, state=state, discharged_at=None, letter_due_at=None, alert_raised_at=None,
                           discharge_disposition="", discharge_destination="")
        await self.journal.record_stay(stay)
        await self._keep_consent(key, event, facility)
        if cleared:
            await self._event(key, "alert_cleared", f"stay {stay.encounter}: discharge cancelled (ADT^{event.trigger})")
            log.info("stay.alert_cleared", encounter=stay.encounter, ipp=stay.ipp, reason=event.kind)
        due = f", letter due {stay.letter_due_at.isoformat()}" if stay.letter_due_at else ""
        await self._finish(key, str(stay.state) if event.kind != "update" else "updated",
                           f"stay {stay.encounter} ({facility}): ADT^{event.trigger} → {stay.state}{due}")

    def is_stay_letter(self, type_code: str) -> bool:
        """Whether a document of this type is the stay's lettre de liaison, which the watch waits for."""
        return type_code in self.letter_types

    async def letter_dispatched(self, *, facility: str, encounters: Iterable[str], message_key: str,
                                document_id: str) -> Stay | None:
        """Mark the letter of the matching stay sent (see the module docstring); clear a standing alert."""
        for encounter in dict.fromkeys(e for e in encounters if e):
            before = await self.journal.mark_stay(facility, encounter, letter_sent_at=self.clock(), clear_alert=True)
            if before is None:
                continue
            await self.journal.add_event(JournalEvent(
                message_key=message_key, at=system_now(), step="stay", state="letter_sent",
                detail=f"lettre de liaison for stay {encounter} ({facility})", document_id=document_id))
            if before.alert_raised_at is not None:
                await self._event(before.message_key or message_key, "alert_cleared",
                                  f"stay {encounter}: lettre de liaison {document_id} sent", document_id)
                log.info("stay.alert_cleared", encounter=encounter, ipp=before.ipp, reason="letter_sent")
            return before
        return None

    async def _keep_consent(self, key: str, event: AdtEvent, facility: str) -> None:
        """Make the message's ZFA the patient's DMP consent in force (see the module docstring)."""
        if event.dmp_consent is None:
            return
        summary = describe(event.dmp_consent)
        if not event.ipp:
            await self._consent_event(key, "not_kept", f"ZFA without an IPP (PID-3 PI): not kept; {summary}")
            return
        kept = await self.journal.record_dmp_consent(PatientConsent(facility=facility, ipp=event.ipp,
                                                                    consent=event.dmp_consent, message_key=key))
        where = f"patient {event.ipp} ({facility})"
        if kept:
            await self._consent_event(key, "kept", f"{where}: {summary}")
        else:
            await self._consent_event(key, "superseded", f"{where}: a later ADT gave the consent in force; "
                                                         f"this one is not kept: {summary}")
        log.info("adt.dmp_consent", facility=facility, ipp=event.ipp, kept=kept)

    async def _consent_event(self, key: str, state: str, detail: str) -> None:
        await self.journal.add_event(JournalEvent(message_key=key, at=system_now(), step="dmp_consent",
                                                  state=state, detail=detail))

    async def _finish(self, key: str, state: str, detail: str, step: str = "stay") -> None:
        await self.journal.add_event(JournalEvent(message_key=key, at=system_now(), step=step, state=state,
                                                  detail=detail))
        await self.journal.set_state(key, MessageState.DELIVERED, step=step, detail=detail)

    async def _event(self, key: str, state: str, detail: str, document_id: str = "") -> None:
        await self.journal.add_event(JournalEvent(message_key=key, at=system_now(), step="alert", state=state,
                                                  detail=detail, document_id=document_id))


def _merge(old: Stay | None, event: AdtEvent, facility: str, key: str, zone: ZoneInfo) -> Stay:
    """The stored stay with every field the message fills replaced (a new admitted stay when none)."""
    base = old or Stay(facility=facility, encounter=event.encounter, state=StayState.ADMITTED)
    fields = {
        "ipp": event.ipp,
        "ins": event.ins.matricule if event.ins is not None else "",
        "unit": event.unit,
        "attending": _id(event.attending),
        "referring": _id(event.referring),
        "medecin_traitant": _id(event.medecin_traitant),
        "discharge_disposition": event.discharge_disposition,
        "discharge_destination": event.discharge_destination,
    }
    changes = {name: value for name, value in fields.items() if value}
    admitted = hl7_time(event.admit_time, zone)
    if admitted is not None:
        changes["admitted_at"] = admitted
    return replace(base, message_key=key, **changes)


def _id(participant) -> str:
    return participant.identifier if participant is not None else ""
