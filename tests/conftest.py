"""Suite-wide fixtures."""

import os

import pytest
import structlog


@pytest.fixture(autouse=True)
def _keep_structlog_configuration():
    """The CLI configures structlog globally (e.g. warning level); give every test the configuration it found."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory):
    """``liaison validate`` caches generated XSLT in the user's cache directory: the suite uses its own."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved
