"""Suite-wide fixtures."""

import logging

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
