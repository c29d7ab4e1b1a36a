"""The lab code tables as lookups: chapter, UCUM unit, interpretation, coding-system OID.

Shared by the CR-BIO renderer (:mod:`mappings.cr_bio`) and the report PDF
(:mod:`mappings.report_pdf`) so both state the same chapter, unit and flag for a
result. Every lookup takes ``tables`` (table name → table dict, as a hospital
passes to override ours) and falls back to ``mappings/codes/<name>.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mappings.codes import load
from router.lab_model import Battery, Coded

LOINC = "2.16.840.1.113883.6.1"
Tables = Mapping[str, Mapping[str, Any]] | None


def table(name: str, tables: Tables = None) -> Mapping[str, Any]:
    """The table ``name`` from ``tables`` when given there, else ours."""
    if tables is not None and name in tables:
        return tables[name]
    return load(name)


def chapter_for(battery: Battery, tables: Tables = None) -> tuple[str, str]:
    """(LOINC chapter code, French name) of a battery from OBR-24 (section code or LOINC chapter)."""
    chapters = table("lab_chapters", tables)
    section = battery.section.strip()
    code = section if section in chapters["chapters"] else chapters["by_section"].get(section.upper(),
                                                                                    chapters["default"])
    return code, chapters["chapters"][code]


#: The LOINC chapter of microbiology (FR-CR-BIO-Chapitre "Microbiologie").
MICROBIOLOGY_CHAPTER = "18725-2"


def microbiology_sections() -> frozenset[str]:
    """The OBR-24 values of a microbiology battery: HL7 table 0074's ``MB`` and the LOINC chapter itself."""
    return frozenset({"MB", MICROBIOLOGY_CHAPTER})


def ucum_unit(units: Coded, tables: Tables = None) -> str | None:
    """The UCUM unit of an OBX-6, "" for no unit, or None when it cannot be told (see lab_units.json)."""
    units_table = table("lab_units", tables)
    if units.system.upper() in units_table["ucum_systems"] and units.code:
        return units.code
    if units.alt_system.upper() in units_table["ucum_systems"] and units.alt_code:
        return units.alt_code
    raw = (units.code or units.display).strip()
    if not raw:
        return ""
    known = units_table["by_unit"]
    if raw in known.values():
        return raw
    return known.get(raw.lower().replace("µ", "u").replace("μ", "u").replace(" ", ""))


def interpretation(flag: str, tables: Tables = None) -> tuple[str, str] | None:
    """(code, displayName) in ObservationInterpretation of an OBX-8 flag, or None when unknown."""
    interp = table("lab_interpretation", tables)
    code = interp["by_flag"].get(flag.strip().upper())
    return (code, interp["codes"][code]) if code else None


def interpretation_system(tables: Tables = None) -> str:
    return table("lab_interpretation", tables)["code_system"]


def code_system(name: str, tables: Tables = None) -> tuple[str, bool]:
    """(OID, is_local) for an HL7 v2 coding-system name; unknown names are the lab's local codes."""
    systems = table("lab_code_systems", tables)
    key = name.strip().upper()
    if key in systems["systems"]:
        return systems["systems"][key], False
    if key.count(".") >= 2 and key.replace(".", "").isdigit():     # already an OID
        return key, False
    return systems["local"], True


def loinc_of(code: Coded) -> tuple[str, str] | None:
    """(LOINC code, text) of a CWE whose first or alternate triplet is LOINC."""
    if code.code and code.system.upper() in ("LN", "LOINC", LOINC):
        return code.code, code.display or code.alt_display or code.code
    if code.alt_code and code.alt_system.upper() in ("LN", "LOINC", LOINC):
        return code.alt_code, code.alt_display or code.display or code.alt_code
    return None
