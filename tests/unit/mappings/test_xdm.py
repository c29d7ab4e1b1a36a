"""mappings.xdm: the IHE_XDM.ZIP package."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import zipfile
import zlib
from datetime import datetime, timezone

from lxml import etree

from mappings import xdm
from mappings.xdm import build_xdm, compression_for
from mappings.xds_metadata import ACTION_SLOT, DE_UNIQUE_ID
from router.model import Action, Participant
from channels.testing.cda import make_cda, make_job

RIM = "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}"
WHEN = datetime(2024, 3, 12, 16, 0, 0, tzinfo=timezone.utc)
SOURCE_ID = "1.2.250.1.999.1.9"
SENDER = Participant(identifier="810000543214", family="BERNARD", given="Louise",
                     organisation_id="1990000014", organisation_name="CH de Test")
METADATA = "IHE_XDM/SUBSET01/METADATA.XML"
DOCUMENT = "IHE_XDM/SUBSET01/DOC0001.XML"


def package(job=None) -> zipfile.ZipFile:
    job = job or make_job(sender=SENDER)
    return zipfile.ZipFile(io.BytesIO(build_xdm(job, submission_time=WHEN, source_id=SOURCE_ID)))


def slot(metadata: bytes, name: str) -> list[str]:
    root = etree.fromstring(metadata)
    [entry] = root.iter(f"{RIM}ExtrinsicObject")
    return [v.text for s in entry.findall(f"{RIM}Slot") if s.get("name") == name for v in s.iter(f"{RIM}Value")]


def test_zip_holds_the_ihe_xdm_layout():
    assert package().namelist() == ["README.TXT", "INDEX.HTM", METADATA, DOCUMENT]


def test_zip_passes_its_own_integrity_check():
    assert package().testzip() is None


def test_the_document_is_the_cda_byte_for_byte():
    job = make_job()
    assert package(job).read(DOCUMENT) == job.cda


def test_metadata_hash_size_and_uri_describe_the_document_member():
    archive = package()
    metadata, document = archive.read(METADATA), archive.read(DOCUMENT)
    assert slot(metadata, "hash") == [hashlib.sha1(document).hexdigest()]
    assert slot(metadata, "size") == [str(len(document))]
    assert slot(metadata, "URI") == [DOCUMENT.rsplit("/", 1)[1]]


def test_metadata_is_the_submission_of_this_document():
    metadata = etree.fromstring(package().read(METADATA))
    unique_ids = [e.get("value") for e in metadata.iter(f"{RIM}ExternalIdentifier")
                  if e.get("identificationScheme") == DE_UNIQUE_ID]
    assert unique_ids == ["1.2.250.1.999.1.3^CRB-240312-0001"]
    assert package().read(METADATA).startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


def test_replacement_package_carries_action_c():
    job = make_job(make_cda(parent_document_id="1.2.250.1.999.1.3^CRB-0"), action=Action.REPLACE)
    assert slot(package(job).read(METADATA), ACTION_SLOT) == ["C"]


def test_deletion_package_carries_action_d():
    assert slot(package(make_job(action=Action.DELETE)).read(METADATA), ACTION_SLOT) == ["D"]


def test_readme_says_what_it_is_and_who_sent_it():
    readme = package().read("README.TXT").decode("utf-8")
    assert "IHE XDM" in readme
    assert "Liaison" in readme
    assert "CH de Test" in readme and "Louise BERNARD" in readme
    assert SOURCE_ID in readme
    assert "\r\n" in readme


def test_readme_keeps_patient_data_out():
    readme = package().read("README.TXT").decode("utf-8")
    assert "MARTIN" not in readme and "285076938304209" not in readme


def test_index_links_the_document_and_the_metadata():
    index = package().read("INDEX.HTM").decode("utf-8")
    links = re.findall(r'href="([^"]+)"', index)
    assert DOCUMENT in links and METADATA in links
    assert "Compte rendu d&#x27;examens biologiques" in index or "Compte rendu d'examens biologiques" in index


def test_index_escapes_the_title():
    job = make_job(make_cda(title="<script>alert(1)</script>"))
    index = package(job).read("INDEX.HTM").decode("utf-8")
    assert "<script>" not in index and "&lt;script&gt;" in index


def test_small_members_are_deflated():
    assert {i.filename: i.compress_type for i in package().infolist()} == {
        "README.TXT": zipfile.ZIP_DEFLATED, "INDEX.HTM": zipfile.ZIP_DEFLATED,
        METADATA: zipfile.ZIP_DEFLATED, DOCUMENT: zipfile.ZIP_DEFLATED}


def _cda_with_large_pdf(size: int) -> bytes:
    pdf = base64.encodebytes(os.urandom(size))
    cda = make_cda()
    start = cda.index(b'representation="B64">') + len(b'representation="B64">')
    end = cda.index(b"</value>", start)
    return cda[:start] + pdf + cda[end:]


def test_a_large_cda_that_is_mostly_a_compressed_pdf_is_stored_as_is():
    job = make_job(_cda_with_large_pdf(300_000))
    archive = package(job)
    assert archive.getinfo(DOCUMENT).compress_type == zipfile.ZIP_STORED
    assert archive.read(DOCUMENT) == job.cda


def test_large_compressible_content_is_still_deflated():
    text = b"<observation><code code='14749-6'/><value value='5.2' unit='mmol/L'/></observation>\n" * 5000
    assert len(text) > xdm.SMALL_MEMBER
    assert compression_for(text) == zipfile.ZIP_DEFLATED


def test_a_large_compressible_cda_is_deflated_at_the_fast_level():
    rows = b"".join(b"<td>%06d</td>" % (n * 7919 % 1_000_000) for n in range(12_000))
    cda = make_cda()
    cda = cda.replace(b"</ClinicalDocument>", b"<!--" + rows + b"-->\n</ClinicalDocument>")
    job = make_job(cda)
    info = package(job).getinfo(DOCUMENT)
    fast = zlib.compressobj(xdm.LARGE_LEVEL, zlib.DEFLATED, -15)
    assert info.compress_type == zipfile.ZIP_DEFLATED
    assert info.compress_size == len(fast.compress(cda) + fast.flush())


def test_compression_choice_for_random_data():
    assert compression_for(os.urandom(1000)) == zipfile.ZIP_DEFLATED          # small: always deflated
    assert compression_for(base64.encodebytes(os.urandom(200_000))) == zipfile.ZIP_STORED


def test_same_job_and_time_give_the_same_zip():
    job = make_job(sender=SENDER)
    first = build_xdm(job, submission_time=WHEN, source_id=SOURCE_ID)
    assert build_xdm(job, submission_time=WHEN, source_id=SOURCE_ID) == first


def test_member_timestamps_are_the_submission_time():
    assert {i.date_time for i in package().infolist()} == {(2024, 3, 12, 16, 0, 0)}
