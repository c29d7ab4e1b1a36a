"""Check a CDA against the ANS schema ``CDA_extended.xsd`` (CDA R2 plus the French extensions).

The schema tree (``infrastructure/cda`` of ANS TestContenuCDA) is loaded once per
directory and cached for the process: compiling it costs ~30 ms, validating a
document well under a millisecond. Its includes and imports are relative and
local; the parser is built with ``no_network=True`` so nothing is ever fetched.

Where the schema lives is a deployment matter: :func:`locate_schema_dir` looks at
the configured directory, then ``LIAISON_CDA_SCHEMA_DIR``, then the ANS fixtures
next to the repository (``../shared/fixtures/TestContenuCDA-3-0/infrastructure/cda``).
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import structlog

from router.reference_files import locate
from lxml import etree

from router.cda_xml import parse_cda
from router.errors import ConfigError, ValidationError

log = structlog.get_logger(__name__)

SCHEMA_FILE = "CDA_extended.xsd"
ENV_VAR = "LIAISON_CDA_SCHEMA_DIR"
_FIXTURE_PARTS = ("shared", "fixtures", "TestContenuCDA-3-0", "infrastructure", "cda")
#: How many schema errors a ValidationError carries in ``details``.
MAX_DETAILS = 10


@lru_cache(maxsize=4)
def load_schema(schema_dir: Path) -> etree.XMLSchema:
    """Compile ``CDA_extended.xsd`` from ``schema_dir``, once per (resolved) directory."""
    path = Path(schema_dir) / SCHEMA_FILE
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    try:
        return etree.XMLSchema(etree.parse(str(path), parser))
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        raise ConfigError("cda_schema_dir", f"cannot load {path}: {exc}") from exc


class CdaSchemaValidator:
    """Validates CDA documents against CDA_extended.xsd; one instance can serve every worker task."""

    def __init__(self, schema_dir: Path | str):
        self.schema_dir = Path(schema_dir).resolve()
        self._schema = load_schema(self.schema_dir)
        # An XMLSchema keeps its error log on the instance: serialise validations
        # so two threads never read each other's errors.
        self._lock = threading.Lock()

    def validate(self, cda: bytes | etree._Element) -> None:
        """Raise ValidationError (with the first errors and their line numbers) unless the CDA conforms.

        Accepts raw bytes or a ClinicalDocument element already parsed by
        ``mappings.cda_header.parse_cda`` (so a caller can parse once).
        """
        doc = cda if isinstance(cda, etree._Element) else parse_cda(cda)
        with self._lock:
            if self._schema.validate(doc):
                return
            errors = list(self._schema.error_log)
        details = [f"line {e.line}: {e.message}" for e in errors[:MAX_DETAILS]]
        if len(errors) > MAX_DETAILS:
            details.append(f"... and {len(errors) - MAX_DETAILS} more")
        raise ValidationError(f"CDA does not conform to {SCHEMA_FILE}", details=details)


def locate_schema_dir(configured: str | os.PathLike | None = None, *,
                      env: dict[str, str] | None = None) -> Path | None:
    """The first directory holding CDA_extended.xsd, or None (see router.reference_files.locate)."""
    return locate(SCHEMA_FILE, _FIXTURE_PARTS[2:], configured=configured, env_var=ENV_VAR, env=env)
