"""The MSSanté mail built around IHE_XDM.ZIP: subject, X-MSS-* headers, body and attachment."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from mappings.mss_mail import build_mss_mail
from router.errors import MappingError
from router.model import (Action, CdaHeader, DocumentJob, Flags, MessageSource, Recipient,
                          RecipientKind)

SENDER = "pfi@hopital-test.mssante.fr"
MARTIN = Recipient("dr.martin@hopital-test.mssante.fr", identifier="810001234567", name="Paul Martin")
LABO = Recipient("biologie@labo-test.mssante.fr")
PATIENT = Recipient("280017512345678@patient.mssante.fr", kind=RecipientKind.PATIENT)
NOW = datetime(2025, 3, 14, 9, 30, tzinfo=timezone.utc)
XDM = b"PK\x03\x04" + bytes(range(256)) * 8 + b"PK\x05\x06"


def _job(**changes) -> DocumentJob:
    header = CdaHeader(
        document_id="1.2.250.1.999.1.1^DOC-0001", type_code="11490-0", type_display="Lettre de sortie",
        title="Lettre de liaison à la sortie", patient_family="Durand", patient_given="Élodie",
        patient_birth_time="19800115", ins="280017512345678", ins_oid="1.2.250.1.213.1.4.10",
        ins_traits_complete=True)
    header = replace(header, **changes.pop("header", {}))
    job = DocumentJob(
        job_id="msg-1:DOC-0001", message_key="msg-1",
        source=MessageSource("DPI", "HOPITAL", "LIAISON", "HOPITAL", "CTRL0001", "ORU^R01"),
        action=Action.PUBLISH, cda=b"<ClinicalDocument/>", header=header)
    return replace(job, **changes)


def _build(job: DocumentJob | None = None, *, recipients=(MARTIN,), audience="ps", **options):
    options = {"nil": "TEST-NIL-0001", "default_body": "Bonjour,\nveuillez trouver le document ci-joint.",
               "message_id_domain": "hopital-test.mssante.fr", "now": NOW, **options}
    raw, message_id = build_mss_mail(job or _job(), XDM, sender=SENDER, recipients=list(recipients),
                                     audience=audience, **options)
    return raw, message_id, email.message_from_bytes(raw, policy=email.policy.default)


def test_subject_follows_the_xdm_convention():
    _, _, msg = _build()

    assert msg["Subject"] == "XDM/1.0/DDM+Lettre de liaison à la sortie DURAND Élodie 15/01/1980"


def test_subject_leaves_out_what_the_cda_lacks_and_never_spans_lines():
    job = _job(header={"title": "Compte rendu\r\nBcc: intrus@example.com", "patient_birth_time": "1980"})

    raw, _, msg = _build(job)

    assert msg["Subject"] == "XDM/1.0/DDM+Compte rendu Bcc: intrus@example.com DURAND Élodie"
    assert msg["Bcc"] is None
    assert b"\r\nBcc:" not in raw


def test_qualified_ins_says_o():
    _, _, msg = _build()

    assert msg["X-MSS-INS"] == "O"


@pytest.mark.parametrize("header", [
    {"ins_oid": "1.2.250.1.213.1.4.9"},               # NIA: not a qualified INS
    {"ins_traits_complete": False},                  # identity traits incomplete
    {"ins": "", "ins_oid": ""},                      # no INS at all
    {"ins_oid": "1.2.250.1.71.4.2.1"},               # a local IPP OID
])
def test_anything_short_of_a_qualified_ins_says_n(header):
    _, _, msg = _build(_job(header=header))

    assert msg["X-MSS-INS"] == "N"


def test_production_ins_oid_is_qualified_too():
    _, _, msg = _build(_job(header={"ins_oid": "1.2.250.1.213.1.4.8"}))

    assert msg["X-MSS-INS"] == "O"


def test_codecda_and_nil_are_on_every_message():
    _, _, msg = _build(nil="REF-PRODUIT-42")

    assert msg["X-MSS-CODECDA"] == "11490-0"
    assert msg["X-MSS-NIL"] == "REF-PRODUIT-42"


def test_fin_goes_to_the_patient_when_no_reply_is_wanted():
    job = _job(flags=Flags(patient_no_reply=True))

    _, _, to_patient = _build(job, recipients=[PATIENT], audience="patient")
    _, _, to_doctor = _build(job, recipients=[MARTIN], audience="ps")
    _, _, reply_welcome = _build(_job(), recipients=[PATIENT], audience="patient")

    assert to_patient["X-MSS-MES"] == "FIN"
    assert to_doctor["X-MSS-MES"] is None
    assert reply_welcome["X-MSS-MES"] is None


def test_read_acknowledgement_asks_for_an_mdn_to_the_sender():
    _, _, wanted = _build(_job(flags=Flags(ack_lecture=True)))
    _, _, not_wanted = _build()

    assert wanted["Disposition-Notification-To"] == SENDER
    assert not_wanted["Disposition-Notification-To"] is None


def test_read_notices_can_be_asked_always_never_and_sent_to_another_mailbox():
    _, _, always = _build(mdn="always", mdn_to="liaison-ar@ch.mssante.fr")
    _, _, never = _build(_job(flags=Flags(ack_lecture=True)), mdn="never")

    assert always["Disposition-Notification-To"] == "liaison-ar@ch.mssante.fr"
    assert never["Disposition-Notification-To"] is None


def test_addresses_and_reply_to():
    _, _, msg = _build(_job(reply_to="secretariat.cardio@hopital-test.mssante.fr"), recipients=[MARTIN, LABO])

    assert msg["From"] == SENDER
    assert [a.addr_spec for a in msg["To"].addresses] == [MARTIN.address, LABO.address]
    assert msg["Reply-To"] == "secretariat.cardio@hopital-test.mssante.fr"
    _, _, without = _build()
    assert without["Reply-To"] is None


def test_attachment_is_ihe_xdm_zip_and_round_trips():
    _, _, msg = _build()

    assert msg.get_content_type() == "multipart/mixed"
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "IHE_XDM.ZIP"
    assert attachment.get_content_type() == "application/zip"
    assert attachment["Content-Transfer-Encoding"] == "base64"
    assert attachment.get_content() == XDM


@pytest.mark.parametrize("audience, flags, expected", [
    ("ps", Flags(body_ps="Texte pour le médecin", body_patient="Texte pour le patient"), "Texte pour le médecin"),
    ("patient", Flags(body_ps="Texte pour le médecin", body_patient="Texte pour le patient"),
     "Texte pour le patient"),
    ("ps", Flags(body_patient="Texte pour le patient"), "Bonjour,\nveuillez trouver le document ci-joint."),
])
def test_body_follows_the_audience(audience, flags, expected):
    recipients = [PATIENT] if audience == "patient" else [MARTIN]

    _, _, msg = _build(_job(flags=flags), recipients=recipients, audience=audience)

    body = msg.get_body(preferencelist=("plain",))
    assert body.get_content_charset() == "utf-8"
    assert body.get_content().replace("\r\n", "\n").rstrip("\n") == expected


def test_wire_format_is_crlf_ascii_with_the_message_id_returned():
    raw, message_id, msg = _build()

    assert re.search(rb"(?<!\r)\n", raw) is None
    assert raw.isascii()
    assert msg["Message-ID"] == message_id
    assert re.fullmatch(r"<[0-9a-f]{32}@hopital-test\.mssante\.fr>", message_id)
    assert msg["Date"].datetime == NOW


def test_same_job_and_recipients_give_the_same_bytes_and_others_a_new_message_id():
    first, first_id, _ = _build()
    again, again_id, _ = _build()
    _, other_id, _ = _build(recipients=[LABO])

    assert (again, again_id) == (first, first_id)
    assert other_id != first_id


def test_refuses_a_mail_without_type_code_nil_or_recipients():
    with pytest.raises(MappingError, match="X-MSS-CODECDA"):
        _build(_job(header={"type_code": ""}))
    with pytest.raises(MappingError, match="X-MSS-NIL"):
        _build(nil="")
    with pytest.raises(MappingError, match="recipient"):
        _build(recipients=[])
    with pytest.raises(MappingError, match="audience"):
        _build(audience="famille")


def _package_reference(raw: bytes, xdm: bytes) -> bytes:
    """The same mail built entirely by the email package (set_content, make_mixed, attach), from the headers
    of ``raw``: the oracle the hand-assembled multipart body must match byte for byte."""
    from email.message import EmailMessage, MIMEPart

    from mappings.mss_mail import ATTACHMENT_NAME, _POLICY
    parsed = email.message_from_bytes(raw, policy=_POLICY)
    msg = EmailMessage(policy=_POLICY)
    for name, value in parsed.items():
        if name not in ("MIME-Version", "Content-Type"):
            msg[name] = value
    text = parsed.get_payload()[0].get_content()
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.make_mixed()
    attachment = MIMEPart(policy=_POLICY)
    attachment.set_content(xdm, maintype="application", subtype="zip", disposition="attachment",
                           filename=ATTACHMENT_NAME)
    msg.attach(attachment)
    msg.set_boundary(parsed.get_boundary())
    return msg.as_bytes(policy=_POLICY)


@pytest.mark.parametrize("size", [1, 747, 748, 20_000])
def test_the_assembled_mail_is_byte_for_byte_what_the_email_package_writes(size):
    xdm = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    job = _job(flags=replace(Flags(), body_ps="Cher confrère,\nci-joint — « résultat » œdème.", ack_lecture=True),
               reply_to="secretariat@hopital-test.mssante.fr")
    recipients = [MARTIN, Recipient("dr.zoe@hopital-test.mssante.fr", name='Zoé "Z" Élan')]
    raw, _ = build_mss_mail(job, xdm, sender=SENDER, recipients=recipients, audience="ps", nil="TEST-NIL-0001",
                            default_body="Bonjour", message_id_domain="hopital-test.mssante.fr", now=NOW)
    assert raw == _package_reference(raw, xdm)
    assert email.message_from_bytes(raw, policy=email.policy.default).get_payload()[1].get_content() == xdm
