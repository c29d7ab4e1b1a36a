"""The pre-send check on rendered documents: a site table that maps a lab flag to a code outside the CI-SIS value
set makes the rendered CR-BIO break its volet schematron; the engine parks the message with the failed assertions
in the journal and sends nothing."""

from __future__ import annotations

from channels.testing.pki import make_test_pki
from mappings.tables import Tables
from router.ports import MessageState
from tests.integration.harness import Pipeline
from tests.support.fixtures import require_fixture
from channels.testing.lab_messages import biochemistry, make_lab_oru


async def test_a_rendered_document_that_breaks_its_schematron_is_parked_with_the_assertions(tmp_path):
    require_fixture("TestContenuCDA-3-0", "schematrons", "CI-SIS_BIO-CR-BIO_2024.01.sch")
    bad = Tables.load(overrides={"lab_interpretation": {"codes": {"ZZ": "inventé"}, "by_flag": {"H": "ZZ", "L": "ZZ"}}},
                      jdv_dir=False)
    pipe = Pipeline(tmp_path, make_test_pki(tmp_path / "pki"), relay_port=9, relay_host="127.0.0.1", tables=bad)
    await pipe.start()
    try:
        assert (await pipe.send(make_lab_oru([biochemistry()], control_id="BAD-0001").encode())).code == "AA"
        record = await pipe.wait_final("BAD-0001")
        events = await pipe.journal.events(record.key)
    finally:
        await pipe.stop()
    assert record.state == MessageState.PARKED
    assert "CI-SIS schematron" in record.detail and "JDV_HL7_ObservationInterpretation_CISIS" in record.detail
    assert not any(e.step == "dispatched" for e in events)
