"""Static correspondents override the national directory; everyone else is looked up nationally."""

from __future__ import annotations

from channels.directory.layered import LayeredDirectory
from channels.directory.static import StaticDirectory
from router.ports import Mailbox


async def test_overrides_win_and_the_rest_goes_to_the_national_directory():
    national = StaticDirectory([Mailbox("national@medecin-test.mssante.fr", identifier="812345678903",
                                        source="annuaire"),
                                Mailbox("autre@medecin-test.mssante.fr", identifier="801234567897",
                                        source="annuaire")])
    overrides = StaticDirectory([Mailbox("cabinet@medecin-test.mssante.fr", kind="CAB",
                                         identifier="812345678903", source="static")])
    layered = LayeredDirectory(overrides, national)
    assert [m.source for m in await layered.mailboxes("812345678903")] == ["static"]
    assert [m.address for m in await layered.mailboxes("801234567897")] == ["autre@medecin-test.mssante.fr"]
    assert await layered.mailboxes("899999999999") == []
    assert await LayeredDirectory(overrides, None).mailboxes("801234567897") == []
