"""Which CI-SIS schematron checks which volet: an index read from the schematron directory itself.

The ANS bundle holds one ``CI-SIS_<volet>_<version>.sch`` per volet and version
(about sixty). A CI-SIS document declares its model by a templateId under the
arc of CI-SIS document models, ``1.2.250.1.213.1.1.1`` (``.21`` is the admission
letter, ``.45`` CR-IMAGERIE, ``.37`` VAC...), usually with the volet version as
extension; every CI-SIS document also carries the common ``1.2.250.1.213.1.1.1.1``.
The schematron of a volet names its templateId in a rule context
(``*[cda:templateId/@root="…"]``) or an assertion (``cda:templateId[@root='…']``),
in the ``.sch`` itself or in one of its includes (the volet's ``Entete_*.sch``).

:func:`schematron_index` reads those attributes with lxml, following
``sch:include``/``sch:extends`` (about 60 ms for the whole bundle, nothing is
compiled), once per directory and process. For each schematron it keeps the
volet templateIds it names (the most specific ones: CSE-CS8 names the CSE family
``.5`` and its own ``.5.1``, it is indexed under ``.5.1``) and a digest of the
``.sch`` and all its includes, which keys the compiled-XSLT cache of
:mod:`router.schematron`. A schematron whose includes are missing or broken is
left out and listed in :attr:`SchematronIndex.broken`.

:meth:`SchematronIndex.for_template` picks, for one templateId, the schematron of
the version its extension names when the bundle has it, else the newest version.
Some schematrons name no document templateId at all (CSE-MDE, OPH-CR-RTN): the
caller may add them with ``extra`` (templateId → file name).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

import structlog
from lxml import etree

log = structlog.get_logger(__name__)

SCH = "http://purl.oclc.org/dsdl/schematron"
#: The arc of CI-SIS document models (one templateId per volet) and the templateId every CI-SIS document has.
CISIS_DOCUMENTS = "1.2.250.1.213.1.1.1"
CISIS_COMMON = "1.2.250.1.213.1.1.1.1"

_DOCUMENT_OID = re.compile(re.escape(CISIS_DOCUMENTS) + r"(?:\.\d+)+")
_NAME = re.compile(r"^(?:CI-SIS_)?(?P<volet>.+)_(?P<version>\d{4}\.\d{2})$")
_INCLUDES = (f"{{{SCH}}}include", f"{{{SCH}}}extends")


class TemplateId(NamedTuple):
    """A ClinicalDocument/templateId: its root and, for a CI-SIS volet, the version as extension."""

    root: str
    extension: str = ""


@dataclass(frozen=True)
class IndexedSchematron:
    """One volet schematron: its file, volet name and version (from the file name), the templateIds it checks."""

    path: Path
    volet: str
    version: str
    template_ids: frozenset[str]
    digest: str = field(repr=False)

    @property
    def name(self) -> str:
        return self.path.name


class SchematronIndex:
    """The volet schematrons of one directory, looked up by templateId."""

    def __init__(self, directory: Path, entries: Iterable[IndexedSchematron],
                 broken: Mapping[str, str] | None = None):
        self.directory = directory
        self._entries = tuple(entries)
        self.broken = dict(broken or {})
        self._by_template: dict[str, list[IndexedSchematron]] = {}
        for entry in self._entries:
            for root in entry.template_ids:
                self._by_template.setdefault(root, []).append(entry)

    def __iter__(self) -> Iterator[IndexedSchematron]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def template_ids(self) -> frozenset[str]:
        """Every templateId some schematron of the directory checks."""
        return frozenset(self._by_template)

    def knows(self, root: str) -> bool:
        return root in self._by_template

    def for_template(self, template: TemplateId | str) -> IndexedSchematron | None:
        """The schematron for a templateId: the version its extension names, else the newest; None if none."""
        template = TemplateId(template) if isinstance(template, str) else template
        candidates = self._by_template.get(template.root)
        if not candidates:
            return None
        exact = [c for c in candidates if template.extension and c.version == template.extension]
        return max(exact or candidates, key=lambda c: (c.version, c.name))


def volet_template_ids(template_ids: Iterable[TemplateId | str]) -> list[TemplateId]:
    """The document's CI-SIS volet templateIds: under the document-model arc, not the common one, most specific.

    A CSE-CS8 certificate declares the CSE family (``…1.1.1.5``) and its own model
    (``…1.1.1.5.1``): only the latter is its volet.
    """
    found = [t if isinstance(t, TemplateId) else TemplateId(t) for t in template_ids]
    found = [t for t in found if _DOCUMENT_OID.fullmatch(t.root) and t.root != CISIS_COMMON]
    roots = {t.root for t in found}
    leaves = [t for t in found if not any(other.startswith(t.root + ".") for other in roots)]
    return list(dict.fromkeys(leaves))


@cache
def schematron_index(directory: Path, extra: tuple[tuple[str, str], ...] = ()) -> SchematronIndex:
    """The index of ``directory`` (built once per process; ``extra`` adds templateId → file name pairs)."""
    return build_index(directory, dict(extra))


def build_index(directory: Path, extra: Mapping[str, str] | None = None) -> SchematronIndex:
    """Read every top-level ``.sch`` of ``directory`` (and its includes) for the templateIds it checks."""
    directory = Path(directory).resolve()
    extra_by_name: dict[str, set[str]] = {}
    for root, name in (extra or {}).items():
        extra_by_name.setdefault(name, set()).add(root)
    entries: list[IndexedSchematron] = []
    broken: dict[str, str] = {}
    for path in sorted(directory.glob("*.sch")):
        try:
            files = _closure(path)
        except _Broken as exc:
            broken[path.name] = str(exc)
            log.info("schematron_index.broken", schematron=path.name, problem=str(exc))
            continue
        named = set().union(*(_template_ids(tree) for _, tree, _ in files))
        roots = {t.root for t in volet_template_ids(named)} | extra_by_name.get(path.name, set())
        if not roots:
            continue
        match = _NAME.match(path.stem)
        volet, version = (match["volet"], match["version"]) if match else (path.stem, "")
        entries.append(IndexedSchematron(path, volet, version, frozenset(roots), _digest(path, files)))
    return SchematronIndex(directory, entries, broken)


def fix_include_case(sch_path: Path) -> str:
    """The text of a ``.sch`` whose includes point at files that exist, when only their case differed.

    The ANS bundle was written on Windows: ``CI-SIS_CARD-F-PRC-TAP_2022.01.sch`` includes
    ``…/entrees/…`` where the folder is ``Entrees``. Only the ``.sch``'s own includes are
    mended (that is where the bundle has such mistakes); the text is unchanged otherwise.
    """
    path = Path(sch_path)
    data = path.read_bytes()
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    changed = False
    for element in root.iter(*_INCLUDES):
        href, _, fragment = element.get("href", "").partition("#")
        if href and not (path.parent / href).exists():
            found = _case_insensitive(path.parent, href)
            if found is not None:
                element.set("href", found + (f"#{fragment}" if fragment else ""))
                changed = True
    return etree.tostring(root, encoding=str) if changed else data.decode("utf-8")


def schematron_digest(sch_path: Path) -> str:
    """A digest of a schematron and every file it includes (their paths relative to it, and their bytes)."""
    path = Path(sch_path).resolve()
    try:
        return _digest(path, _closure(path))
    except _Broken:
        return hashlib.sha256(path.read_bytes()).hexdigest()


class _Broken(Exception):
    """A schematron whose includes cannot be read."""


def _closure(path: Path) -> list[tuple[Path, etree._ElementTree, bytes]]:
    """The schematron and its includes, transitively, each once, in document order."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    seen: dict[Path, tuple[Path, etree._ElementTree, bytes]] = {}
    pending = [path]
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        try:
            data = current.read_bytes()
            tree = etree.ElementTree(etree.fromstring(data, parser, base_url=str(current)))
        except (OSError, etree.XMLSyntaxError) as exc:
            raise _Broken(f"{_relative(current, path)}: {exc}") from exc
        seen[current] = (current, tree, data)
        for element in tree.iter(*_INCLUDES):
            href = element.get("href", "").split("#", 1)[0]
            if not href:
                continue
            target = current.parent / href
            if current == path and not target.exists():
                target = current.parent / (_case_insensitive(current.parent, href) or href)
            pending.append(target.resolve())
    return list(seen.values())


def _case_insensitive(base: Path, href: str) -> str | None:
    """``href`` with each step spelled as on disk, when it differs from an existing path by case only."""
    steps: list[str] = []
    current = base
    for step in href.replace("\\", "/").split("/"):
        if step in ("", ".", ".."):
            steps.append(step)
            current = current / step
            continue
        if (current / step).exists():
            match = step
        else:
            try:
                match = next((entry.name for entry in current.iterdir() if entry.name.lower() == step.lower()), None)
            except OSError:
                return None
            if match is None:
                return None
        steps.append(match)
        current = current / match
    return "/".join(steps)


def _template_ids(tree: etree._ElementTree) -> set[str]:
    """CI-SIS document templateIds named by rule contexts and assertion tests (comments are not read)."""
    found: set[str] = set()
    for element in tree.iter(f"{{{SCH}}}rule", f"{{{SCH}}}assert", f"{{{SCH}}}report"):
        for attribute in ("context", "test"):
            text = element.get(attribute) or ""
            if "templateId" in text:
                found.update(_DOCUMENT_OID.findall(text))
    return found


def _digest(path: Path, files: list[tuple[Path, etree._ElementTree, bytes]]) -> str:
    digest = hashlib.sha256()
    for current, _, data in sorted(files, key=lambda item: _relative(item[0], path)):
        digest.update(_relative(current, path).encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def _relative(current: Path, main: Path) -> str:
    try:
        return current.relative_to(main.parent).as_posix()
    except ValueError:
        return current.as_posix()
