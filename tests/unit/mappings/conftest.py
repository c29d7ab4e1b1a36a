"""The validators the mapping tests prove their documents with, built once per run from the ANS reference files."""

from __future__ import annotations

import pytest

from router.cda_schema import CdaSchemaValidator
from router.schematron import MINIMAL_STRUCTURE, SchematronValidator
from tests.support.fixtures import require_fixture


@pytest.fixture(scope="session")
def xsd() -> CdaSchemaValidator:
    """CDA_extended.xsd of the TestContenuCDA kit."""
    return CdaSchemaValidator(require_fixture("TestContenuCDA-3-0", "infrastructure", "cda"))


@pytest.fixture(scope="session")
def minimal_structure() -> SchematronValidator:
    """The CI-SIS "structuration minimale" profile every French CDA must pass."""
    return SchematronValidator(require_fixture("TestContenuCDA-3-0", "schematrons", MINIMAL_STRUCTURE))
