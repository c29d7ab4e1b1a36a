"""The facility's identity as rendered documents state it (FINESS, OID roots, facility type, setting).

Render mode writes the custodian, the encounter location, the practice setting
and every locally minted identifier (document id, setId, IPP, stay number)
from one :class:`Site`. A hospital sets its own values in its configuration;
the defaults below are **fictitious** (FINESS ``999000011``, département 99 with
a valid key, and OIDs under the unassigned test arc ``1.2.250.1.999``) so tests and
the demo never claim a real establishment.

:meth:`Site.from_config` builds it from the ``[site]`` section of ``liaison.toml``:
the FINESS must carry its key (Luhn over its 9 characters), the OID roots must be
dotted numbers, and, when the CI-SIS JDV files are available, the facility type
must be a code of JDV_J02 and the practice setting one of JDV_J04 (whose display
names fill the ``*_display`` keys left out).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from mappings.value_sets import ValueSetError, locate_jdv_dir, value_set
from router.errors import ConfigError

FINESS_OID = "1.2.250.1.71.4.2.2"             # IdNat_Struct: extension "1" + FINESS
FACILITY_TYPE_SYSTEM = "1.2.250.1.71.4.2.4"   # JDV_J02 healthcareFacilityTypeCode (SAxx)
PRACTICE_SETTING_SYSTEM = "1.2.250.1.213.1.1.4.9"   # JDV_J04 practiceSettingCode
FACILITY_TYPE_JDV = "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS"     # 1.2.250.1.213.1.1.5.466
PRACTICE_SETTING_JDV = "JDV_J04_XdsPracticeSettingCode_CISIS"        # 1.2.250.1.213.1.1.5.467
FICTITIOUS_ARC = "1.2.250.1.999."
OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
#: a FINESS: département (2 digits, or 2A/2B in Corsica), 6 digits, 1 key digit.
FINESS = re.compile(r"^(\d{2}|2A|2B)\d{7}$")
OID_KEYS = ("document_id_root", "set_id_root", "ipp_root", "encounter_root")


@dataclass(frozen=True)
class Site:
    """Who the establishment is, for the CDA header (all defaults fictitious)."""

    finess: str = "999000011"
    name: str = "CH de Test Liaison"
    document_id_root: str = "1.2.250.1.999.1.3"     # ClinicalDocument/id/@root
    set_id_root: str = "1.2.250.1.999.1.4"          # ClinicalDocument/setId/@root
    ipp_root: str = "1.2.250.1.999.1.1"             # recordTarget/patientRole/id of the IPP
    encounter_root: str = "1.2.250.1.999.1.2"       # encompassingEncounter/id (stay number)
    facility_type_code: str = "SA01"
    facility_type_display: str = "Etablissement public de santé"
    practice_setting_code: str = "ETABLISSEMENT"
    practice_setting_display: str = "Etablissement de santé"
    house_number: str = "1"
    street_name: str = "Avenue de l'Hôpital Test"
    postal_code: str = "69003"
    city: str = "LYON"
    telecom: str = "tel:0400000000"

    @property
    def idnat_struct(self) -> str:
        """The FINESS as an IdNat_Struct extension (``1`` + FINESS)."""
        return "1" + self.finess

    @classmethod
    def from_config(cls, section: Mapping[str, Any], *, jdv_dir: str | os.PathLike | None | bool = None,
                    env: Mapping[str, str] | None = None, where: str = "site") -> Site:
        """A site from a ``[site]`` table: given keys replace the defaults, all checked.

        ``jdv_dir`` is the JDV directory (None searches it, see
        :func:`mappings.value_sets.locate_jdv_dir`, False does not check); without JDV files
        the codes are not checked and the defaults' display names stay. Raises ConfigError
        naming the key (also when ``jdv_dir`` is given but lacks J02 or J04).
        """
        known = {f.name for f in fields(cls)}
        for key, value in section.items():
            if key not in known:
                raise ConfigError(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(known))})")
            if not isinstance(value, str):
                raise ConfigError(f"{where}.{key}", f"expected a string, got {type(value).__name__}")
        values = {key: value.strip() for key, value in section.items()}
        site = replace(cls(), **values)
        if not FINESS.match(site.finess) or not finess_key_ok(site.finess):
            raise ConfigError(f"{where}.finess", f"{site.finess!r} is not a FINESS number (9 characters "
                                                 "whose last digit is the Luhn key)")
        for key in OID_KEYS:
            if not OID.match(getattr(site, key)):
                raise ConfigError(f"{where}.{key}", f"{getattr(site, key)!r} is not an OID (dotted numbers)")
        if not site.name:
            raise ConfigError(f"{where}.name", "the establishment's name is required")
        if jdv_dir is False:
            return site
        directory = locate_jdv_dir(env=env) if jdv_dir is None or jdv_dir is True else Path(jdv_dir)
        if directory is None:
            return site
        return site._coded_from_jdv(directory, values, where)

    def _coded_from_jdv(self, directory: Path, given: Mapping[str, str], where: str) -> Site:
        """Check the facility type (J02) and practice setting (J04) and fill their display names."""
        changes: dict[str, str] = {}
        for prefix, jdv_name, system in (("facility_type", FACILITY_TYPE_JDV, FACILITY_TYPE_SYSTEM),
                                         ("practice_setting", PRACTICE_SETTING_JDV, PRACTICE_SETTING_SYSTEM)):
            code = getattr(self, f"{prefix}_code")
            try:
                jdv = value_set(jdv_name, directory)
            except ValueSetError as exc:
                raise ConfigError(f"{where}.{prefix}_code", str(exc)) from exc
            if not jdv.contains(code, system):
                raise ConfigError(f"{where}.{prefix}_code",
                                  f"{code!r} is not a code of {jdv.label} in code system {system}")
            if f"{prefix}_display" not in given:
                changes[f"{prefix}_display"] = jdv.display(code, system) or code
        return replace(self, **changes)

    def fictitious_keys(self) -> tuple[str, ...]:
        """The keys still holding the fictitious defaults (to warn before real documents leave)."""
        default = Site()
        keys = [k for k in ("finess", *OID_KEYS) if getattr(self, k) == getattr(default, k)]
        keys += [k for k in OID_KEYS if getattr(self, k).startswith(FICTITIOUS_ARC) and k not in keys]
        return tuple(keys)


def finess_key_ok(finess: str) -> bool:
    """Whether the 9th character of a FINESS is its Luhn key.

    Corsican FINESS start with 2A/2B; the rule for letters in the key is not published
    in the sources we hold, so for them only the shape is checked (see the README).
    """
    if finess[:2] in ("2A", "2B"):
        return True
    total = 0
    for position, char in enumerate(reversed(finess)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0
