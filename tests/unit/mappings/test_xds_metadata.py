"""mappings.xds_metadata: the ebRIM SubmitObjectsRequest built from a DocumentJob."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from structlog.testing import capture_logs

from mappings import xds_metadata as xds
from mappings.codes import content_type_for_patient_class
from mappings.xds_metadata import build_submission, metadata_bytes, xds_time
from router.errors import MappingError
from router.model import Action, Flags, Participant, Recipient, Refusal
from tests.support.ebrim import RIM, entry, package, slot
from channels.testing.cda import SAMPLE_INS, SAMPLE_IPP, SAMPLE_IPP_ROOT, make_cda, make_job

LCM = "{urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0}"
WHEN = datetime(2024, 3, 12, 17, 45, 30, tzinfo=timezone(timedelta(hours=1)))
SOURCE_ID = "1.2.250.1.999.1.9"
INS_CX = f"{SAMPLE_INS}^^^&1.2.250.1.213.1.4.10&ISO^NH"
SENDER = Participant(identifier="810000543214", family="BERNARD", given="Louise",
                     organisation_id="1990000014", organisation_name="CH de Test")


def build(job=None, **kwargs):
    job = job or make_job(sender=SENDER)
    return build_submission(job, submission_time=WHEN, source_id=SOURCE_ID, **kwargs)


def classifications(obj, scheme):
    return [c for c in obj.findall(f"{RIM}Classification") if c.get("classificationScheme") == scheme]


def coded(obj, scheme) -> list[tuple[str, str, str]]:
    """(code, codingScheme, display) of each classification of ``scheme`` on ``obj``."""
    return [(c.get("nodeRepresentation"), slot(c, "codingScheme")[0],
             c.find(f"{RIM}Name/{RIM}LocalizedString").get("value")) for c in classifications(obj, scheme)]


def external_id(obj, scheme) -> str:
    [ext] = [e for e in obj.findall(f"{RIM}ExternalIdentifier") if e.get("identificationScheme") == scheme]
    assert ext.get("registryObject") == obj.get("id")
    return ext.get("value")


def test_root_is_a_submit_objects_request_with_one_registry_object_list():
    request = build()
    assert request.tag == f"{LCM}SubmitObjectsRequest"
    assert [child.tag for child in request] == [f"{RIM}RegistryObjectList"]


def test_submission_set_is_classified_as_such():
    request = build()
    ss = package(request)
    nodes = [c for c in request.iter(f"{RIM}Classification") if c.get("classificationNode") == xds.SS_NODE]
    assert [n.get("classifiedObject") for n in nodes] == [ss.get("id")]


def test_submission_set_slots_and_identifiers():
    ss = package(build())
    assert slot(ss, "submissionTime") == ["20240312164530"]          # UTC
    assert external_id(ss, xds.SS_SOURCE_ID) == SOURCE_ID
    assert external_id(ss, xds.SS_PATIENT_ID) == INS_CX
    assert external_id(ss, xds.SS_UNIQUE_ID).startswith("2.25.")
    assert coded(ss, xds.SS_CONTENT_TYPE_CODE) == [("97", "1.2.250.1.213.2.2", "Type d'activité indifferencié")]


def test_submission_set_content_type_can_be_given():
    ss = package(build(content_type_code=content_type_for_patient_class("I")))
    assert coded(ss, xds.SS_CONTENT_TYPE_CODE)[0][:2] == ("03", "1.2.250.1.213.2.2")


def test_submission_set_author_is_the_sender():
    [author] = classifications(package(build()), xds.SS_AUTHOR)
    assert slot(author, "authorPerson") == ["810000543214^BERNARD^Louise^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"]
    assert slot(author, "authorInstitution") == ["CH de Test^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1990000014"]


def test_submission_set_author_falls_back_to_the_first_cda_author():
    [author] = classifications(package(build(make_job())), xds.SS_AUTHOR)
    assert slot(author, "authorPerson")[0].startswith("810000543214^BERNARD^Louise^")


def test_intended_recipients_are_listed_as_email_addresses():
    job = make_job(sender=SENDER, recipients=(Recipient("dr.durand@hopital-test.mssante.fr"),
                                              Recipient(f"{SAMPLE_INS}@patient.mssante.fr")))
    assert slot(package(build(job)), "intendedRecipient") == [
        "||^^Internet^dr.durand@hopital-test.mssante.fr", f"||^^Internet^{SAMPLE_INS}@patient.mssante.fr"]


def test_a_recipient_refused_when_read_is_not_an_intended_recipient():
    """Its address (for a patient, another person's INS) stays out of the XDM and the DMP submission set."""
    refused = Recipient("172036904501235@patient.mssante.fr", refusal=Refusal("does not match the CDA's INS", "904"))
    job = make_job(sender=SENDER, recipients=(Recipient("dr.durand@hopital-test.mssante.fr"), refused))
    assert slot(package(build(job)), "intendedRecipient") == ["||^^Internet^dr.durand@hopital-test.mssante.fr"]


def test_document_entry_type_and_mime_type():
    de = entry(build())
    assert de.get("objectType") == xds.DE_OBJECT_TYPE
    assert de.get("mimeType") == "text/xml"


def test_document_entry_slots():
    job = make_job(sender=SENDER)
    de = entry(build(job))
    assert slot(de, "creationTime") == ["20240312153000"]            # 16:30 +01:00 in UTC
    assert slot(de, "languageCode") == ["fr-FR"]
    assert slot(de, "hash") == [hashlib.sha1(job.cda).hexdigest()]
    assert slot(de, "size") == [str(len(job.cda))]
    assert slot(de, "serviceStartTime") == ["20240312071500"]
    assert slot(de, "serviceStopTime") == ["20240312152500"]
    assert slot(de, "sourcePatientId") == [f"{SAMPLE_IPP}^^^&{SAMPLE_IPP_ROOT}&ISO^PI"]
    assert slot(de, "sourcePatientInfo") == [
        f"PID-3|{INS_CX}", f"PID-3|{SAMPLE_IPP}^^^&{SAMPLE_IPP_ROOT}&ISO^PI",
        "PID-5|MARTIN^CAMILLE^^^^^L", "PID-7|19850714", "PID-8|F"]
    assert slot(de, "URI") == ["DOC0001.XML"]
    assert slot(de, "legalAuthenticator") == [
        "810000543214^BERNARD^Louise^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"]
    assert de.find(f"{RIM}Name/{RIM}LocalizedString").get("value") == "Compte rendu d'examens biologiques"


def test_document_entry_classifications():
    de = entry(build())
    assert coded(de, xds.DE_CLASS_CODE) == [("10", "1.2.250.1.213.1.1.4.1", "Compte rendu")]
    assert coded(de, xds.DE_TYPE_CODE) == [("11502-2", "2.16.840.1.113883.6.1", "CR d'examens biologiques")]
    assert coded(de, xds.DE_FORMAT_CODE) == [
        ("urn:ihe:lab:xd-lab:2008", "1.3.6.1.4.1.19376.1.2.3",
         "Compte rendu structuré d'examens de biologie médicale")]
    assert coded(de, xds.DE_FACILITY_TYPE_CODE) == [("SA01", "1.2.250.1.71.4.2.4", "Etablissement public de santé")]
    assert coded(de, xds.DE_PRACTICE_SETTING_CODE) == [
        ("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement de santé")]
    assert coded(de, xds.DE_CONFIDENTIALITY_CODE) == [("N", "2.16.840.1.113883.5.25", "Normal")]
    for c in de.findall(f"{RIM}Classification"):
        assert c.get("classifiedObject") == de.get("id")


def test_discharge_letter_gets_its_own_class_and_format():
    de = entry(build(make_job(make_cda(kind="ldl-ses"))))
    assert coded(de, xds.DE_CLASS_CODE)[0][:2] == ("11", "1.2.250.1.213.1.1.4.1")
    assert coded(de, xds.DE_FORMAT_CODE)[0][:2] == ("urn:asip:ci-sis:ldl-ses:2017", "1.2.250.1.213.1.1.4.2.282")


def test_document_entry_author_is_each_cda_author():
    [author] = classifications(entry(build()), xds.DE_AUTHOR)
    assert author.get("nodeRepresentation") == ""
    assert slot(author, "authorPerson") == ["810000543214^BERNARD^Louise^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"]
    assert slot(author, "authorInstitution") == [
        "CH de Test - Laboratoire de biologie^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1990000014"]


def test_document_entry_identifiers():
    de = entry(build())
    assert external_id(de, xds.DE_PATIENT_ID) == INS_CX
    assert external_id(de, xds.DE_UNIQUE_ID) == "1.2.250.1.999.1.3^CRB-240312-0001"


def test_has_member_association_links_the_set_to_the_entry():
    request = build()
    [association] = request.iter(f"{RIM}Association")
    assert association.get("associationType") == xds.HAS_MEMBER
    assert association.get("sourceObject") == package(request).get("id")
    assert association.get("targetObject") == entry(request).get("id")
    assert slot(association, "SubmissionSetStatus") == ["Original"]


@pytest.mark.parametrize("flags, extra", [
    (Flags(), []),
    (Flags(masque_ps=True), ["MASQUE_PS"]),
    (Flags(invisible_patient=True), ["INVISIBLE_PATIENT"]),
    (Flags(invisible_rep_legaux=True), ["INVISIBLE_REPRESENTANTS_LEGAUX"]),
    (Flags(masque_ps=True, invisible_patient=True, invisible_rep_legaux=True),
     ["MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"]),
])
def test_confidentiality_list_is_the_cda_code_then_the_flags(flags, extra):
    codes = coded(entry(build(make_job(flags=flags))), xds.DE_CONFIDENTIALITY_CODE)
    assert [c for c, _, _ in codes] == ["N", *extra]
    assert all(scheme == "1.2.250.1.213.1.1.4.13" for _, scheme, _ in codes[1:])


def test_confidentiality_follows_the_cda():
    codes = coded(entry(build(make_job(make_cda(confidentiality="R")))), xds.DE_CONFIDENTIALITY_CODE)
    assert codes == [("R", "2.16.840.1.113883.5.25", "Restreint")]


@pytest.mark.parametrize("action, expected", [(Action.PUBLISH, []), (Action.REPLACE, ["C"]),
                                              (Action.DELETE, ["D"])])
def test_xdm_action_slot_follows_the_job_action(action, expected):
    assert slot(entry(build(make_job(action=action))), xds.ACTION_SLOT) == expected


def test_iti41_mode_has_no_uri_and_no_action_slot():
    de = entry(build(make_job(action=Action.REPLACE), document_filename=None, xdm_action=False))
    assert slot(de, "URI") == []
    assert slot(de, xds.ACTION_SLOT) == []


def test_rplc_association_is_added_for_a_replacement_when_the_old_entry_is_known():
    old = "urn:uuid:5e1c4a2b-0000-4000-8000-000000000001"
    job = make_job(make_cda(parent_document_id="1.2.250.1.999.1.3^CRB-0"), action=Action.REPLACE)
    request = build(job, replaced_entry_uuid=old)
    [rplc] = [a for a in request.iter(f"{RIM}Association") if a.get("associationType") == xds.RPLC]
    assert rplc.get("sourceObject") == entry(request).get("id")
    assert rplc.get("targetObject") == old


def test_no_rplc_association_for_a_publication():
    request = build(make_job(action=Action.PUBLISH), replaced_entry_uuid="urn:uuid:5e1c4a2b-0000-4000-8000-1")
    assert [a.get("associationType") for a in request.iter(f"{RIM}Association")] == [xds.HAS_MEMBER]


def test_same_job_gives_the_same_bytes():
    job = make_job(sender=SENDER)
    assert metadata_bytes(build(job)) == metadata_bytes(build(job))


def test_ids_are_urn_uuids_derived_from_the_document():
    first, second = build(), build(make_job(make_cda(document_id="1.2.250.1.999.1.3^CRB-OTHER")))
    assert entry(first).get("id").startswith("urn:uuid:")
    assert entry(first).get("id") == xds.entry_uuid("1.2.250.1.999.1.3^CRB-240312-0001")
    assert entry(first).get("id") != entry(second).get("id")
    assert package(first).get("id") != package(second).get("id")


def test_replacement_and_publication_are_different_submission_sets():
    publish, replace = build(make_job()), build(make_job(action=Action.REPLACE))
    assert external_id(package(publish), xds.SS_UNIQUE_ID) != external_id(package(replace), xds.SS_UNIQUE_ID)


def test_without_ipp_the_source_patient_id_is_the_ins():
    assert slot(entry(build(make_job(make_cda(ipp=None)))), "sourcePatientId") == [INS_CX]


def test_the_job_ipp_picks_the_matching_local_id():
    job = make_job(patient_ipp=SAMPLE_IPP)
    assert slot(entry(build(job)), "sourcePatientId") == [f"{SAMPLE_IPP}^^^&{SAMPLE_IPP_ROOT}&ISO^PI"]


def test_without_ins_the_patient_id_falls_back_to_the_ipp_with_a_warning():
    with capture_logs() as logs:
        de = entry(build(make_job(make_cda(ins=None))))
    assert external_id(de, xds.DE_PATIENT_ID) == f"{SAMPLE_IPP}^^^&{SAMPLE_IPP_ROOT}&ISO^PI"
    assert [entry_["event"] for entry_ in logs] == ["xds_patient_id_without_ins"]
    assert SAMPLE_IPP not in str(logs)


def test_a_document_without_any_patient_id_cannot_be_mapped():
    with pytest.raises(MappingError, match="no patient identifier"):
        build(make_job(make_cda(ins=None, ipp=None)))


def test_a_missing_source_id_cannot_be_mapped():
    with pytest.raises(MappingError, match="sourceId"):
        build_submission(make_job(), submission_time=WHEN, source_id="")


def test_hl7_delimiters_in_names_are_escaped():
    sender = Participant(identifier="810000543214", family="DE^LA&ROCHE", given="Anne|Marie",
                         organisation_id="1990000014", organisation_name="CH de Test")
    [author] = classifications(package(build(make_job(sender=sender))), xds.SS_AUTHOR)
    assert slot(author, "authorPerson")[0].startswith("810000543214^DE\\S\\LA\\T\\ROCHE^Anne\\F\\Marie^")


@pytest.mark.parametrize("ts, expected", [
    ("20240312163000+0100", "20240312153000"),
    ("20240101003000+0200", "20231231223000"),
    ("20240312163000-0500", "20240312213000"),
    ("202403121630+0100", "202403121530"),
    ("20240312163000.123+0100", "20240312153000"),
    ("20240312163000", "20240312163000"),
    ("20240312", "20240312"),
    ("", ""),
    ("garbage", ""),
])
def test_hl7_times_become_utc_xds_times(ts, expected):
    assert xds_time(ts) == expected
