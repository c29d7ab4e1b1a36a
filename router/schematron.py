"""Check a CDA against the CI-SIS ISO Schematrons (XSLT2 query binding) with Saxon.

A ``.sch`` is compiled once per process into XSLT by the ISO "skeleton" shipped in
the installed lxml (``iso_dsdl_include`` → ``iso_abstract_expand`` →
``iso_svrl_for_xslt1``), run by saxonche. The skeleton as shipped refuses
``queryBinding="xslt2"``; the SVRL stylesheet is patched *in memory* with a
higher-precedence template accepting ``xslt2``/``xpath2`` and emitting XSLT 2.0,
and compiled from that text with the lxml directory as its base URI so its
``xsl:import`` of the skeleton still resolves. Nothing is written next to the
reference files: the generated XSLT is compiled from a string whose static base
URI is the ``.sch`` itself, so ``document('../jeuxDeValeurs/…')`` and includes
resolve as if the file sat there. The ANS bundle was written on a case-insensitive
file system: an include of the ``.sch`` whose case differs from the file on disk
(``entrees/`` for ``Entrees/``) is pointed at the file that exists.

With ``cache_dir`` the generated XSLT text is also kept on disk, keyed by the
digest of the ``.sch`` and every file it includes
(:func:`router.schematron_index.schematron_digest`) and by the lxml and Saxon
versions, so an edited include is never served stale; a hit skips the whole
generation (seconds for the minimal-structure profile). Saxon-HE still compiles
the XSLT in each process (saving a compiled stylesheet needs Saxon-EE).

Validation is then one transform per document, producing SVRL whose
``failed-assert`` and ``successful-report`` become a :class:`SchematronReport`.

Where the schematrons live is a deployment matter: :func:`locate_schematron_dir`
looks like ``router.cda_schema.locate_schema_dir`` does (configured directory,
``LIAISON_SCHEMATRON_DIR``, ``LIAISON_FIXTURES``, ``../shared/fixtures``).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from functools import lru_cache
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import lxml
import structlog
from lxml import etree
import saxonche
from saxonche import PySaxonApiError, PySaxonProcessor

from router.cda_xml import parse_cda
from router.reference_files import locate
from router.errors import ConfigError, ValidationError
from router.ports import Volets
from router.schematron_index import (SchematronIndex, TemplateId, fix_include_case, schematron_digest,
                                     schematron_index, volet_template_ids)

log = structlog.get_logger(__name__)

ENV_VAR = "LIAISON_SCHEMATRON_DIR"
_FIXTURE_PARTS = ("shared", "fixtures", "TestContenuCDA-3-0", "schematrons")
SKELETON_DIR = Path(lxml.__file__).parent / "isoschematron" / "resources" / "xsl" / "iso-schematron-xslt1"
SVRL = "http://purl.oclc.org/dsdl/svrl"
MINIMAL_STRUCTURE = "profils/structurationMinimale/ASIP-STRUCT-MIN-StrucMin.sch"
#: Roles whose failed asserts make a document invalid (no role counts as an error too).
BLOCKING_ROLES = frozenset({"error", "fatal"})

# The skeleton template we shadow, and where the override goes in the SVRL stylesheet.
_SKELETON_XSLT1_TEMPLATES = ("""<xsl:attribute name="version">1.0</xsl:attribute>""",
                             """<xsl:template match="iso:schema" priority="-1">""", 'mode="stylesheetbody"')
_SVRL_END = "</xsl:stylesheet>"
_XSLT2_OVERRIDE = """
<xsl:template match="iso:schema[@queryBinding='xslt2' or @queryBinding='xpath2']" priority="10">
  <axsl:stylesheet>
    <xsl:apply-templates select="iso:ns"/>
    <xsl:attribute name="version">2.0</xsl:attribute>
    <xsl:apply-templates select="." mode="stylesheetbody"/>
  </axsl:stylesheet>
</xsl:template>
"""


class Finding(NamedTuple):
    """One failed assert or successful report, as SVRL gives it (with the pattern it belongs to)."""

    id: str
    role: str
    location: str
    text: str
    pattern: str = ""

    @property
    def rule(self) -> str:
        """The assertion's id, else its pattern's: what names the rule broken (ANS asserts rarely have ids)."""
        return self.id or self.pattern


@dataclass
class SchematronReport:
    schematron: str
    failed: list[Finding] = field(default_factory=list)
    reports: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Failed asserts that block: role error/fatal, or no role."""
        return [f for f in self.failed if not f.role or f.role in BLOCKING_ROLES]

    @property
    def ok(self) -> bool:
        return not self.errors

    def describe(self) -> list[str]:
        """One line per blocking failed assert: ``[schematron] role at location (rule): text``.

        The location is SVRL's XPath with ``*[local-name()='x' and namespace-uri()='…']`` steps shortened to ``x``.
        """
        return [f"[{self.schematron}] {f.role or 'error'} at {_short(f.location)}{f' ({f.rule})' if f.rule else ''}"
                f": {f.text}" for f in self.errors]


_QUALIFIED_STEP = re.compile(r"\*:?\[local-name\(\)\s*=\s*'([^']+)'\s+and\s+namespace-uri\(\)\s*=\s*'[^']*'\]")


def _short(location: str) -> str:
    return _QUALIFIED_STEP.sub(r"\1", location)


# One Saxon processor for the process (a GraalVM isolate: cheap to share, costly to create).
_processor: PySaxonProcessor | None = None
_executables: dict[Path, object] = {}
_compile_lock = threading.Lock()


def _saxon() -> PySaxonProcessor:
    global _processor
    if _processor is None:
        _processor = PySaxonProcessor(license=False)
    return _processor


def _builder(base: Path):
    builder = _saxon().new_document_builder()
    builder.set_base_uri(base.as_uri())
    return builder


@lru_cache(maxsize=1)
def _skeleton() -> tuple[object, object, object]:
    """The three skeleton stylesheets, the SVRL one patched for XSLT2; fails loudly if lxml changed them."""
    skeleton_text = (SKELETON_DIR / "iso_schematron_skeleton_for_xslt1.xsl").read_text(encoding="utf-8")
    svrl_path = SKELETON_DIR / "iso_svrl_for_xslt1.xsl"
    svrl_text = svrl_path.read_text(encoding="utf-8")
    if (not all(text in skeleton_text for text in _SKELETON_XSLT1_TEMPLATES)
            or 'href="iso_schematron_skeleton_for_xslt1.xsl"' not in svrl_text
            or not svrl_text.rstrip().endswith(_SVRL_END)):
        raise ConfigError("schematron", f"the ISO skeleton in {SKELETON_DIR} is not the one this patch expects "
                                        f"(lxml {lxml.__version__}): review router/schematron.py")
    patched = svrl_text.rstrip()[: -len(_SVRL_END)] + _XSLT2_OVERRIDE + _SVRL_END
    xslt = _saxon().new_xslt30_processor()
    include = xslt.compile_stylesheet(stylesheet_file=str(SKELETON_DIR / "iso_dsdl_include.xsl"))
    expand = xslt.compile_stylesheet(stylesheet_file=str(SKELETON_DIR / "iso_abstract_expand.xsl"))
    svrl = xslt.compile_stylesheet(stylesheet_node=_builder(svrl_path).parse_xml(xml_text=patched,
                                                                                  encoding="UTF-8"))
    return include, expand, svrl


def cache_key(sch_path: Path) -> str:
    """What the generated XSLT depends on: the schematron and its includes, the skeleton patch, lxml and Saxon."""
    versions = f"{lxml.__version__}|{getattr(saxonche, '__version__', '')}|{_XSLT2_OVERRIDE}"
    return hashlib.sha256((schematron_digest(sch_path) + versions).encode()).hexdigest()[:16]


def generate_xslt(sch_path: Path, *, cache_dir: Path | None = None) -> str:
    """The XSLT 2 text that validates against ``sch_path`` (cached in ``cache_dir`` when given)."""
    sch_path = Path(sch_path)
    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / f"{sch_path.stem}-{cache_key(sch_path)}.xsl"
        try:
            return cached.read_text(encoding="utf-8")
        except OSError:
            pass
    include, expand, svrl = _skeleton()
    builder = _builder(sch_path)
    source = builder.parse_xml(xml_text=fix_include_case(sch_path), encoding="UTF-8")
    included = include.transform_to_string(xdm_node=source)
    expanded = expand.transform_to_string(xdm_node=builder.parse_xml(xml_text=included, encoding="UTF-8"))
    text = svrl.transform_to_string(xdm_node=builder.parse_xml(xml_text=expanded, encoding="UTF-8"))
    if cached is not None:
        _store(cached, text)
    return text


def _store(cached: Path, text: str) -> None:
    """Write the cache entry atomically; a cache that cannot be written is only a slower next start."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(cached)
    except OSError as exc:
        log.warning("schematron_cache_unwritable", path=str(cached), error=str(exc))


def _compiled(sch_path: Path, cache_dir: Path | None):
    with _compile_lock:
        executable = _executables.get(sch_path)
        if executable is None:
            started = time.perf_counter()
            try:
                text = generate_xslt(sch_path, cache_dir=cache_dir)
                # The .sch as static base URI: relative document() and doc() resolve beside it.
                node = _builder(sch_path).parse_xml(xml_text=text, encoding="UTF-8")
                executable = _saxon().new_xslt30_processor().compile_stylesheet(stylesheet_node=node)
            except PySaxonApiError as exc:
                raise ConfigError("schematron", f"cannot compile {sch_path}: {exc}") from exc
            _executables[sch_path] = executable
            log.info("schematron_compiled", schematron=sch_path.name,
                     seconds=round(time.perf_counter() - started, 2))
        return executable


class SchematronValidator:
    """Validates CDA documents against one schematron, compiled once per process.

    Saxon's executable is documented thread-safe, but each instance serialises its
    own validations (the document builder and the GraalVM thread attachment are not
    worth the risk); run validators in worker processes for parallelism.
    """

    def __init__(self, sch_path: Path | str, *, cache_dir: Path | None = None):
        self.sch_path = Path(sch_path).resolve()
        if not self.sch_path.is_file():
            raise ConfigError("schematron", f"{self.sch_path} not found")
        self._executable = _compiled(self.sch_path, cache_dir)
        self._builder = _builder(self.sch_path)
        self._lock = threading.Lock()

    def validate(self, cda: bytes) -> SchematronReport:
        """Run the schematron over ``cda`` and return its findings (ValidationError if not XML)."""
        text = _as_text(cda)
        with self._lock:
            try:
                node = self._builder.parse_xml(xml_text=text, encoding="UTF-8")
                svrl = self._executable.transform_to_string(xdm_node=node)
            except PySaxonApiError as exc:
                raise ValidationError("CDA cannot be checked by the schematron",
                                      details=[str(exc)[:500]]) from exc
        return _report(self.sch_path.name, svrl)


def _as_text(cda: bytes | str) -> str:
    """The document as text for Saxon, without a byte-order mark (Saxon refuses one before the prolog)."""
    if isinstance(cda, str):
        return cda.removeprefix("\ufeff")
    try:
        return bytes(cda).decode("utf-8-sig")
    except UnicodeDecodeError:
        # Another declared encoding (ISO-8859-1...): let lxml honour the declaration.
        return etree.tostring(parse_cda(cda), encoding=str)


def _report(name: str, svrl: str) -> SchematronReport:
    root = etree.fromstring(svrl.encode("utf-8"))
    report = SchematronReport(name)
    buckets = {f"{{{SVRL}}}failed-assert": report.failed, f"{{{SVRL}}}successful-report": report.reports}
    pattern = ""
    for el in root:                      # SVRL lists each active-pattern before the findings of its rules
        if el.tag == f"{{{SVRL}}}active-pattern":
            pattern = el.get("id") or el.get("name") or ""
        elif el.tag in buckets:
            message = el.find(f"{{{SVRL}}}text")
            text = " ".join("".join(message.itertext()).split()) if message is not None else ""
            buckets[el.tag].append(Finding(el.get("id", ""), el.get("role", ""), el.get("location", ""), text,
                                           pattern))
    return report


def validate_document(cda: bytes, *, volet_schematron: Path, profiles: Sequence[Path] = ()
                      ) -> list[SchematronReport]:
    """Run the volet schematron then each profile; one report per schematron."""
    return [SchematronValidator(path).validate(cda) for path in (volet_schematron, *profiles)]


@dataclass(frozen=True)
class SchematronPlan:
    """The schematrons a document calls for, and the volet templateIds no volet schematron checks.

    ``unchecked`` lists those templateIds; ``no_volet`` says the document names no
    volet at all (neither a CI-SIS document templateId nor one of a registry volet).
    A registry volet without schematron whose model is the generic profile (a level-1
    CDA) counts as checked when the profiles run.
    """

    volet: tuple[Path, ...] = ()
    profiles: tuple[Path, ...] = ()
    unchecked: tuple[str, ...] = ()
    no_volet: bool = False

    @property
    def paths(self) -> list[Path]:
        return [*self.volet, *self.profiles]

    @property
    def checked(self) -> bool:
        """Every volet the document declares is checked by its schematron (or, for a level-1 CDA, the profile)."""
        return not self.unchecked and not self.no_volet


def plan_schematrons(template_ids: Iterable[TemplateId | str], volets: Volets, *, schematron_dir: Path,
                     profiles: bool = True, index: SchematronIndex | None = None) -> SchematronPlan:
    """Registry volets first (their own schematron), then the directory's index for the other CI-SIS volets.

    A volet's schematron in the registry is relative to the schematron directory, or absolute;
    the index picks the version a templateId's extension names, else the newest.
    """
    templates = [t if isinstance(t, TemplateId) else TemplateId(t) for t in template_ids]
    registry = volets.for_template_ids([t.root for t in templates])
    chosen: dict[Path, None] = {}
    covered: set[str] = set()
    unchecked: list[str] = []
    for volet in registry:
        covered.update(volet.template_ids)
        if volet.schematron:
            chosen[schematron_dir / volet.schematron] = None
        elif not (profiles and volet.checked_by_profiles):
            unchecked.append(next(t.root for t in templates if t.root in volet.template_ids))
    index = index if index is not None else schematron_index(Path(schematron_dir).resolve())
    leaves = volet_template_ids(templates)
    for template in leaves:
        if template.root in covered:
            continue
        entry = index.for_template(template)
        if entry is None:
            unchecked.append(template.root)
        else:
            chosen[entry.path] = None
    return SchematronPlan(volet=tuple(chosen), profiles=(schematron_dir / MINIMAL_STRUCTURE,) if profiles else (),
                          unchecked=tuple(dict.fromkeys(unchecked)), no_volet=not registry and not leaves)


def schematrons_for(template_ids: Iterable[TemplateId | str], volets: Volets, *,
                    schematron_dir: Path | None = None, profiles: bool = True) -> list[Path]:
    """The schematrons of the document's volets (by its templateIds), then the minimal-structure profile.

    Empty when the schematrons cannot be found; a document of no known volet gets the profile only.
    """
    root = schematron_dir or locate_schematron_dir()
    if root is None:
        return []
    return plan_schematrons(template_ids, volets, schematron_dir=root, profiles=profiles).paths


def locate_schematron_dir(configured: str | os.PathLike | None = None, *,
                          env: dict[str, str] | None = None) -> Path | None:
    """The first directory holding the CI-SIS schematrons, or None (same search as the CDA schema)."""
    return locate(MINIMAL_STRUCTURE, _FIXTURE_PARTS[2:], configured=configured, env_var=ENV_VAR, env=env)
