"""The facility's identity as rendered documents state it (FINESS, OID roots, facility type, setting).

Render mode writes the custodian, the encounter location, the practice setting
and every locally minted identifier (document id, setId, IPP, stay number)
from one :class:`Site`. A hospital sets its own values in its configuration;
the defaults below are **fictitious** (FINESS ``999000017`` and OIDs under the
unassigned test arc ``1.2.250.1.999``) so tests and the demo never claim a
real establishment.
"""

from __future__ import annotations

from dataclasses import dataclass

FINESS_OID = "1.2.250.1.71.4.2.2"             # IdNat_Struct: extension "1" + FINESS
FACILITY_TYPE_SYSTEM = "1.2.250.1.71.4.2.4"   # JDV_J02 healthcareFacilityTypeCode (SAxx)
PRACTICE_SETTING_SYSTEM = "1.2.250.1.213.1.1.4.9"   # JDV_J04 practiceSettingCode


@dataclass(frozen=True)
class Site:
    """Who the establishment is, for the CDA header (all defaults fictitious)."""

    finess: str = "999000017"
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
