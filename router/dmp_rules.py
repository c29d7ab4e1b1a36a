"""When a document may go to the patient's DMP, and why not.

Checked before any call to the DMP, each failure a reason the journal and the
HIS (ZAM^Z01 N) get:

- an INS of an accepted kind (production; test on test platforms) in the CDA,
  with a qualified identity (PID-32 among the accepted statuses) — no deposit
  on an unverified identity;
- the patient did not object: ``PD1-12`` (protection indicator) of the
  document's message is not ``Y``, and the patient's DMP consent (PAM-FR
  ``ZFA``, see below) does not say ``IO`` in ZFA-9 (objection to feeding the
  DMP). ``NA`` (not collected) and an empty ZFA-9 do not block: the law lets a
  document be added unless the patient objected. The consent to *consult* the
  DMP (ZFA-11: ``IC``/``INC``/``NA``) governs reading the DMP, not feeding it:
  it is kept and journaled, never a reason to refuse a deposit;
- a DMP to feed: ZFA-1 is not closed or nonexistent. ``ZFA-1`` values follow the
  Ségur samples (``ACTIF``); ``FERME``, ``ARCHIVE`` and ``INEXISTANT`` are read as
  "no DMP to feed" — an assumption from the PAM-FR ZFA description, to check
  against PAM-FR 2.11;
- the sender asked for it: DESTDMP=Y in PFI mode, the render-mode setting otherwise
  (the caller only sends such jobs here).

Which ZFA is in force: the one in the document's own message when it carries
one, else the latest one the ADT feed gave for that patient (kept by the journal
per facility and IPP, see :mod:`router.stages.adt`).

ZFA fields (PAM-FR 2.11.1, "Statut DMP du patient"): 1 DMP status, 2 its date,
3 closing date, 4 access authorisation for the facility, 5 its date, 6 objection
to break-glass access, 7 objection to access by the emergency call centre, 8 date
of those objections, 9 information and objection to feeding the DMP, 10 its date,
11 information and consent to consulting the DMP, 12 its date.
"""

from __future__ import annotations

from dataclasses import fields

from router.identity import INS_KINDS
from router.model import DmpConsent, DocumentJob
from router.recipients_pfi import segment_id, value

CLOSED_DMP = frozenset({"FERME", "ARCHIVE", "INEXISTANT"})
#: ZFA fields whose values are codes (compared upper-case); the others are dates, kept as sent.
_CODED = frozenset({"status", "access_authorised", "break_glass_opposition", "regulation_opposition", "feeding",
                    "consultation"})


def read_zfa(segment) -> DmpConsent:
    """Every field of a ZFA segment (python-hl7 or lazy segment), codes upper-cased.

    :class:`DmpConsent` declares its fields in ZFA order: its n-th field is ZFA-n.
    """
    found = {}
    for number, spec in enumerate(fields(DmpConsent), start=1):
        text = value(segment, number)
        found[spec.name] = text.upper() if spec.name in _CODED else text
    return DmpConsent(**found)


def read_consent(message) -> tuple[DmpConsent | None, bool]:
    """(the first ZFA, PD1-12 = Y) of an HL7 message's segments; (None, False) when absent."""
    consent, opposed = None, False
    for segment in message:
        kind = segment_id(segment)
        if kind == "ZFA" and consent is None:
            consent = read_zfa(segment)
        elif kind == "PD1":
            opposed = opposed or value(segment, 12).upper() == "Y"
    return consent, opposed


#: ZFA-9 and ZFA-11 codes in words, for the journal.
FEEDING = {"INO": "informed, no objection", "IO": "objection", "NA": "not collected"}
CONSULTATION = {"IC": "consent given", "INC": "consent refused", "NA": "not collected"}


def describe(consent: DmpConsent) -> str:
    """The consent for a person reading the journal: DMP status, feeding (ZFA-9), consultation (ZFA-11)."""
    status = f"{consent.status or '-'}{f' ({consent.status_date})' if consent.status_date else ''}"
    return (f"DMP status {status}; feeding ZFA-9 {_coded(consent.feeding, FEEDING, consent.feeding_date)}; "
            f"consultation ZFA-11 {_coded(consent.consultation, CONSULTATION, consent.consultation_date)}")


def _coded(code: str, words: dict[str, str], date: str) -> str:
    if not code:
        return "not given"
    return f"{code} ({words.get(code, 'unknown code')}{', ' + date if date else ''})"


def deposit_refusal(job: DocumentJob, *, statuses: tuple[str, ...], ins_kinds: tuple[str, ...],
                    consent: DmpConsent | None = None) -> str:
    """Why this job must not be deposited, or "" when it may.

    ``consent`` is the patient's ZFA in force: the job's own when it has one, else the one the
    ADT feed last gave for the patient (the caller looks it up; see the module docstring).
    """
    consent = job.dmp_consent or consent
    header = job.header
    if not header.ins:
        return "no INS in the document: no DMP deposit without the patient's INS"
    kind = INS_KINDS.get(header.ins_oid, "")
    if kind not in ins_kinds:
        return f"INS of kind {kind or 'unknown'} (OID {header.ins_oid}) is not deposited (accepted: {', '.join(ins_kinds)})"
    if job.patient_identity_status not in statuses:
        return (f"identity status {job.patient_identity_status or 'absent'} in PID-32 is not qualified "
                f"(needs {' or '.join(statuses)})")
    if job.dmp_opposition:
        return "the patient objects to sharing (PD1-12 = Y)"
    if consent is not None and consent.feeding_objected:
        return "opposition: the patient objects to feeding their DMP (ZFA-9 = IO)"
    if consent is not None and consent.status in CLOSED_DMP:
        return f"the patient's DMP is {consent.status.lower()} (ZFA-1)"
    return ""


def confidentiality_codes(job: DocumentJob) -> list[str]:
    """The document's confidentiality codes for the DMP: the CDA's (N when absent), then the masking flags.

    A rule of the DMP, not of the XDS encoding: the deposit stage keys masking changes on
    these codes, and the metadata builder (``mappings.xds_metadata``) labels them.
    """
    flags = job.flags
    masks = [code for wanted, code in ((flags.masque_ps, "MASQUE_PS"),
                                       (flags.invisible_patient, "INVISIBLE_PATIENT"),
                                       (flags.invisible_rep_legaux, "INVISIBLE_REPRESENTANTS_LEGAUX")) if wanted]
    return [job.header.confidentiality or "N", *masks]
