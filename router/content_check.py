"""The pre-send CI-SIS check: a CDA is tested against the schematron of its volet before it goes out.

``SchematronCheck`` picks the schematrons from the document's templateIds
(:func:`router.schematron.plan_schematrons`): the registry's volets by their own
schematron, every other CI-SIS volet by the schematron the directory's index
names for its templateId (CR-IMAGERIE, VAC, the admission letter...; a few ms each once
compiled), and, in "all" mode, the minimal-structure profile (≈50 ms a
document, seconds to compile). The registry's schematrons and the profile are
compiled at start-up; an indexed one on the first document that needs it.

A failed assertion of role error/fatal (or without role) is a ValidationError
carrying the assertions, which parks the job with them in the journal. A
document whose volet no schematron checks is *not* refused here: the
:class:`ContentReport` says so (``unchecked``) and the process stage applies
the configured outcome (:mod:`router.unchecked`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from router.errors import ValidationError
from router.ports import Volets
from router.schematron import MINIMAL_STRUCTURE, SchematronValidator, plan_schematrons
from router.schematron_index import SchematronIndex, TemplateId, schematron_index


@dataclass(frozen=True)
class ContentReport:
    """What one document was checked by: every schematron that passed, and what went unchecked."""

    passed: tuple[str, ...] = ()              # schematron file names, volet's first
    volet: tuple[str, ...] = ()               # the volet schematrons among them
    unchecked: tuple[str, ...] = ()           # volet templateIds no volet schematron checks
    no_volet: bool = False                    # the document names no volet at all

    @property
    def checked(self) -> bool:
        return not self.unchecked and not self.no_volet

    def unchecked_reason(self) -> str:
        """``no volet schematron for templateId X``, for the journal and the refusal."""
        if self.unchecked:
            return f"no volet schematron for templateId {', '.join(self.unchecked)}"
        return "no volet templateId: the document names no CI-SIS volet" if self.no_volet else ""


class ContentCheck(Protocol):
    """What the process stage calls: check a CDA by its templateIds, raise ValidationError on failed asserts."""

    def check(self, cda: bytes, template_ids: Iterable[TemplateId | str]) -> ContentReport: ...


class SchematronCheck:
    def __init__(self, schematron_dir: Path, volets: Volets, *, profiles: bool,
                 index: SchematronIndex | None = None, cache_dir: Path | None = None):
        self.schematron_dir = schematron_dir
        self.volets = volets
        self.profiles = profiles
        self.cache_dir = cache_dir
        self.index = index if index is not None else schematron_index(Path(schematron_dir).resolve())
        self._validators: dict[Path, SchematronValidator] = {}
        self._lock = threading.Lock()
        # Compile the registry's and the profile now, not on the first document.
        for name in [*volets.schematrons(), *([MINIMAL_STRUCTURE] if profiles else [])]:
            self._validator(schematron_dir / name)

    def check(self, cda: bytes, template_ids: Iterable[TemplateId | str]) -> ContentReport:
        """Run the document's schematrons; raise ValidationError with every failed assertion."""
        plan = plan_schematrons(template_ids, self.volets, schematron_dir=self.schematron_dir,
                                profiles=self.profiles, index=self.index)
        problems: list[str] = []
        for path in plan.paths:
            problems += self._validator(path).validate(cda).describe()
        if problems:
            raise ValidationError(f"CDA breaks the CI-SIS schematron(s): {len(problems)} failed assertion(s)",
                                  details=problems)
        return ContentReport(passed=tuple(p.name for p in plan.paths), volet=tuple(p.name for p in plan.volet),
                             unchecked=plan.unchecked, no_volet=plan.no_volet)

    def __call__(self, cda: bytes, template_ids: Iterable[TemplateId | str]) -> int:
        """Raise ValidationError with the failed assertions; return how many schematrons passed."""
        return len(self.check(cda, template_ids).passed)

    def _validator(self, path: Path) -> SchematronValidator:
        with self._lock:
            validator = self._validators.get(path)
        if validator is None:
            validator = SchematronValidator(path, cache_dir=self.cache_dir)   # compiled once per process
            with self._lock:
                validator = self._validators.setdefault(path, validator)
        return validator
