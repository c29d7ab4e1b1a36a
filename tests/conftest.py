"""Suite-wide fixtures."""

import logging
import os

import pytest
import structlog


@pytest.fixture(autouse=True)
def _keep_logging_configuration():
    """The CLI configures logging globally (structlog, a root handler on the stderr of the moment, the level);
    give every test the configuration it found."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


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
