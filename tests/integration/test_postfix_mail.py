"""SmtpMailer and the MSSanté mail against a real Postfix relay (STARTTLS + client certificate).

What every relay must do (per-recipient refusals, client certificates, a relay that is down) is in
the Mailer contract suite, tests/contract/test_mailer.py, which runs against this Postfix too.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone

import pytest

from channels.smtp.mailer import SmtpMailer
from mappings.mss_mail import build_mss_mail
from router.model import Action, CdaHeader, DocumentJob, Flags, MessageSource, Recipient, RecipientKind
from router.ports import RecipientStatus
from tests.support.postfix import postfix_fixture

pytestmark = pytest.mark.postfix

postfix = postfix_fixture()

SENDER = "pfi@hopital-test.mssante.fr"
MARTIN = Recipient("dr.martin@hopital-test.mssante.fr", name="Paul Martin")
LABO = Recipient("biologie@labo-test.mssante.fr")
PATIENT = Recipient("280017512345678@patient.mssante.fr", kind=RecipientKind.PATIENT)


def _xdm() -> bytes:
    """A small XDM-shaped archive with fixed timestamps, so every call gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in [("README.TXT", "Liaison test\r\n"), ("INDEX.HTM", "<html><body>IHE_XDM</body></html>"),
                           ("IHE_XDM/SUBSET01/METADATA.XML", "<SubmitObjectsRequest/>"),
                           ("IHE_XDM/SUBSET01/DOC0001.XML", "<ClinicalDocument/>")]:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2025, 3, 14, 9, 30, 0)), text)
    return buffer.getvalue()


def _job(document: str, **flags) -> DocumentJob:
    return DocumentJob(
        job_id=f"msg-{document}:{document}", message_key=f"msg-{document}",
        source=MessageSource("DPI", "HOPITAL", "LIAISON", "HOPITAL", f"CTRL-{document}", "ORU^R01"),
        action=Action.PUBLISH, cda=b"<ClinicalDocument/>",
        header=CdaHeader(document_id=f"1.2.250.1.999.1.1^{document}", type_code="11490-0",
                         title="Lettre de liaison à la sortie", patient_family="Durand", patient_given="Élodie",
                         patient_birth_time="19800115", ins="280017512345678", ins_oid="1.2.250.1.213.1.4.10",
                         ins_traits_complete=True),
        flags=Flags(**flags))


def _mail(job: DocumentJob, recipients, audience="ps") -> tuple[bytes, str]:
    return build_mss_mail(job, _xdm(), sender=SENDER, recipients=recipients, audience=audience, nil="TEST-NIL-0001",
                          default_body="Bonjour,\nveuillez trouver le document ci-joint.",
                          message_id_domain="hopital-test.mssante.fr",
                          now=datetime(2025, 3, 14, 9, 30, tzinfo=timezone.utc))


def _mailer(postfix, **options) -> SmtpMailer:
    pki = postfix.pki
    options = {"client_cert": pki.client_cert, "client_key": pki.client_key, "ca_file": pki.ca_cert,
               "timeout": 15.0, "helo": "pfi.hopital-test.mssante.fr", **options}
    return SmtpMailer("localhost", postfix.port, **options)


def _with_id(message_id: str):
    return lambda mail: mail.message["Message-ID"] == message_id


async def test_xdm_mail_lands_in_the_maildir_with_its_mss_headers(postfix):
    job = _job("DOC-PFX-1", ack_lecture=True, patient_no_reply=True)
    message, message_id = _mail(job, [PATIENT], audience="patient")
    mailer = _mailer(postfix)
    try:
        results = await mailer.send(message, sender=SENDER, recipients=[PATIENT.address])
    finally:
        await mailer.close()

    assert [(r.status, r.code) for r in results] == [(RecipientStatus.ACCEPTED, 250)]
    [delivered] = postfix.wait_for_mail(1, match=_with_id(message_id))
    msg = delivered.message
    assert delivered.recipient == PATIENT.address
    assert msg["Subject"] == "XDM/1.0/DDM+Lettre de liaison à la sortie DURAND Élodie 15/01/1980"
    assert (msg["X-MSS-CODECDA"], msg["X-MSS-INS"], msg["X-MSS-NIL"], msg["X-MSS-MES"]) == (
        "11490-0", "O", "TEST-NIL-0001", "FIN")
    assert msg["Disposition-Notification-To"] == SENDER
    assert "with ESMTPS" in msg["Received"]                 # it went over TLS
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "IHE_XDM.ZIP"
    assert attachment.get_content() == _xdm()
    assert delivered.raw.endswith(message.replace(b"\r\n", b"\n"))   # Maildir keeps LF; only trace headers added


async def test_connection_is_reused_for_the_next_message(postfix):
    first, first_id = _mail(_job("DOC-PFX-3"), [MARTIN])
    second, second_id = _mail(_job("DOC-PFX-4"), [LABO])
    mailer = _mailer(postfix)
    try:
        await mailer.send(first, sender=SENDER, recipients=[MARTIN.address])
        await mailer.send(second, sender=SENDER, recipients=[LABO.address])
    finally:
        await mailer.close()

    mails = postfix.wait_for_mail(2, match=lambda m: m.message["Message-ID"] in (first_id, second_id))
    assert sorted(m.recipient for m in mails) == sorted([MARTIN.address, LABO.address])
    # smtpd logs one "disconnect" line per session with its command counts: one session, two mails
    session = postfix.wait_for_log(" mail=2 ")
    assert "rset=1" in session and "data=2" in session
