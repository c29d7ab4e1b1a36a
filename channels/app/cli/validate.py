"""``liaison validate FILE|DIR...``: check CDA files the way the engine checks them before sending.

For each file (a directory stands for every ``.xml`` file under it): ``CDA_extended.xsd``,
the engine checks (:mod:`router.cda_checks`: known volet, INS OIDs, type code in
JDV_J07 and of its volet), the schematron of its volet (the registry's, else the one
the schematron directory's index names for its templateId, e.g.
``CI-SIS_LDL-EES_2022.01.sch``) and, unless ``--no-profiles``, the minimal-structure
profile. A document no volet schematron checks is INVALID (``no volet schematron for
templateId X``), except a level-1 CDA checked by the profile, which is its model.

Each schematron is compiled once for the whole call, and the XSLT generated from it
is cached on disk (``$XDG_CACHE_HOME/liaison/schematron``, else
``~/.cache/liaison/schematron``; keyed by the digest of the ``.sch`` and its
includes), so later calls skip the generation. Saxon-HE still compiles each XSLT
once per call: with the profiles that is seconds, without them well under one.

Output, per file::

    path: OK
      checked: xsd; engine checks (...); volet CI-SIS_LDL-EES_2022.01.sch; profile ASIP-STRUCT-MIN-StrucMin.sch
    path: INVALID (2 problems)
      checked: ...
      [CI-SIS_LDL-EES_2022.01.sch] error at /*:ClinicalDocument[...] (Entete_LDL-EES): text of the rule
      [engine] ClinicalDocument/code/@code: 99999-9 ... is not in JDV_J07_XdsTypeCode_CISIS (...)
    path: UNREADABLE ([Errno 2] No such file or directory)

then one summary line. Exit status: 0 when every file is OK, 1 when one is INVALID,
2 on an input error (a file that cannot be read, a directory without ``.xml`` file).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from mappings.value_sets import document_type_codes, locate_jdv_dir
from mappings.volets import REGISTRY, UNNAMED_SCHEMATRONS
from router.cda_checks import CdaChecks, template_ids_of
from router.cda_schema import CdaSchemaValidator, locate_schema_dir
from router.cda_xml import parse_cda
from router.errors import ConfigError, ValidationError
from router.schematron import SchematronValidator, locate_schematron_dir, plan_schematrons
from router.schematron_index import schematron_index

EXIT_OK, EXIT_INVALID, EXIT_INPUT = 0, 1, 2


def add_parser(subparsers) -> None:
    """Add ``validate`` to the ``liaison`` sub-commands."""
    validate = subparsers.add_parser("validate", help="check CDA files (or directories of them) as the engine does "
                                                      "before sending: XSD, engine checks, volet schematron")
    validate.add_argument("--schema-dir", type=Path, help="directory of CDA_extended.xsd")
    validate.add_argument("--schematron-dir", type=Path, help="the CI-SIS schematrons directory")
    validate.add_argument("--no-profiles", action="store_true", help="only the volet schematron, not minimal structure")
    validate.add_argument("files", nargs="+", type=Path, help="CDA files, or directories of .xml files")


async def run(args: argparse.Namespace) -> int:
    """0 when every file is OK, 1 when one is INVALID, 2 on an input error."""
    return run_validate(args.files, schema_dir=args.schema_dir, schematron_dir=args.schematron_dir,
                        profiles=not args.no_profiles)


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/liaison/schematron``, else ``~/.cache/liaison/schematron``."""
    env = os.environ if env is None else env
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "liaison" / "schematron"


def run_validate(paths: Iterable[Path], *, schema_dir: Path | None = None, schematron_dir: Path | None = None,
                 profiles: bool = True, out: Callable[[str], object] = print,
                 cache_dir: Path | None | bool = None) -> int:
    """Validate each file (or every ``.xml`` under each directory), print what was checked and found; exit status.

    ``cache_dir``: where generated XSLT is kept (None: :func:`default_cache_dir`, False: nowhere).
    """
    found_schema = locate_schema_dir(schema_dir)
    found_schematrons = locate_schematron_dir(schematron_dir)
    if found_schema is None:
        raise ConfigError("cda_schema_dir", "CDA_extended.xsd not found: pass --schema-dir or set "
                                            "LIAISON_CDA_SCHEMA_DIR")
    if found_schematrons is None:
        raise ConfigError("schematron_dir", "CI-SIS schematrons not found: pass --schematron-dir or set "
                                            "LIAISON_SCHEMATRON_DIR")
    checker = _Checker(CdaSchemaValidator(found_schema), found_schematrons, profiles=profiles,
                       cache_dir=default_cache_dir() if cache_dir is None else (cache_dir or None))
    counts = {"OK": 0, "INVALID": 0, "UNREADABLE": 0}
    for path, problem in _inputs(paths):
        if problem:
            counts["UNREADABLE"] += 1
            out(f"{path}: UNREADABLE ({problem})")
            continue
        try:
            cda = path.read_bytes()
        except OSError as exc:
            counts["UNREADABLE"] += 1
            out(f"{path}: UNREADABLE ({exc.strerror or exc})")
            continue
        checked, problems = checker.check(cda)
        status = "INVALID" if problems else "OK"
        counts[status] += 1
        out(f"{path}: {status}" + (f" ({len(problems)} problem{'s' if len(problems) > 1 else ''})"
                                   if problems else ""))
        if checked:
            out(f"  checked: {'; '.join(checked)}")
        for line in problems:
            out(f"  {line}")
    out(f"{sum(counts.values())} file(s): {counts['OK']} OK, {counts['INVALID']} INVALID, "
        f"{counts['UNREADABLE']} unreadable")
    if counts["UNREADABLE"]:
        return EXIT_INPUT
    return EXIT_INVALID if counts["INVALID"] else EXIT_OK


def _inputs(paths: Iterable[Path]) -> Iterable[tuple[Path, str]]:
    """Each file given, and every ``.xml`` file under each directory given (sorted); a problem for an empty one."""
    for path in map(Path, paths):
        if not path.is_dir():
            yield path, ""
            continue
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".xml" and p.is_file())
        if not files:
            yield path, "a directory without any .xml file"
        yield from ((file, "") for file in files)


class _Checker:
    """Everything one call checks with, built once: the XSD, the index, the engine checks, compiled schematrons."""

    def __init__(self, xsd: CdaSchemaValidator, schematron_dir: Path, *, profiles: bool, cache_dir: Path | None):
        self.xsd = xsd
        self.schematron_dir = schematron_dir
        self.profiles = profiles
        self.cache_dir = cache_dir
        self.index = schematron_index(schematron_dir, UNNAMED_SCHEMATRONS)
        jdv_dir = locate_jdv_dir()
        type_codes = document_type_codes(jdv_dir)[0] if jdv_dir is not None else None
        self.engine_checks = CdaChecks(REGISTRY, index=self.index, type_codes=type_codes)
        self._validators: dict[Path, SchematronValidator | ConfigError] = {}

    def check(self, cda: bytes) -> tuple[list[str], list[str]]:
        """(what was checked, every problem found), one line each."""
        try:
            root = parse_cda(cda)
        except ValidationError as exc:
            return [], [": ".join([exc.reason, *exc.details])]
        checked, problems = ["xsd"], []
        try:
            self.xsd.validate(root)
        except ValidationError as exc:
            problems += [f"[xsd] {detail}" for detail in exc.details] or [f"[xsd] {exc.reason}"]
        checked.append(f"engine checks ({self.engine_checks.describe()})")
        problems += [f"[engine] {problem}" for problem in self.engine_checks.problems(root)]
        plan = plan_schematrons(template_ids_of(root), REGISTRY, schematron_dir=self.schematron_dir,
                                profiles=self.profiles, index=self.index)
        checked += [f"volet {path.name}" for path in plan.volet] + [f"profile {path.name}" for path in plan.profiles]
        for path in plan.paths:
            problems += self._run(path, cda)
        if not plan.checked:
            reason = (f"no volet schematron for templateId {', '.join(plan.unchecked)}" if plan.unchecked
                      else "no volet templateId: the document names no CI-SIS volet")
            problems.append(f"[volet] {reason}")
        return checked, problems

    def _run(self, path: Path, cda: bytes) -> list[str]:
        validator = self._validators.get(path)
        if validator is None:
            try:
                validator = SchematronValidator(path, cache_dir=self.cache_dir)
            except ConfigError as exc:           # a schematron of the bundle that does not compile: said once per file
                validator = exc
            self._validators[path] = validator
        if isinstance(validator, ConfigError):
            return [f"[{path.name}] cannot be used: {validator.reason}"]
        try:
            return validator.validate(cda).describe()
        except ValidationError as exc:
            return [f"[{path.name}] {exc.reason}: {' '.join(exc.details)}".rstrip(": ")]
