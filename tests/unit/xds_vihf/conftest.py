"""Shared fixtures for the VIHF tests: one cachet PKI per session, settings built from a plain table."""

from __future__ import annotations


import pytest

from channels.xds.vihf import VihfSettings, from_config
from channels.testing.cachet_pki import CachetPki, make_cachet_pki, vihf_table

#: A fictitious test INS (key computed by router.identity.nir_key) under the test OID.
INS = "285057512345623"
INS_TEST_OID = "1.2.250.1.213.1.4.10"
INS_PROD_OID = "1.2.250.1.213.1.4.8"


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> CachetPki:
    return make_cachet_pki(tmp_path_factory.mktemp("cachet"))


table = vihf_table


@pytest.fixture
def settings(pki) -> VihfSettings:
    return from_config(table(pki), env={})
