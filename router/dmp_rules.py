"""When a document may go to the patient's DMP, and why not.

Checked before any call to the DMP, each failure a reason the journal and the
HIS (ZAM^Z01 N) get:

- an INS of an accepted kind (production; test on test platforms) in the CDA,
  with a qualified identity (PID-32 among the accepted statuses) — no deposit
  on an unverified identity;
- the patient did not object: ``PD1-12`` (protection indicator) is not ``Y``,
  and the DMP status the HIS knows (``ZFA-1``, PAM-FR) is not closed or
  nonexistent. ``ZFA-1`` values follow the Ségur samples (``ACTIF``); ``FERME``,
  ``ARCHIVE`` and ``INEXISTANT`` are read as "no DMP to feed" — an assumption
  from the PAM-FR ZFA description, to check against PAM-FR 2.11;
- the sender asked for it: DESTDMP=Y in PFI mode, the render-mode setting otherwise
  (the caller only sends such jobs here).
"""

from __future__ import annotations

from router.identity import INS_KINDS
from router.model import DocumentJob
from router.recipients_pfi import segment_id, value

CLOSED_DMP = frozenset({"FERME", "ARCHIVE", "INEXISTANT"})


def read_consent(message) -> tuple[str, bool]:
    """(ZFA-1 DMP status, PD1-12 = Y) of an HL7 message; ("", False) when absent."""
    status, opposed = "", False
    for segment in message:
        kind = segment_id(segment)
        if kind == "ZFA" and not status:
            status = value(segment, 1).upper()
        elif kind == "PD1":
            opposed = opposed or value(segment, 12).upper() == "Y"
    return status, opposed


def deposit_refusal(job: DocumentJob, *, statuses: tuple[str, ...], ins_kinds: tuple[str, ...]) -> str:
    """Why this job must not be deposited, or "" when it may."""
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
    if job.dmp_status in CLOSED_DMP:
        return f"the patient's DMP is {job.dmp_status.lower()} (ZFA-1)"
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
