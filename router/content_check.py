"""The pre-send CI-SIS check: a CDA is tested against the schematrons of its volet before it goes out.

``SchematronCheck`` picks the schematrons from the document's templateIds
through the volet registry (router.schematron.schematrons_for): the volet's (cheap, a few ms) and, in
"all" mode, the minimal-structure profile (≈50 ms a document, ≈5 s to compile,
done once at start-up). A failed assertion of role error/fatal (or without
role) is a ValidationError carrying the assertions, which parks the job with
them in the journal. Documents of no known volet get only the profile, or
nothing in "volet" mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from router.errors import ValidationError
from router.ports import Volets
from router.schematron import MINIMAL_STRUCTURE, SchematronValidator, schematrons_for


class SchematronCheck:
    def __init__(self, schematron_dir: Path, volets: Volets, *, profiles: bool):
        self.schematron_dir = schematron_dir
        self.volets = volets
        self.profiles = profiles
        # Compile now, not on the first document.
        paths = [schematron_dir / name for name in volets.schematrons()]
        paths += [schematron_dir / MINIMAL_STRUCTURE] if profiles else []
        self._validators = {path: SchematronValidator(path) for path in paths}

    def __call__(self, cda: bytes, template_ids: Iterable[str]) -> int:
        """Raise ValidationError with the failed assertions; return how many schematrons passed."""
        paths = schematrons_for(template_ids, self.volets, schematron_dir=self.schematron_dir,
                                profiles=self.profiles)
        problems: list[str] = []
        for path in paths:
            report = self._validators[path].validate(cda)
            problems += report.describe()
        if problems:
            raise ValidationError(f"CDA breaks the CI-SIS schematron(s): {len(problems)} failed assertion(s)",
                                  details=problems)
        return len(paths)
