"""Render mode finds its recipients in the national directory: the Annuaire Santé FHIR API (a local test server)
over the extraction index. The FHIR API answers 503 for the médecin traitant, so the index answers instead and the
journal says so; the referring doctor comes from the API; a red-listed mailbox is never used; both doctors and the
patient (qualified INS) get the rendered letter through Postfix, and the whitelist lets all three through."""

from __future__ import annotations

from channels.directory.importer import import_extraction
from channels.whitelist.settings import from_config as whitelist_settings
from router.ports import MessageState
from tests.integration.harness import Pipeline, xdm_cda
from tests.support import directory_files as files
from channels.testing.adt_messages import DR_DURAND, DR_LEFEVRE, PATIENT
from tests.support.fhir_server import Fault, FhirServer, mss, practitioner
from channels.testing.mdm_messages import make_mdm
from tests.support.postfix import postfix_fixture
from tests.support.whitelist_files import make_list, write_pair

postfix = postfix_fixture()
DURAND = "chloe.durand@hopital-test.mssante.fr"
LEFEVRE = "etienne.lefevre@hopital-test.mssante.fr"


async def test_recipients_come_from_the_fhir_api_and_the_index_with_a_reason_each(postfix, tmp_path, monkeypatch):
    index = tmp_path / "directory.sqlite"
    extraction = files.write_mssante(tmp_path, [
        files.per(1, rpps=DR_DURAND.rpps, family="DURAND", given="Chloé", address=DURAND),
        files.per(2, rpps=DR_LEFEVRE.rpps, family="LEFÈVRE", given="Étienne", address="ancienne@hopital-test.mssante.fr"),
    ])
    assert import_extraction(extraction, index).rows_kept == 2
    source = write_pair(tmp_path / "wl", make_list(["hopital-test.mssante.fr", "patient.mssante.fr"]))
    whitelist = whitelist_settings({"source": str(source), "store_dir": str(tmp_path / "wl-store")})
    assert (await whitelist.open_store().update(str(source))).accepted

    async with FhirServer() as fhir:
        fhir.add(practitioner("p-lefevre", DR_LEFEVRE.rpps, "LEFÈVRE", "Étienne",
                              telecom=[mss("cache@hopital-test.mssante.fr", red_list=True), mss(LEFEVRE)]))
        fhir.fail_next(Fault(503))                       # the first lookup (the médecin traitant) fails
        monkeypatch.setenv("ESANTE_API_KEY", fhir.api_key)
        pipe = Pipeline(tmp_path, postfix.pki, postfix.port, correspondents=(), whitelist=whitelist,
                        directory_settings={"index": str(index),
                                            "fhir": {"base_url": fhir.base_url, "cache_ttl": 0}})
        await pipe.start()
        try:
            assert (await pipe.send(make_mdm(control_id="DIR-0001", unique_id="DOC-DIR-1").encode())).code == "AA"
            record = await pipe.wait_final("DIR-0001")
            assert record.state == MessageState.DELIVERED, record.detail
            events = await pipe.journal.events(record.key)
        finally:
            await pipe.stop()

    reasons = {e.destination: e.detail for e in events if e.step == "recipient" and e.state == "kept"}
    assert set(reasons) == {DURAND, LEFEVRE, f"{PATIENT.ins}@patient.mssante.fr"}
    assert "FHIR API unavailable: HTTP 503" in reasons[DURAND] and "annuaire extraction" in reasons[DURAND]
    assert "annuaire santé FHIR API" in reasons[LEFEVRE]
    mails = postfix.wait_for_mail(3, match=lambda m: b"DOC-DIR-1" in (xdm_cda(m.message) or b""))
    assert {m.recipient for m in mails} == set(reasons)
    assert "cache@hopital-test.mssante.fr" not in {m.recipient for m in mails}
