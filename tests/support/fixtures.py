"""Where the ANS reference files are, for tests that need them.

``FIXTURES`` is the fixtures directory (env ``LIAISON_FIXTURES``, else ``../shared/fixtures``
next to the repository), or None when absent. Tests call :func:`require_fixture` and are
skipped with a clear message when the files are not there; the files are never copied
into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _locate() -> Path | None:
    configured = os.environ.get("LIAISON_FIXTURES")
    candidate = Path(configured) if configured else Path(__file__).resolve().parents[3] / "shared" / "fixtures"
    return candidate if candidate.is_dir() else None


FIXTURES: Path | None = _locate()


def require_fixture(*parts: str) -> Path:
    """The fixture path ``FIXTURES/<parts...>``, or skip the test when it is missing."""
    path = FIXTURES.joinpath(*parts) if FIXTURES is not None else None
    if path is None or not path.exists():
        missing = "/".join(parts) or "."
        pytest.skip(f"ANS fixtures not found: set LIAISON_FIXTURES or put them in ../shared/fixtures "
                    f"(missing: {missing})")
    return path


def ans_sample(*parts: str) -> str:
    """An ANS sample of the volet (under fixtures/hl7v2-ans/Volets/TRANS_DOC_CDA_HL7V2), CR-separated.

    The samples mix CR and LF between segments; skips when the fixtures are absent.
    """
    path = require_fixture("hl7v2-ans", "Volets", "TRANS_DOC_CDA_HL7V2", *parts)
    return path.read_bytes().decode("utf-8").replace("\r\n", "\r").replace("\n", "\r")
