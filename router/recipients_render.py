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
the directory gives them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from router.model import Participant, Recipient, RecipientKind
from router.ports import Directory, Mailbox

#: Roles render mode knows, with the words used in reasons.
ROLE_NAMES = {
    "medecin_traitant": "médecin traitant",
    "referring": "referring doctor (PV1-8)",
    "attending": "attending doctor (PV1-7)",
    "admitting": "admitting doctor (PV1-17)",
    "copies": "copy recipient",
    "prescriber": "prescriber",
}
LETTER_ROLES = ("medecin_traitant", "referring", "copies")
LAB_ROLES = ("prescriber", "copies")
_KIND_PREFERENCE = {"PER": 0, "CAB": 1, "ORG": 2, "APP": 3}


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
        if not person.identifier[:1] in ("8", "0") or not person.identifier[1:].isdigit():
            choices.append(Choice(candidate.role, person.identifier, "", False,
                                  f"{who}: not an RPPS/ADELI identifier, cannot be looked up in the directory"))
            continue
        found = await directory.mailboxes(person.identifier)
        if not found:
            choices.append(Choice(candidate.role, person.identifier, "", False,
                                  f"{who}: no MSSanté mailbox in the directory"))
            continue
        mailbox = _preferred(found)
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
