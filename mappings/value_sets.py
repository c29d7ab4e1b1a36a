"""CI-SIS value sets (JDV) read from the ANS files, to check and label the codes Liaison writes.

The ANS publishes each *jeu de valeurs* as an IHE SVS ``RetrieveValueSetResponse``
(namespace ``urn:ihe:iti:svs:2008``): one ``ValueSet`` (``@id`` = OID, ``@displayName``
= name) holding a ``ConceptList`` of ``Concept @code @codeSystem @displayName``. The
files are not ours to ship: a deployment names their directory (``mappings.jdv_dir``
or ``LIAISON_JDV_DIR``), development machines find them in the ANS fixtures
(``TestContenuCDA-3-0/jeuxDeValeurs``, see :func:`router.reference_files.locate`).

A value set is found by its file name (``JDV_ModaliteSortie_CISIS``, with or without
``.xml``) or by its OID (``1.2.250.1.213.1.1.5.74``); each file is parsed once per process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lxml import etree

from router.errors import MappingError
from router.reference_files import locate

SVS = "urn:ihe:iti:svs:2008"
ENV_VAR = "LIAISON_JDV_DIR"
FIXTURE_PARTS = ("TestContenuCDA-3-0", "jeuxDeValeurs")
#: a file every complete JDV directory holds (healthcareFacilityTypeCode, needed by every CDA header).
MARKER = "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS.xml"
#: The CI-SIS document type codes (XDS typeCode), and the prefix of the DMP's own list (not in the ANS bundle).
TYPE_CODES = "JDV_J07_XdsTypeCode_CISIS"
DMP_TYPE_CODES_PREFIX = "JDV_J66"
OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


class ValueSetError(MappingError):
    """A value set that cannot be found or read in the JDV directory."""


@dataclass(frozen=True)
class Concept:
    code: str
    system: str
    display: str


@dataclass(frozen=True)
class ValueSet:
    """One JDV: its OID, its name and its concepts (code, code system, display name)."""

    oid: str
    name: str
    concepts: tuple[Concept, ...]

    def concept(self, code: str, system: str | None = None) -> Concept | None:
        """The concept with this code (and code system, when given), or None."""
        return next((c for c in self.concepts if c.code == code and (system is None or c.system == system)), None)

    def contains(self, code: str, system: str | None = None) -> bool:
        """Whether ``code`` (in ``system``, when given) belongs to the value set."""
        return self.concept(code, system) is not None

    def display(self, code: str, system: str | None = None) -> str | None:
        """The ANS display name of a code, or None when it is not in the value set."""
        found = self.concept(code, system)
        return found.display if found else None

    def systems(self, code: str) -> tuple[str, ...]:
        """The code systems in which ``code`` is a concept of the value set (usually one)."""
        return tuple(dict.fromkeys(c.system for c in self.concepts if c.code == code))

    @property
    def label(self) -> str:
        """``name (oid)``, for messages."""
        return f"{self.name} ({self.oid})"


def locate_jdv_dir(configured: str | os.PathLike | None = None, *,
                   env: Mapping[str, str] | None = None) -> Path | None:
    """The first directory holding the CI-SIS JDV files, or None (see router.reference_files.locate)."""
    return locate(MARKER, FIXTURE_PARTS, configured=configured, env_var=ENV_VAR, env=env)


def read_value_set(path: str | os.PathLike) -> ValueSet:
    """Parse one SVS file (cached per process by its resolved path)."""
    return _read(Path(path).resolve())


def value_set(ref: str, jdv_dir: str | os.PathLike) -> ValueSet:
    """The value set named ``ref`` (file name or OID) in ``jdv_dir``; ValueSetError when absent."""
    directory = Path(jdv_dir).resolve()
    ref = ref.strip()
    if OID.match(ref):
        path = _by_oid(directory).get(ref)
    else:
        name = ref if ref.endswith(".xml") else f"{ref}.xml"
        path = directory / name if (directory / name).is_file() else None
    if path is None:
        raise ValueSetError(f"value set {ref} not found in {directory}")
    return _read(path)


def document_type_codes(jdv_dir: str | os.PathLike) -> tuple[ValueSet, ValueSet | None]:
    """JDV_J07 (CI-SIS document type codes) and JDV_J66 (those the DMP takes), the latter None when absent.

    JDV_J66 is published by the DMP (NOS ``JDV_J66-TypeCode-DMP``), not in the CI-SIS
    bundle: a deployment drops its SVS file (``JDV_J66*.xml``) in the JDV directory.
    """
    directory = Path(jdv_dir).resolve()
    dmp = next(iter(sorted(directory.glob(f"{DMP_TYPE_CODES_PREFIX}[_-]*.xml"))), None)
    return value_set(TYPE_CODES, directory), _read(dmp) if dmp is not None else None


@cache
def _read(path: Path) -> ValueSet:
    try:
        root = etree.parse(str(path)).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise ValueSetError(f"cannot read value set {path.name}: {exc}") from exc
    node = root if root.tag == f"{{{SVS}}}ValueSet" else root.find(f"{{{SVS}}}ValueSet")
    if node is None:
        raise ValueSetError(f"{path.name} is not an IHE SVS value set (no {{{SVS}}}ValueSet)")
    concepts = tuple(Concept(c.get("code", ""), c.get("codeSystem", ""), c.get("displayName", ""))
                     for c in node.iter(f"{{{SVS}}}Concept"))
    name = (node.get("displayName") or path.stem).removesuffix(".tabs")
    return ValueSet(oid=node.get("id", ""), name=name, concepts=concepts)


@cache
def _by_oid(directory: Path) -> dict[str, Path]:
    """OID → file, from the ValueSet start tag of every file (the first file wins on duplicates)."""
    index: dict[str, Path] = {}
    for path in sorted(directory.glob("*.xml")):
        try:
            for _, node in etree.iterparse(str(path), events=("start",), tag=f"{{{SVS}}}ValueSet"):
                index.setdefault(node.get("id", ""), path)
                break
        except etree.XMLSyntaxError:
            continue                     # empty or broken files exist in the ANS set; they hold no value set
    return index
