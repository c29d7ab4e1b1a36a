"""``liaison validate FILE...``: check CDA files against CDA_extended.xsd and the CI-SIS schematrons.

For each file: the XSD first, then the schematrons its templateIds call for (the
volet's, e.g. LDL-SES 2022.01 or CR-BIO 2024.01, and the minimal-structure
profile). Prints ``OK`` or every blocking failed assertion (role, location, text);
the exit status is the number of invalid files.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from router.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from router.cda_schema import CdaSchemaValidator

_HL7 = "{urn:hl7-org:v3}"


def add_parser(subparsers) -> None:
    """Add ``validate`` to the ``liaison`` sub-commands."""
    validate = subparsers.add_parser("validate", help="check CDA files against the XSD and the CI-SIS schematrons")
    validate.add_argument("--schema-dir", type=Path, help="directory of CDA_extended.xsd")
    validate.add_argument("--schematron-dir", type=Path, help="the CI-SIS schematrons directory")
    validate.add_argument("--no-profiles", action="store_true", help="only the volet schematron, not minimal structure")
    validate.add_argument("files", nargs="+", type=Path)


async def run(args: argparse.Namespace) -> int:
    """The exit status: how many files are invalid (at most 125)."""
    invalid = run_validate(args.files, schema_dir=args.schema_dir, schematron_dir=args.schematron_dir,
                           profiles=not args.no_profiles)
    return min(invalid, 125)


def run_validate(paths: list[Path], *, schema_dir: Path | None = None, schematron_dir: Path | None = None,
                 profiles: bool = True, out: Callable[[str], object] = print) -> int:
    """Validate each file, print what is wrong, and return how many files are invalid."""
    from router.cda_schema import CdaSchemaValidator, locate_schema_dir     # lxml and Saxon: loaded when used
    from router.schematron import locate_schematron_dir
    found_schema = locate_schema_dir(schema_dir)
    found_schematrons = locate_schematron_dir(schematron_dir)
    if found_schema is None:
        raise ConfigError("cda_schema_dir", "CDA_extended.xsd not found: pass --schema-dir or set "
                                            "LIAISON_CDA_SCHEMA_DIR")
    if found_schematrons is None:
        raise ConfigError("schematron_dir", "CI-SIS schematrons not found: pass --schematron-dir or set "
                                            "LIAISON_SCHEMATRON_DIR")
    xsd = CdaSchemaValidator(found_schema)
    invalid = 0
    for path in paths:
        problems = _check(Path(path), xsd, found_schematrons, profiles)
        if problems:
            invalid += 1
            out(f"{path}: INVALID ({len(problems)} problem{'s' if len(problems) > 1 else ''})")
            for line in problems:
                out(f"  {line}")
        else:
            out(f"{path}: OK")
    return invalid


def _check(path: Path, xsd: CdaSchemaValidator, schematron_dir: Path, profiles: bool) -> list[str]:
    from mappings.volets import REGISTRY
    from router.cda_xml import parse_cda
    from router.schematron import SchematronValidator, schematrons_for
    try:
        cda = path.read_bytes()
        root = parse_cda(cda)
    except OSError as exc:
        return [f"cannot read: {exc.strerror or exc}"]
    except ValidationError as exc:
        return [exc.reason, *exc.details]
    problems: list[str] = []
    try:
        xsd.validate(root)
    except ValidationError as exc:
        problems += [f"[xsd] {detail}" for detail in exc.details] or [f"[xsd] {exc.reason}"]
    template_ids = [t.get("root", "") for t in root.findall(f"{_HL7}templateId")]
    for sch in schematrons_for(template_ids, REGISTRY, schematron_dir=schematron_dir, profiles=profiles):
        try:
            report = SchematronValidator(sch).validate(cda)
        except ValidationError as exc:
            problems.append(f"[{sch.name}] {exc.reason}")
            continue
        problems += report.describe()
    return problems
