"""The MSSanté whitelist through a whole engine: a recipient whose domain is not on the list is never mailed,
the journal says why, and the HIS gets a ZAM^Z02 error for that recipient; the others are delivered by a real
Postfix. The list is our own, verified against its SHA-256 checksum when the engine starts; the patients' domain
(absent from the ANS snapshot) passes by rule unless configured off."""

from __future__ import annotations

import pytest

from router.ports import MessageState, OutcomeStatus
from tests.integration.harness import Pipeline, xdm_cda
from channels.testing.cda import make_cda
from channels.testing.messages import DR_MARTIN, Patient, Rct, encode_message, make_pfi_oru, patient_rct
from tests.support.fixtures import require_fixture
from tests.support.postfix import postfix_fixture
from tests.support.whitelist_files import make_list, write_pair
from channels.whitelist.settings import from_config as whitelist_settings
from mappings.cda_header import read_header

postfix = postfix_fixture()
LAB = Rct("dr.bio@labo-test.mssante.fr", "810000987650", "BIO", "Anne")     # Postfix would accept it


async def test_a_recipient_outside_the_whitelist_is_refused_and_reported(postfix, tmp_path):
    source = write_pair(tmp_path / "published", make_list(["hopital-test.mssante.fr", "patient.mssante.fr"]))
    settings = whitelist_settings({"source": str(source), "store_dir": str(tmp_path / "store"),
                                   "refresh_interval": 3600})
    assert (await settings.open_store().update(str(source))).accepted      # as `liaison whitelist update` does
    pipe = Pipeline(tmp_path, postfix.pki, postfix.port, whitelist=settings)
    await pipe.start()
    try:
        cda = make_cda()
        header = read_header(cda)
        raw = encode_message(make_pfi_oru(cda, patient=Patient.of_cda(cda), control_id="WL-0001", recipients=[DR_MARTIN, LAB],
                                          flags={"ACK_RECEPTION": "Y"}))
        assert (await pipe.send(raw)).code == "AA"
        record = await pipe.wait_final("WL-0001")
        assert record.state == MessageState.PARTIAL, record.detail

        outcomes = {o.destination: o for o in await pipe.journal.outcomes(header.document_id)}
        assert outcomes[DR_MARTIN.address].status == OutcomeStatus.ACCEPTED
        assert outcomes[LAB.address].status == OutcomeStatus.REFUSED
        assert outcomes[LAB.address].detail == ("not mailed: domain labo-test.mssante.fr is not on the MSSanté "
                                                "whitelist (generated 2025-03-13)")
        mails = postfix.wait_for_mail(1, match=lambda m: xdm_cda(m.message) == cda)
        assert [m.recipient for m in mails] == [DR_MARTIN.address]

        zams = await pipe.his.wait_for(2, timeout=20)
        refusal = next(z for z in zams if LAB.address in z)
        assert "MSSDomainNotWhitelisted" in refusal and "|N" in refusal.split("\r")[2]
    finally:
        await pipe.stop()


@pytest.mark.parametrize("table, delivered", [({}, True), ({"patient_domain": ""}, False)],
                         ids=["by-rule", "rule-off"])
async def test_the_patients_domain_passes_by_rule_though_the_published_list_omits_it(postfix, tmp_path, table,
                                                                                     delivered):
    """The ANS snapshot (619 domains, 2025-03-13) does not list patient.mssante.fr; the rule lets Mon espace
    santé through unless ``patient_domain = ""`` turns it off."""
    source = require_fixture("MSS-liste-blanche", "listeblanchemssante.xml")
    settings = whitelist_settings({"source": str(source), "store_dir": str(tmp_path / "store"),
                                   "refresh_interval": 3600, **table})
    store = settings.open_store()
    assert (await store.update(str(source))).accepted
    assert "patient.mssante.fr" not in store.current
    pipe = Pipeline(tmp_path, postfix.pki, postfix.port, whitelist=settings)
    await pipe.start()
    try:
        cda = make_cda(document_id=f"1.2.250.1.999.2.1^WL-PAT-{pipe.prefix[-9:-1]}")
        patient = Patient.of_cda(cda)
        raw = encode_message(make_pfi_oru(cda, patient=patient, control_id="WL-PAT", recipients=[patient_rct(patient)],
                                          flags={"DESTMSSANTEPS": "N", "DESTMSSANTEPAT": "Y", "ACK_RECEPTION": "Y"}))
        assert (await pipe.send(raw)).code == "AA"
        record = await pipe.wait_final("WL-PAT")
        outcome, = await pipe.journal.outcomes(read_header(cda).document_id)
        zam, = await pipe.his.wait_for(1, timeout=20)
        if delivered:
            assert record.state == MessageState.DELIVERED, record.detail
            assert outcome.status == OutcomeStatus.ACCEPTED
            mail, = postfix.wait_for_mail(1, match=lambda m: xdm_cda(m.message) == cda)
            assert mail.recipient == patient.address
            assert "|Y^^" in zam.split("\r")[2]
        else:
            assert record.state == MessageState.FAILED, record.detail
            assert (outcome.status, outcome.detail) == (
                OutcomeStatus.REFUSED,
                "not mailed: domain patient.mssante.fr is not on the MSSanté whitelist (generated 2025-03-13)")
            assert "MSSDomainNotWhitelisted" in zam and "|N" in zam.split("\r")[2]
    finally:
        await pipe.stop()
