"""Engine checks on a CDA that the CI-SIS schematrons do not make, run before anything is sent.

- **The volet is a known one.** Every CI-SIS document templateId the document
  declares (under ``1.2.250.1.213.1.1.1``, the most specific ones) is one the
  schematron index or the volet registry knows: ``…1.1.1.299`` for ``…1.1.1.29``
  is a typo, not a new volet. A document naming no volet at all is refused too.
- **No look-alike INS.** An identifier rooted under the INS arc
  ``1.2.250.1.213.1.4`` whose root is not one of the INS kinds
  (:data:`router.identity.INS_KINDS`) is a typo to refuse (or the retired INS-C),
  not a local identifier to ignore; the only other identifiers of that arc are the
  social security numbers (:data:`router.identity.NSS_OIDS`, ``.13`` and ``.14``).
  The reason names the OID, never the matricule.
- **The type code is a CI-SIS one.** ``ClinicalDocument/code`` belongs to JDV_J07
  (XDS typeCode CI-SIS) and, for a document bound for the DMP, to JDV_J66 (typeCode
  DMP) when that value set is available.
- **The code and the volet agree**: a registry volet that declares its type code
  (a lettre de liaison's, a lab report's) does not carry another one.

The value sets are read in ``mappings`` (:mod:`mappings.value_sets`): the
composition root hands them over as :class:`CodeSet` objects. Each failure names
the element and the value found; they are all reported in one ValidationError.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from lxml import etree

from router.cda_xml import HL7, parse_cda
from router.errors import ValidationError
from router.identity import INS_KINDS, NSS_OIDS
from router.ports import Volets
from router.schematron_index import CISIS_DOCUMENTS, SchematronIndex, TemplateId, volet_template_ids

#: The arc every INS OID lives under (production .8, NIA .9, test .10, demo .11; .2 was the INS-C).
INS_ARC = "1.2.250.1.213.1.4"
_TEMPLATE_ID = f"{{{HL7}}}templateId"


@runtime_checkable
class CodeSet(Protocol):
    """A value set as the checks see it (``mappings.value_sets.ValueSet`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str: ...

    def contains(self, code: str, system: str | None = None) -> bool: ...


def template_ids_of(document: etree._Element) -> list[TemplateId]:
    """The ClinicalDocument/templateId elements, root and extension."""
    return [TemplateId(t.get("root", ""), t.get("extension", "")) for t in document.findall(_TEMPLATE_ID)
            if t.get("root")]


class CdaChecks:
    """The engine's own checks; call it with a document (bytes or parsed) and where it goes."""

    def __init__(self, volets: Volets, *, index: SchematronIndex | None = None,
                 type_codes: CodeSet | None = None, dmp_type_codes: CodeSet | None = None):
        self.volets = volets
        self.index = index
        self.type_codes = type_codes
        self.dmp_type_codes = dmp_type_codes

    def __call__(self, document: etree._Element | bytes, *, to_dmp: bool = False) -> str:
        """Raise ValidationError naming each element at fault; return what was checked, for the journal."""
        root = parse_cda(document) if isinstance(document, (bytes, bytearray)) else document
        problems = self.problems(root, to_dmp=to_dmp)
        if problems:
            raise ValidationError(f"CDA refused by the engine checks: {len(problems)} problem(s)", details=problems)
        return self.describe(to_dmp=to_dmp)

    def describe(self, *, to_dmp: bool = False) -> str:
        """What these checks cover: ``volet templateId, INS OIDs, code in JDV_J07_XdsTypeCode_CISIS, code of the volet``."""
        covered = ["volet templateId" + ("" if self.index is not None else " (registry only)"), "INS OIDs"]
        if self.type_codes is not None:
            covered.append(f"code in {self.type_codes.name}")
        if to_dmp and self.dmp_type_codes is not None:
            covered.append(f"code in {self.dmp_type_codes.name}")
        covered.append("code of the volet")
        return ", ".join(covered)

    def problems(self, document: etree._Element, *, to_dmp: bool = False) -> list[str]:
        templates = template_ids_of(document)
        return [*self._volet(templates), *_ins_look_alikes(document),
                *self._type_code(document, templates, to_dmp)]

    def _volet(self, templates: list[TemplateId]) -> Iterable[str]:
        registry = self.volets.for_template_ids([t.root for t in templates])
        known = {root for volet in registry for root in volet.template_ids}
        leaves = volet_template_ids(templates)
        if not registry and not leaves:
            found = ", ".join(t.root for t in templates) or "none"
            yield (f"ClinicalDocument/templateId: no volet templateId (none under {CISIS_DOCUMENTS} and none of "
                   f"a known volet); found {found}")
            return
        if self.index is None:
            return                  # without the schematron directory, other CI-SIS templateIds cannot be judged
        for template in leaves:
            if template.root not in known and not self.index.knows(template.root):
                yield (f"ClinicalDocument/templateId/@root: {template.root} is not the templateId of a known "
                       f"CI-SIS volet (no schematron in {self.index.directory.name}/ names it)")

    def _type_code(self, document: etree._Element, templates: list[TemplateId], to_dmp: bool) -> Iterable[str]:
        code_el = document.find(f"{{{HL7}}}code")
        code = code_el.get("code", "") if code_el is not None else ""
        system = (code_el.get("codeSystem") or None) if code_el is not None else None
        if not code:
            yield "ClinicalDocument/code/@code: missing"
            return
        sets = [self.type_codes] + ([self.dmp_type_codes] if to_dmp else [])
        for value_set in filter(None, sets):
            if not value_set.contains(code, system):
                yield (f"ClinicalDocument/code/@code: {code}"
                       f"{f' (codeSystem {system})' if system else ''} is not in {value_set.label}")
        for volet in self.volets.for_template_ids([t.root for t in templates]):
            if volet.type_code and code != volet.type_code:
                declared = next(t.root for t in templates if t.root in volet.template_ids)
                yield (f"ClinicalDocument/code/@code: {code} but the volet {volet.name} (templateId {declared}) "
                       f"is coded {volet.type_code}")


def _ins_look_alikes(document: etree._Element) -> Iterable[str]:
    for element in document.iter(f"{{{HL7}}}*"):
        root = element.get("root", "")
        if element.tag == _TEMPLATE_ID or not (root == INS_ARC or root.startswith(INS_ARC + ".")):
            continue
        if root not in INS_KINDS and root not in NSS_OIDS:
            kinds = ", ".join(f"{oid} {kind}" for oid, kind in (INS_KINDS | NSS_OIDS).items())
            yield (f"{_path(element)}/@root: {root} is under the INS arc {INS_ARC} but is not an INS OID "
                   f"(nor a social security number one): {kinds}")


def _path(element: etree._Element) -> str:
    """``ClinicalDocument/recordTarget/patientRole/id[2]``: local names, positions where siblings share one."""
    steps = []
    while element is not None:
        name = etree.QName(element).localname
        parent = element.getparent()
        if parent is not None:
            same = [s for s in parent if s.tag == element.tag]
            if len(same) > 1:
                name += f"[{same.index(element) + 1}]"
        steps.append(name)
        element = parent
    return "/".join(reversed(steps))
