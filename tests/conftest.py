"""Suite-wide fixtures."""

import pytest
import structlog


@pytest.fixture(autouse=True)
def _keep_structlog_configuration():
    """The CLI configures structlog globally (e.g. warning level); give every test the configuration it found."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
