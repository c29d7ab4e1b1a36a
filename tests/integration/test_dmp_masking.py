"""A masking change in the DMP end to end: a PFI ORU with DESTDMP=Y deposits a document, then the same document
with MODIF_CONF_CODE=Y and MASQUE_PS=Y changes its confidentiality codes without a new document: an ITI-57
Update DocumentEntry Metadata over mutual TLS to the DMP test double, which keeps a new version of the entry
(same uniqueId, lid = the first entry) and deprecates the first; the HIS gets a ZAM^Z01 each time."""

from __future__ import annotations


from channels.xds import soap
from mappings.xds_metadata import entry_uuid, version_entry_uuid
from router.ports import MessageState, OutcomeStatus
from tests.integration.harness import Pipeline
from channels.testing.cda import make_cda
from channels.testing.messages import Patient, encode_message, make_pfi_oru

DMP_ONLY = {"DESTDMP": "Y", "DESTMSSANTEPS": "N", "ACK_RECEPTION": "Y"}
MASK_PS = {**DMP_ONLY, "MODIF_CONF_CODE": "Y", "MASQUE_PS": "Y"}
DOCUMENT = "1.2.250.1.999.1.3^DMP-MASK-1"


async def send(pipe: Pipeline, cda: bytes, control_id: str, flags: dict[str, str], **options) -> None:
    raw = encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id=control_id, recipients=[],
                                      flags=flags, **options))
    reply = await pipe.send(raw)
    assert reply.code == "AA", reply.text


def z01s(messages: list[str]) -> list[str]:
    return [m for m in messages if "ZAM^Z01" in m]


def delivered(zam: str) -> bool:
    return zam.split("\r")[2].split("|")[5].startswith("Y")


async def test_masking_a_deposited_document_makes_a_new_version_with_masque_ps(dmp):
    pipe, double = dmp
    cda = make_cda(document_id=DOCUMENT)
    await send(pipe, cda, "MASK-0001", DMP_ONLY)
    assert (await pipe.wait_final("MASK-0001")).state == MessageState.DELIVERED
    first = double.by_unique_id(DOCUMENT)
    assert first.confidentiality_codes == ["N"] and first.version == "1"

    await send(pipe, cda, "MASK-0002", MASK_PS)
    record = await pipe.wait_final("MASK-0002")
    assert record.state == MessageState.DELIVERED, record.detail

    assert double.received[-1].action == soap.ITI57_ACTION and double.received[-1].path == "/registry"
    old, new = double.versions(entry_uuid(DOCUMENT))
    assert old is first and old.status == soap.DEPRECATED
    assert new.status == soap.APPROVED and new.version == "2"
    assert new.entry_uuid == version_entry_uuid(DOCUMENT, 2) and new.logical_id == entry_uuid(DOCUMENT)
    assert new.unique_id == DOCUMENT and new.content == cda
    assert new.confidentiality_codes == ["N", "MASQUE_PS"]
    assert double.by_unique_id(DOCUMENT) is new
    assert len(double.documents) == 2                     # no new document: one entry, two versions

    deposit = {o.destination: o for o in await pipe.journal.outcomes(DOCUMENT)}["dmp"]
    assert deposit.status == OutcomeStatus.ACCEPTED
    masking = {o.destination: o for o in await pipe.journal.outcomes(
        f"{DOCUMENT}#conf-N+MASQUE_PS@{record.key}")}["dmp"]
    assert masking.status == OutcomeStatus.ACCEPTED and "MASQUE_PS" in masking.detail

    zams = z01s(await pipe.his.wait_for(2, timeout=20))
    assert len(zams) == 2 and all(delivered(z) for z in zams)


async def test_masking_a_document_the_dmp_does_not_hold_fails_with_the_dmp_reason_and_a_zam_n(dmp):
    pipe, double = dmp
    await send(pipe, make_cda(document_id=DOCUMENT), "MASK-0010", MASK_PS)
    record = await pipe.wait_final("MASK-0010")
    assert record.state == MessageState.FAILED
    [outcome] = [o for o in await pipe.journal.outcomes(f"{DOCUMENT}#conf-N+MASQUE_PS@{record.key}")
                 if o.destination == "dmp"]
    assert outcome.status == OutcomeStatus.FAILED and "UnresolvedReferenceException" in outcome.detail
    assert double.documents == {}
    [zam] = z01s(await pipe.his.wait_for(1, timeout=20))
    assert not delivered(zam) and "DMPRejected" in zam


async def test_masking_then_unmasking_then_deleting_follow_the_current_version(dmp):
    pipe, double = dmp
    cda = make_cda(document_id=DOCUMENT)
    await send(pipe, cda, "MASK-0020", DMP_ONLY)
    assert (await pipe.wait_final("MASK-0020")).state == MessageState.DELIVERED
    await send(pipe, cda, "MASK-0021", MASK_PS)
    assert (await pipe.wait_final("MASK-0021")).state == MessageState.DELIVERED
    # Unmasking: the journal knows the DMP now holds version 2, so the update names it as PreviousVersion.
    await send(pipe, cda, "MASK-0022", {**DMP_ONLY, "MODIF_CONF_CODE": "Y"})
    assert (await pipe.wait_final("MASK-0022")).state == MessageState.DELIVERED
    versions = double.versions(entry_uuid(DOCUMENT))
    assert [v.confidentiality_codes for v in versions] == [["N"], ["N", "MASQUE_PS"], ["N"]]
    assert [v.status for v in versions] == [soap.DEPRECATED, soap.DEPRECATED, soap.APPROVED]
    assert (await pipe.journal.dmp_entry(DOCUMENT)).version == 3

    # The deletion names the current version's entry, not the first one.
    await send(pipe, cda, "MASK-0023", DMP_ONLY, action="D", orc_control="CA")
    assert (await pipe.wait_final("MASK-0023")).state == MessageState.DELIVERED
    assert double.by_entry_uuid(version_entry_uuid(DOCUMENT, 3)).status == soap.DELETED
