"""What becomes of a document no volet schematron checks: refused, or sent with a journaled warning.

A PFI document of a volet the schematron directory has no schematron for (or
that names no volet at all) is not "valid": the process stage asks
:class:`UncheckedPolicy` what to do, per destination. Defaults: **refuse** a
document bound for the DMP (a deposit cannot be taken back quietly), **warn**
for MSSanté mail (the journal says ``no volet schematron for templateId X``).
A document Liaison rendered itself is never refused for it (its renderers are
tested against their schematrons; the level-1 one has none): it is warned.

Configuration, in ``[engine]``::

    unchecked_volet_dmp = "refuse"     # or "warn"
    unchecked_volet_mail = "warn"      # or "refuse"

:func:`unchecked_policy` reads those two keys from the ``[engine]`` table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from router.errors import ConfigError

#: The ``[engine]`` keys :func:`unchecked_policy` reads.
KEYS = ("unchecked_volet_dmp", "unchecked_volet_mail")


class Outcome(StrEnum):
    REFUSE = "refuse"
    WARN = "warn"


@dataclass(frozen=True)
class UncheckedPolicy:
    """The outcome for a document no volet schematron checks, by destination."""

    dmp: Outcome = Outcome.REFUSE
    mail: Outcome = Outcome.WARN

    def refused_by(self, *, to_dmp: bool, to_mail: bool, rendered: bool = False) -> str:
        """The key whose "refuse" applies to a document going there, or "" when it is only warned about.

        Any destination that refuses refuses the document; a rendered one is only warned about.
        """
        if rendered:
            return ""
        if to_dmp and self.dmp is Outcome.REFUSE:
            return f"engine.{KEYS[0]}"
        if to_mail and self.mail is Outcome.REFUSE:
            return f"engine.{KEYS[1]}"
        return ""


def unchecked_policy(engine: Mapping[str, Any]) -> UncheckedPolicy:
    """``engine.unchecked_volet_dmp`` and ``engine.unchecked_volet_mail`` (each "refuse" or "warn")."""
    values = {}
    for key, field_name in zip(KEYS, ("dmp", "mail")):
        value = engine.get(key, getattr(UncheckedPolicy, field_name).value)
        if value not in tuple(Outcome):
            raise ConfigError(f"engine.{key}", f"expected \"refuse\" or \"warn\", got {value!r}")
        values[field_name] = Outcome(value)
    return UncheckedPolicy(**values)
