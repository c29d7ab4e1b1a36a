"""The MSSanté whitelist through a whole engine: a recipient whose domain is not on the list is never mailed,
the journal says why, and the HIS gets a ZAM^Z02 error for that recipient; the others are delivered by a real
Postfix. The list is our own, verified against its SHA-256 checksum when the engine starts."""

from __future__ import annotations

from router.ports import MessageState, OutcomeStatus
from tests.integration.harness import Pipeline, xdm_cda
from channels.testing.cda import make_cda
from channels.testing.messages import DR_MARTIN, Patient, Rct, encode_message, make_pfi_oru
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
