"""The AddressCheck contract: whether an address may receive mail, with a reason, read at the time of asking.

Adapters (one today; another joins :data:`ADAPTERS` with a :class:`Checker` of its own):

- ``whitelist``: ``WhitelistCheck`` over a ``WhitelistStore`` that takes listes blanches published
  in the ANS format (list and checksum) in a local folder, as ``liaison whitelist update`` does.

The deliver stage relies on it: an address outside the list is refused with a reason for the journal,
and with no list at all nothing is mailed unchecked (a transient error: the job waits for a list).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from channels.whitelist.check import WhitelistCheck
from channels.whitelist.store import WhitelistStore
from router.errors import PeerUnavailable
from router.ports import AddressCheck
from tests.support.whitelist_files import make_list, write_pair

LISTED = "ch-test.mssante.fr"
OTHER = "clinique-test.mssante.fr"


@dataclass
class Checker:
    """An AddressCheck adapter, and how to put a list of domains in force for it."""

    check: AddressCheck
    publish: Callable[[list[str]], Awaitable[None]]


def whitelist_checker(tmp_path: Path) -> Checker:
    store = WhitelistStore(tmp_path / "store")
    published = tmp_path / "published"

    async def publish(domains: list[str]) -> None:
        result = await store.update(str(write_pair(published, make_list(domains))))
        assert result.accepted, result.reason

    return Checker(WhitelistCheck(store), publish)


ADAPTERS = {"whitelist": whitelist_checker}


@pytest.fixture(params=sorted(ADAPTERS))
def checker(request, tmp_path) -> Checker:
    return ADAPTERS[request.param](tmp_path)


async def test_an_address_in_a_listed_domain_is_allowed_and_the_reason_names_the_domain(checker):
    await checker.publish([LISTED])

    verdict = checker.check.check(f"dr.martin@{LISTED}")

    assert verdict.allowed and LISTED in verdict.reason


async def test_an_address_outside_the_list_is_refused_and_the_reason_names_the_domain(checker):
    await checker.publish([LISTED])

    verdict = checker.check.check("dr.martin@gmail.com")

    assert not verdict.allowed and "gmail.com" in verdict.reason


@pytest.mark.parametrize("address", ["", "sans-arobase.ch-test.mssante.fr", f"a@b@{LISTED}", f"dr martin@{LISTED}"])
async def test_a_malformed_address_is_refused_with_a_reason_not_an_error(checker, address):
    await checker.publish([LISTED])

    verdict = checker.check.check(address)

    assert not verdict.allowed and verdict.reason


async def test_with_no_list_in_force_nothing_is_judged_and_the_error_is_transient(checker):
    with pytest.raises(PeerUnavailable):
        checker.check.check(f"dr.martin@{LISTED}")


async def test_each_check_reads_the_list_in_force_at_that_moment(checker):
    await checker.publish([LISTED])
    assert checker.check.check(f"dr.martin@{LISTED}").allowed

    await checker.publish([OTHER])

    assert not checker.check.check(f"dr.martin@{LISTED}").allowed
    assert checker.check.check(f"secretariat@{OTHER}").allowed
