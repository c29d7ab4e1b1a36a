"""Contract suite for the Journal port, patients' DMP consent (PAM-FR ZFA): every adapter must pass it.

Runs on the backends of ``test_journal.py`` (SQLite and PostgreSQL, in clear and encrypted at
rest). The last test, on the clear ones, checks the migrations: a journal made before the consent
existed migrates to it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from channels.journal.schema import LATEST, VERSION_TABLE, statements, ts
from router.model import DmpConsent
from router.ports import PatientConsent
from tests.contract.test_journal import T0, a_stay, backend, journal  # noqa: F401  (fixtures)

OBJECTION = DmpConsent(status="ACTIF", status_date="20240310", feeding="IO", feeding_date="20240310",
                       consultation="INC", consultation_date="20240310")
NO_OBJECTION = DmpConsent(status="ACTIF", feeding="INO", consultation="IC")


def consent(value: DmpConsent = OBJECTION, *, key: str = "K-1", facility: str = "CHU-TEST",
            ipp: str = "IPP000123") -> PatientConsent:
    return PatientConsent(facility=facility, ipp=ipp, consent=value, message_key=key)


async def test_a_patients_consent_round_trips_by_facility_and_ipp(journal):
    assert await journal.dmp_consent("CHU-TEST", "IPP000123") is None
    assert await journal.record_dmp_consent(consent()) is True
    stored = await journal.dmp_consent("CHU-TEST", "IPP000123")
    assert replace(stored, updated_at=None) == consent() and stored.updated_at is not None
    assert await journal.dmp_consent("CH-AUTRE", "IPP000123") is None
    assert await journal.dmp_consent("CHU-TEST", "IPP000999") is None


async def test_a_later_message_replaces_the_consent_and_an_earlier_one_does_not(journal):
    await journal.record_dmp_consent(consent(NO_OBJECTION, key="K-1"))
    assert await journal.record_dmp_consent(consent(OBJECTION, key="K-2")) is True
    assert await journal.record_dmp_consent(consent(NO_OBJECTION, key="K-1")) is False    # redelivered, older
    stored = await journal.dmp_consent("CHU-TEST", "IPP000123")
    assert (stored.message_key, stored.consent) == ("K-2", OBJECTION)
    assert await journal.record_dmp_consent(consent(OBJECTION, key="K-2")) is True       # the same message again


async def test_a_stay_keeps_the_consent_it_is_given(journal):
    await journal.record_stay(a_stay(dmp_consent=OBJECTION))
    assert (await journal.stay("CHU-TEST", "V2025000001")).dmp_consent == OBJECTION
    await journal.record_stay(a_stay())
    assert (await journal.stay("CHU-TEST", "V2025000001")).dmp_consent is None


async def test_every_stay_of_the_patient_shows_the_consent_in_force(journal):
    await journal.record_stay(a_stay("V1", ipp="IPP000123"))
    await journal.record_stay(a_stay("V2", ipp="IPP000123", dmp_consent=NO_OBJECTION))
    await journal.record_stay(a_stay("V3", ipp="IPP000999"))
    await journal.record_stay(a_stay("V4", ipp="IPP000123", facility="CH-AUTRE"))
    await journal.record_dmp_consent(consent(OBJECTION, key="K-2"))
    assert [(await journal.stay("CHU-TEST", e)).dmp_consent for e in ("V1", "V2", "V3")] == \
        [OBJECTION, OBJECTION, None]
    assert (await journal.stay("CH-AUTRE", "V4")).dmp_consent is None
    await journal.record_dmp_consent(consent(NO_OBJECTION, key="K-1"))          # older: the stays keep K-2's
    assert (await journal.stay("CHU-TEST", "V1")).dmp_consent == OBJECTION


async def test_consents_survive_reopening(backend):  # noqa: F811
    async with backend.make() as first:
        await first.record_dmp_consent(consent())
    async with backend.make() as second:
        assert (await second.dmp_consent("CHU-TEST", "IPP000123")).consent == OBJECTION


async def test_the_consent_is_encrypted_at_rest_and_the_ipp_stays_searchable(backend, journal):  # noqa: F811
    await journal.record_stay(a_stay(dmp_consent=OBJECTION))
    await journal.record_dmp_consent(consent(ipp="IPP000777"))
    await journal.close()
    stored = backend.stored_bytes()
    assert b"IPP000777" in stored
    assert (b'"consultation":"INC"' in stored) is not backend.encrypted


@pytest.mark.parametrize("backend", ["sqlite-clear", pytest.param("postgresql-clear", marks=pytest.mark.postgresql)],
                         indirect=True)
async def test_a_journal_made_before_consents_migrates_with_none_on_its_stays(backend):  # noqa: F811
    made_at_v4 = [(VERSION_TABLE.of(backend.dialect), ())]
    for version in (1, 2, 3, 4):
        made_at_v4 += [(statement, ()) for statement in statements(backend.dialect)[version]]
        made_at_v4.append(("INSERT INTO schema_version VALUES (?, ?)", (version, ts(T0))))
    made_at_v4.append(("INSERT INTO stays (facility, encounter, state, ipp, ins, updated_at) "
                       "VALUES ('CHU-TEST', 'V1', 'admitted', 'IPP000123', '', ?)", (ts(T0),)))
    backend.execute(made_at_v4)
    async with backend.make() as journal:
        stay = await journal.stay("CHU-TEST", "V1")
        assert (stay.ipp, stay.dmp_consent) == ("IPP000123", None)
        await journal.record_dmp_consent(consent())
        assert (await journal.stay("CHU-TEST", "V1")).dmp_consent == OBJECTION
    assert backend.execute([("SELECT max(version) FROM schema_version", ())]) == [(LATEST,)]
