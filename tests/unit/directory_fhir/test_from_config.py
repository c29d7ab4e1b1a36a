"""from_config: the [directory.fhir] table and the environment variable that holds the key."""

import pytest

from channels.directory.cache import CachedDirectory
from channels.directory.fhir import DEFAULT_BASE_URL, FhirDirectory, from_config
from router.errors import ConfigError
from channels.testing.adt_messages import DR_MARTIN


def test_missing_key_variable_is_named():
    with pytest.raises(ConfigError) as raised:
        from_config({"api_key_env": "LIAISON_TEST_ESANTE_KEY"}, environ={})
    assert raised.value.key == "directory.fhir.api_key_env"
    assert "LIAISON_TEST_ESANTE_KEY" in raised.value.reason


def test_defaults_give_a_cached_directory_on_the_production_gateway():
    built = from_config({}, environ={"ESANTE_API_KEY": "k"})
    assert isinstance(built, CachedDirectory)
    assert (built.ttl, built.negative_ttl) == (21600.0, 300.0)
    assert isinstance(built.inner, FhirDirectory)
    assert (built.inner.base_url, built.inner.timeout, built.inner.page_limit) == (DEFAULT_BASE_URL, 5.0, 10)


def test_zero_ttl_means_no_cache():
    built = from_config({"cache_ttl": 0, "timeout": 2, "max_pages": 3}, environ={"ESANTE_API_KEY": "k"})
    assert isinstance(built, FhirDirectory)
    assert (built.timeout, built.page_limit) == (2.0, 3)


@pytest.mark.parametrize(("key", "value"), [("timeout", "fast"), ("max_pages", 0), ("base_url", "ftp://x")])
def test_bad_values_name_their_key(key, value):
    with pytest.raises(ConfigError, match=f"directory.fhir.{key}"):
        from_config({key: value}, environ={"ESANTE_API_KEY": "k"})


async def test_built_directory_reaches_the_server(server):
    built = from_config({"base_url": server.base_url, "api_key_env": "KEY"}, environ={"KEY": server.api_key})
    try:
        assert len(await built.mailboxes("8" + DR_MARTIN.rpps)) == 2
    finally:
        await built.close()
