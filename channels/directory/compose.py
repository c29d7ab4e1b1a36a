"""Build the directory render mode asks: the site's correspondents over the national directory.

``[directory]`` chooses the national part:

- ``index = PATH`` only: the local index of the extraction files (``liaison directory import``);
- ``[directory.fhir]`` only: the Annuaire Santé FHIR API (cached);
- both: the FHIR API, falling back to the index when the API times out or answers 429/5xx
  (each mailbox found that way says so in its source, and so in the journal);
- neither: the ``[[correspondents]]`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from channels.directory.fallback import FallbackDirectory
from channels.directory.layered import LayeredDirectory
from channels.directory.static import StaticDirectory
from router.errors import ConfigError
from router.ports import Directory


def build_directory(correspondents, directory: Mapping[str, Any], env: Mapping[str, str] | None = None
                    ) -> LayeredDirectory:
    national: Directory | None = None
    index = directory.get("index")
    if index:
        from channels.directory.index import IndexDirectory
        if not Path(index).is_file():
            raise ConfigError("directory.index", f"no directory index at {index} (build it with "
                                                 "liaison directory import FILE --index PATH)")
        national = IndexDirectory(index)
    if "fhir" in directory:
        from channels.directory.fhir import from_config
        api = from_config(directory["fhir"], env)
        national = FallbackDirectory(api, national) if national is not None else api
    return LayeredDirectory(StaticDirectory.from_config(correspondents), national)
