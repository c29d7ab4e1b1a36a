"""mappings.xds_metadata.build_metadata_update: the ITI-57 Update DocumentEntry Metadata of a masking change."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mappings import xds_metadata as xds
from mappings.xds_metadata import build_metadata_update, build_submission, entry_uuid, version_entry_uuid
from router.errors import MappingError
from router.model import Flags, Participant
from tests.support.ebrim import RIM, entry, package, slot
from channels.testing.cda import make_cda, make_job

WHEN = datetime(2024, 3, 12, 16, 45, 30, tzinfo=timezone.utc)
SOURCE_ID = "1.2.250.1.999.1.9"
DOCUMENT_ID = "1.2.250.1.999.1.3^MASK-1"
SENDER = Participant(identifier="810000543214", family="BERNARD", given="Louise",
                     organisation_id="1990000014", organisation_name="CH de Test")
MASKED = Flags(dest_dmp=True, modif_conf_code=True, masque_ps=True)


def job(flags: Flags = MASKED):
    return make_job(make_cda(document_id=DOCUMENT_ID), flags=flags, sender=SENDER)


def update(flags: Flags = MASKED, **kwargs):
    return build_metadata_update(job(flags), submission_time=WHEN, source_id=SOURCE_ID, **kwargs)


def has_member(request):
    [member] = [a for a in request.iter(f"{RIM}Association") if a.get("associationType") == xds.HAS_MEMBER]
    return member


def confidentiality(request) -> list[tuple[str, str]]:
    return [(c.get("nodeRepresentation"), slot(c, "codingScheme")[0])
            for c in entry(request).findall(f"{RIM}Classification")
            if c.get("classificationScheme") == xds.DE_CONFIDENTIALITY_CODE]


def unique_id(obj) -> str:
    [ext] = [e for e in obj.findall(f"{RIM}ExternalIdentifier") if e.get("identificationScheme") == xds.DE_UNIQUE_ID]
    return ext.get("value")


def test_the_new_version_has_a_new_entry_uuid_and_the_deposit_entry_as_lid():
    de = entry(update())
    assert de.get("lid") == entry_uuid(DOCUMENT_ID)
    assert de.get("id") == version_entry_uuid(DOCUMENT_ID, 2) != entry_uuid(DOCUMENT_ID)
    assert de.get("id").startswith("urn:uuid:")


def test_the_unique_id_stays_the_document_id():
    assert unique_id(entry(update())) == DOCUMENT_ID


def test_version_info_names_the_next_version_after_the_name_and_before_classifications():
    de = entry(update(previous_version="3"))
    [info] = de.findall(f"{RIM}VersionInfo")
    assert info.get("versionName") == "4"
    tags = [child.tag for child in de]
    assert tags.index(f"{RIM}Name") < tags.index(f"{RIM}VersionInfo") < tags.index(f"{RIM}Classification")
    assert de.get("id") == version_entry_uuid(DOCUMENT_ID, 4)


def test_has_member_carries_original_status_and_the_previous_version():
    request = update(previous_version="2")
    member = has_member(request)
    assert member.get("sourceObject") == package(request).get("id")
    assert member.get("targetObject") == entry(request).get("id")
    assert slot(member, "SubmissionSetStatus") == ["Original"]
    assert slot(member, "PreviousVersion") == ["2"]


def test_the_confidentiality_codes_are_the_cda_code_then_the_masking_flags():
    flags = Flags(dest_dmp=True, modif_conf_code=True, masque_ps=True, invisible_patient=True,
                  invisible_rep_legaux=True)
    assert confidentiality(update(flags)) == [
        ("N", "2.16.840.1.113883.5.25"), ("MASQUE_PS", "1.2.250.1.213.1.1.4.13"),
        ("INVISIBLE_PATIENT", "1.2.250.1.213.1.1.4.13"),
        ("INVISIBLE_REPRESENTANTS_LEGAUX", "1.2.250.1.213.1.1.4.13")]


def test_unmasking_sends_the_cda_code_alone():
    assert confidentiality(update(Flags(dest_dmp=True, modif_conf_code=True))) == [("N", "2.16.840.1.113883.5.25")]


def test_no_rplc_no_uri_no_french_action_slot():
    request = update()
    assert [a.get("associationType") for a in request.iter(f"{RIM}Association")] == [xds.HAS_MEMBER]
    assert slot(entry(request), "URI") == [] and slot(entry(request), xds.ACTION_SLOT) == []


def test_the_rest_of_the_entry_is_the_deposit_metadata():
    """Same builder: apart from ids, lid and VersionInfo, the entry is the deposit's (hash, size, codes...)."""
    deposit = entry(build_submission(job(), submission_time=WHEN, source_id=SOURCE_ID, document_filename=None,
                                     xdm_action=False))
    updated = entry(update())
    for name in ("hash", "size", "creationTime", "sourcePatientId", "languageCode"):
        assert slot(updated, name) == slot(deposit, name) != []
    schemes = [c.get("classificationScheme") for c in updated.findall(f"{RIM}Classification")]
    assert schemes == [c.get("classificationScheme") for c in deposit.findall(f"{RIM}Classification")]
    assert all(c.get("classifiedObject") == updated.get("id") for c in updated.findall(f"{RIM}Classification"))
    assert all(e.get("registryObject") == updated.get("id") for e in updated.findall(f"{RIM}ExternalIdentifier"))


def test_the_submission_set_is_not_the_deposit_one_and_differs_per_masking():
    deposit = build_submission(job(), submission_time=WHEN, source_id=SOURCE_ID, document_filename=None,
                               xdm_action=False)
    masked, unmasked = update(), update(Flags(dest_dmp=True, modif_conf_code=True))
    ids = {package(r).get("id") for r in (deposit, masked, unmasked)}
    assert len(ids) == 3


def test_the_same_job_gives_the_same_bytes():
    assert xds.metadata_bytes(update()) == xds.metadata_bytes(update())


def test_the_deposit_has_no_versioning():
    request = build_submission(job(), submission_time=WHEN, source_id=SOURCE_ID, document_filename=None,
                               xdm_action=False)
    assert entry(request).get("lid") is None and entry(request).findall(f"{RIM}VersionInfo") == []
    assert slot(has_member(request), "PreviousVersion") == []


def test_a_previous_version_that_is_not_a_number_is_a_mapping_error():
    with pytest.raises(MappingError, match="PreviousVersion"):
        update(previous_version="v1")
