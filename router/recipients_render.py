"""Render mode: who gets the document, chosen from the roles the HIS names, each choice with its reason.

The HIS names doctors by RPPS (PV1-7/8/17, ROL ODRP or PD1-4, TXA-23, ORC-12,
OBR-16, OBR-28), never by mail address. The configured roles say which of them
receive a document; each candidate is looked up in the
:class:`~router.ports.Directory` and either kept with the mailbox chosen or
dropped with the reason (unknown RPPS, not an RPPS, no mailbox, duplicate).
Every reason goes to the journal, so "why did Dr X not get the letter?" has
an answer in ``liaison journal show``.

Choice among several mailboxes of one professional: a personal (PER) one
first, then a practice (CAB), then an organisation (ORG) one, in the order
the directory gives them. A red-listed mailbox (liste rouge) is never used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from router.identity import INS_KINDS, InsIdentity, rpps_ok
from router.model import Participant, Recipient, RecipientKind
from router.recipients_pfi import ADDRESS
from router.ports import Directory, Mailbox

#: Roles render mode knows, with the words used in reasons.
ROLE_NAMES = {
    "medecin_traitant": "médecin traitant",
    "referring": "referring doctor (PV1-8)",
    "attending": "attending doctor (PV1-7)",
    "admitting": "admitting doctor (PV1-17)",
    "copies": "copy recipient",
    "prescriber": "prescriber",
    "patient": "patient",
}
LETTER_ROLES = ("medecin_traitant", "referring", "copies", "patient")
LAB_ROLES = ("prescriber", "copies", "patient")
PATIENT_DOMAIN = "patient.mssante.fr"
_KIND_PREFERENCE = {"PER": 0, "CAB": 1, "ORG": 2, "APP": 3}


@dataclass(frozen=True)
class PatientPolicy:
    """When the patient's own mailbox (messagerie citoyenne, ``<INS>@patient.mssante.fr``) may be used.

    Only with an INS whose identity status (PID-32) is among ``statuses`` and whose
    OID is among ``ins_kinds`` (production, and test on test platforms; never a NIA,
    which is not the patient's INS); never for a document hidden from the patient.
    """

    statuses: tuple[str, ...] = ("QUAL", "VALI")
    ins_kinds: tuple[str, ...] = ("production", "test")


@dataclass(frozen=True)
class Candidate:
    role: str
    participant: Participant


@dataclass(frozen=True)
class Choice:
    """One candidate's fate: kept (with the address) or dropped, and why."""

    role: str
    identifier: str
    address: str
    kept: bool
    reason: str


async def choose_recipients(candidates: Iterable[Candidate], directory: Directory
                            ) -> tuple[tuple[Recipient, ...], list[Choice]]:
    """The recipients to mail, de-duplicated by address, and a :class:`Choice` per candidate."""
    recipients: list[Recipient] = []
    choices: list[Choice] = []
    seen: dict[str, str] = {}
    for candidate in candidates:
        person = candidate.participant
        role = ROLE_NAMES.get(candidate.role, candidate.role)
        who = f"{role} {person.identifier or '(no identifier)'}"
        if person.identifier[:1] not in ("8", "0") or not person.identifier[1:].isdigit():
            choices.append(Choice(candidate.role, person.identifier, "", False,
                                  f"{who}: not an RPPS/ADELI identifier, cannot be looked up in the directory"))
            continue
        if person.identifier.startswith("8") and not rpps_ok(person.identifier[1:]):
            choices.append(Choice(candidate.role, person.identifier, "", False,
                                  f"{who}: the RPPS check digit (Luhn) is wrong; not looked up"))
            continue
        found = await directory.mailboxes(person.identifier)
        malformed = [mailbox for mailbox in found if not ADDRESS.match(mailbox.address)]
        found = [mailbox for mailbox in found if ADDRESS.match(mailbox.address)]
        if malformed and not found:
            choices.append(Choice(candidate.role, person.identifier, "", False,
                                  f"{who}: the directory's address is malformed ({len(malformed)} mailbox(es))"))
            continue
        if not found:
            choices.append(Choice(candidate.role, person.identifier, "", False,
                                  f"{who}: no MSSanté mailbox in the directory"))
            continue
        usable = [mailbox for mailbox in found if not mailbox.red_list]
        if not usable:
            choices.append(Choice(candidate.role, person.identifier, "", False,
                                  f"{who}: {_count(found)} in the directory, all on the red list (liste rouge)"))
            continue
        mailbox = _preferred(usable)
        if mailbox.address.lower() in seen:
            choices.append(Choice(candidate.role, person.identifier, mailbox.address, False,
                                  f"{who}: {mailbox.address} already chosen as {seen[mailbox.address.lower()]}"))
            continue
        seen[mailbox.address.lower()] = role
        recipients.append(Recipient(address=mailbox.address, kind=RecipientKind.PROFESSIONAL,
                                    identifier=person.identifier, name=_name(person, mailbox)))
        choices.append(Choice(candidate.role, person.identifier, mailbox.address, True,
                              f"{who}: {_count(found)} in the directory ({mailbox.source or 'directory'}), "
                              f"chose the {mailbox.kind} mailbox {mailbox.address}"))
    return tuple(recipients), choices


def patient_mailbox_refusal(ins_oid: str, identity_status: str, policy: PatientPolicy) -> str:
    """Why a patient's mailbox named by the HIS (PFI mode) must not be used, or "".

    The same rule as :func:`patient_choice`, applied at sending time to a PRT
    patient recipient: the INS of the document and PID-32 of the message.
    """
    kind = INS_KINDS.get(ins_oid, "")
    if kind not in policy.ins_kinds:
        return f"patient: INS of kind {kind or 'unknown'} is not used for the patient's mailbox"
    if identity_status not in policy.statuses:
        return (f"patient: identity status {identity_status or 'absent'} in PID-32 is not qualified "
                f"(needs {' or '.join(policy.statuses)})")
    return ""


def patient_choice(ins: InsIdentity | None, policy: PatientPolicy, *, hidden_reason: str = ""
                   ) -> tuple[Recipient | None, Choice]:
    """The patient's mailbox if the INS and the document allow it, with the reason either way."""
    def dropped(reason: str) -> tuple[None, Choice]:
        return None, Choice("patient", "", "", False, f"patient: {reason}")

    if hidden_reason:
        return dropped(f"document not visible to the patient ({hidden_reason})")
    if ins is None:
        return dropped("no INS in PID-3, so no messagerie citoyenne address")
    if ins.kind not in policy.ins_kinds:
        return dropped(f"INS of kind {ins.kind or 'unknown'} (OID {ins.oid}) is not used for the patient's "
                       f"mailbox (accepted: {', '.join(policy.ins_kinds)})")
    status = ins.reliability or ("VALI" if ins.insi else "")
    if status not in policy.statuses and not ins.qualified:
        return dropped(f"identity status {status or 'absent'} in PID-32 is not qualified "
                       f"(needs {' or '.join(policy.statuses)})")
    address = f"{ins.matricule}@{PATIENT_DOMAIN}"
    return (Recipient(address=address, kind=RecipientKind.PATIENT, identifier=ins.matricule),
            Choice("patient", "", address, True,
                   f"patient: INS {ins.kind} with identity status {status}: messagerie citoyenne"))


def candidates_for(roles: Sequence[str], people: dict[str, Iterable[Participant | None]]) -> list[Candidate]:
    """The candidates of the configured ``roles``, in that order, from what the message names per role."""
    return [Candidate(role, person) for role in roles for person in people.get(role, ()) if person is not None]


def _preferred(found: list[Mailbox]) -> Mailbox:
    return min(found, key=lambda mailbox: _KIND_PREFERENCE.get(mailbox.kind, 9))


def _count(found: list[Mailbox]) -> str:
    kinds = ", ".join(sorted({mailbox.kind for mailbox in found}))
    return f"{len(found)} mailbox{'es' if len(found) > 1 else ''} ({kinds})"


def _name(person: Participant, mailbox: Mailbox) -> str:
    return " ".join(part for part in (person.given, person.family) if part) or mailbox.name
