"""Code tables kept as data files (JSON next to this module), loaded once and cached.

Each file says where its content comes from in a ``_source`` key, so a table can be
refreshed from the NOS/SMT without reading code. Loaders return plain dicts; callers
must not mutate them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load(name: str) -> dict[str, Any]:
    """The table ``<name>.json`` of this package, parsed once per process."""
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)
