"""The MSSanté liste blanche: fetch, verify (SHA-256), keep the last good copy, refresh on a schedule.

Sources are an http(s) URL (default the official
``https://espacedeconfiance.mssante.fr/listeblanchemssante.xml``) or a file path,
each with a ``checksum`` file (default: beside the list, as on the ANS mirror
``ansforge/MSS-liste-blanche``). The verdict itself (:class:`router.whitelist.Whitelist`)
is pure and lives in the core.

    from channels.whitelist import from_config
    settings = from_config(config.get("whitelist", {}))
    store = settings.open_store()            # last good copy, loaded at start
    refresher = settings.refresher(store); refresher.start()
    store.current.check("dr.martin@ch-exemple.mssante.fr")   # -> WhitelistVerdict
"""

from channels.whitelist.errors import ChecksumError, FetchError, ListFormatError, WhitelistError
from channels.whitelist.fetch import OFFICIAL_URL, default_checksum_source
from channels.whitelist.parse import parse_checksum, parse_whitelist, verify_checksum
from channels.whitelist.refresher import WhitelistRefresher
from channels.whitelist.settings import WhitelistSettings, default_store_dir, from_config
from channels.whitelist.store import StoredMetadata, UpdateResult, WhitelistStore

__all__ = [
    "OFFICIAL_URL", "ChecksumError", "FetchError", "ListFormatError", "StoredMetadata", "UpdateResult",
    "WhitelistError", "WhitelistRefresher", "WhitelistSettings", "WhitelistStore", "default_checksum_source",
    "default_store_dir", "from_config", "parse_checksum", "parse_whitelist", "verify_checksum",
]
