"""Shared fixtures for the VIHF tests: one cachet PKI per session, settings built from a plain table."""

from __future__ import annotations

from typing import Any

import pytest

from channels.xds.vihf import VihfSettings, from_config
from tests.unit.xds_vihf.cachet_pki import STRUCTURE_ID, CachetPki, make_cachet_pki

#: A fictitious test INS (key computed by router.identity.nir_key) under the test OID.
INS = "285057512345623"
INS_TEST_OID = "1.2.250.1.213.1.4.10"
INS_PROD_OID = "1.2.250.1.213.1.4.8"


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> CachetPki:
    return make_cachet_pki(tmp_path_factory.mktemp("cachet"))


def table(pki: CachetPki, **overrides: Any) -> dict[str, Any]:
    """A complete ``[dmp.vihf]`` table for the test cachet; ``key=None`` removes a key."""
    values: dict[str, Any] = {
        "structure_id": STRUCTURE_ID,
        "activity_sector": "SA01^1.2.250.1.71.4.2.4",
        "subject_id": f"{STRUCTURE_ID}/DSI-DMP",
        "subject_name": "Liaison, moteur d'intégration, DSI",
        "lps_id": "1.2.250.1.999.42.1",
        "lps_homologation_id": "HOMOL-TEST-0001",
        "signing_cert": str(pki.cachet_cert),
        "signing_key": str(pki.cachet_key),
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


@pytest.fixture
def settings(pki) -> VihfSettings:
    return from_config(table(pki), env={})
