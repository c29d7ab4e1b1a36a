"""The whitelist as the deliver stage sees it: an AddressCheck over the store's current list.

The refresher swaps the store's list while jobs wait, so every check reads the
list in force at sending time. With no list at all (first start, no copy yet
fetched) nothing is sent and nothing is refused for good: the check raises a
transient error and the job waits on the bus for a list.
"""

from __future__ import annotations

from channels.whitelist.store import WhitelistStore
from router.errors import PeerUnavailable
from router.ports import AddressVerdict


class WhitelistCheck:
    def __init__(self, store: WhitelistStore):
        self.store = store

    def check(self, address: str) -> AddressVerdict:
        current = self.store.current
        if current is None:
            raise PeerUnavailable("no MSSanté whitelist available yet (liaison whitelist update, or wait for the "
                                  "scheduled refresh): nothing is mailed unchecked")
        verdict = current.check(address)
        return AddressVerdict(verdict.allowed, verdict.reason)
