"""router.whitelist: the verdict on an address, from a list built in memory."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from router.whitelist import DomainEntry, Whitelist, address_domain

GENERATED = datetime(2025, 3, 13, 14, 54, 10, tzinfo=UTC)
DN_A = "CN=smtp-1.operateur-a.fr,OU=111,O=OPERATEUR A,C=FR"
DN_B = "CN=smtp-2.operateur-b.fr,OU=222,O=OPERATEUR B,C=FR"


def _list(*names: str, always_allowed: tuple[str, ...] = ()) -> Whitelist:
    return Whitelist([DomainEntry(name, DN_A) for name in names], GENERATED, always_allowed=always_allowed)


def test_listed_domain_is_allowed_and_the_reason_names_its_operator():
    verdict = _list("ch-test.mssante.fr").check("dr.martin@ch-test.mssante.fr")
    assert verdict.allowed
    assert verdict.reason == f"domain ch-test.mssante.fr is on the MSSanté whitelist (operator {DN_A})"
    assert verdict.domain == "ch-test.mssante.fr"


def test_unknown_domain_is_refused_with_the_list_date():
    verdict = _list("ch-test.mssante.fr").check("someone@gmail.com")
    assert not verdict.allowed
    assert verdict.reason == "domain gmail.com is not on the MSSanté whitelist (generated 2025-03-13)"


def test_domains_compare_case_insensitively_both_ways():
    whitelist = _list("UC-CMP.mssante.fr")
    assert whitelist.check("Secretariat@uc-cmp.MSSANTE.FR").allowed
    assert whitelist.check("x@Uc-Cmp.Mssante.Fr").domain == "uc-cmp.mssante.fr"
    assert "uc-cmp.mssante.fr" in whitelist


def test_subdomains_and_parents_of_a_listed_domain_are_not_allowed():
    whitelist = _list("aura.mssante.fr")
    assert not whitelist.check("x@acppa.aura.mssante.fr").allowed
    assert not whitelist.check("x@mssante.fr").allowed
    assert whitelist.check("x@aura.mssante.fr").allowed


def test_a_domain_listed_by_several_operators_keeps_every_certificate_dn():
    whitelist = Whitelist([DomainEntry("15-20.mssante.fr", DN_A), DomainEntry("15-20.mssante.fr", DN_B),
                           DomainEntry("15-20.mssante.fr", DN_A)], GENERATED)
    assert len(whitelist) == 1 and len(whitelist.entries) == 3
    assert whitelist.operators("15-20.MSSANTE.fr") == (DN_A, DN_B)
    assert whitelist.check("x@15-20.mssante.fr").reason.endswith(f"(operators {DN_A}; {DN_B})")


@pytest.mark.parametrize("address", [
    "", "   ", "no-at-sign.mssante.fr", "two@@ch-test.mssante.fr", "a@b@ch-test.mssante.fr", "@ch-test.mssante.fr",
    "x@", "x@localhost", "x@-bad-.mssante.fr", "x@ch test.mssante.fr", "x y@ch-test.mssante.fr",
    "x@ch-test..mssante.fr", "x@" + "a" * 64 + ".fr",
])
def test_malformed_addresses_are_refused_as_such(address):
    verdict = _list("ch-test.mssante.fr").check(address)
    assert verdict == type(verdict)(False, "malformed address")


def test_display_name_form_and_a_final_dot_are_read():
    whitelist = _list("ch-test.mssante.fr")
    assert whitelist.check("Dr Martin <dr.martin@ch-test.mssante.fr>").allowed
    assert whitelist.check("dr.martin@ch-test.mssante.fr.").allowed
    assert address_domain("  dr.martin@CH-TEST.mssante.fr ") == "ch-test.mssante.fr"


def test_reason_never_carries_the_local_part():
    ins_address = "279035121518989@patient.mssante.fr"
    for whitelist in (_list("ch-test.mssante.fr"), _list("patient.mssante.fr")):
        assert "279035121518989" not in whitelist.check(ins_address).reason


def test_always_allowed_domain_passes_when_absent_from_the_list_and_says_so():
    whitelist = _list("ch-test.mssante.fr", always_allowed=("Patient.MSSante.fr",))
    verdict = whitelist.check("279035121518989@patient.mssante.fr")
    assert verdict.allowed
    assert "not on the MSSanté whitelist (generated 2025-03-13) but is always allowed by configuration" \
        in verdict.reason
    assert not _list("ch-test.mssante.fr").check("279035121518989@patient.mssante.fr").allowed


def test_always_allowed_does_not_extend_to_subdomains():
    whitelist = _list("ch-test.mssante.fr", always_allowed=("patient.mssante.fr",))
    assert not whitelist.check("x@evil.patient.mssante.fr").allowed


def test_a_listed_domain_wins_over_always_allowed_and_names_its_operator():
    verdict = _list("patient.mssante.fr", always_allowed=("patient.mssante.fr",)).check("x@patient.mssante.fr")
    assert verdict.allowed and DN_A in verdict.reason


def test_invalid_always_allowed_domain_is_refused_at_construction():
    with pytest.raises(ValueError, match="always_allowed"):
        _list("ch-test.mssante.fr", always_allowed=("not a domain",))


def test_the_patients_domain_passes_by_rule_when_the_list_does_not_name_it():
    whitelist = Whitelist([DomainEntry("ch-test.mssante.fr", DN_A)], GENERATED, patient_domain="Patient.MSSante.fr")
    verdict = whitelist.check("279035121518989@patient.mssante.fr")
    assert verdict.allowed and verdict.domain == "patient.mssante.fr"
    assert verdict.reason == ("domain patient.mssante.fr is the patients' MSSanté domain (Mon espace santé): "
                              "in the Espace de confiance by rule")
    assert "279035121518989" not in verdict.reason
    assert not whitelist.check("x@evil.patient.mssante.fr").allowed           # that domain exactly
    assert not whitelist.check("x@ailleurs-test.fr").allowed


def test_the_patients_domain_rule_survives_a_change_of_always_allowed_domains():
    whitelist = Whitelist([DomainEntry("ch-test.mssante.fr", DN_A)], GENERATED, patient_domain="patient.mssante.fr")
    assert whitelist.with_always_allowed(["autre-test.mssante.fr"]).check("x@patient.mssante.fr").allowed


def test_an_invalid_patient_domain_is_refused_at_construction():
    with pytest.raises(ValueError, match="patient_domain"):
        Whitelist([DomainEntry("ch-test.mssante.fr", DN_A)], GENERATED, patient_domain="not a domain")
