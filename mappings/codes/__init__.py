"""The French code tables used to describe a document in XDS, and their lookups.

The tables are JSON files next to this module, loaded once and cached; each says
where its content comes from in a ``_source`` key, so it can be refreshed from the
NOS/SMT without reading code:

- ``format_codes.json``: CDA model templateId / level-1 media type → formatCode (ANS ASS_A11, ASS_A12);
- ``class_codes.json``: CDA typeCode → classCode (JDV_J57; the typeCode mapping is an assumption,
  see the file);
- ``confidentiality.json``: confidentialityCode labels and schemes (JDV_J08);
- ``content_types.json``: submission-set contentTypeCode (TRE_R209) and the PV1-2 mapping.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Iterable

Coded = tuple[str, str, str]     # (code, display name, coding scheme OID)


@cache
def load(name: str) -> dict[str, Any]:
    """The table ``<name>.json`` of this package, parsed once per process (do not mutate it)."""
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def format_code_for(template_ids: Iterable[str], non_xml_media_type: str | None) -> str:
    """XDS formatCode of a CDA, per the ANS tables ASS_A11 (models) and ASS_A12 (media types).

    ``non_xml_media_type`` is the nonXMLBody/text/@mediaType of a level-1 CDA, or None for a
    structured body. A structured body of no known model gets the ANS code for
    "document non référencé IHE ou CI-SIS".
    """
    table = load("format_codes")
    if non_xml_media_type is not None:
        return table["by_media_type"].get(non_xml_media_type.strip().lower(), table["non_xml_default"])
    by_template = table["by_template"]
    return next((by_template[t] for t in template_ids if t in by_template), table["structured_default"])


def format_code(code: str) -> Coded:
    """A formatCode with its label and scheme: TRE_A11 for IHE codes, TRE_A06 for the French ones."""
    table = load("format_codes")
    schemes = table["coding_schemes"]
    scheme = next((s for prefix, s in schemes.items() if code.startswith(prefix)), schemes["urn:ihe:"])
    return code, table["displays"].get(code, code), scheme


def class_code_for(type_code: str) -> Coded:
    """The XDS classCode for a CDA typeCode (documented default for unmapped types)."""
    table = load("class_codes")
    entry = table["by_type_code"].get(type_code, table["default"])
    return entry["code"], entry["display"], table["coding_scheme"]


def confidentiality_code(code: str) -> Coded:
    """A confidentialityCode (HL7 N/R/V or a DMP masking code) with its label and scheme."""
    entry = load("confidentiality")["codes"].get(code, {"scheme": "2.16.840.1.113883.5.25", "display": code})
    return code, entry["display"], entry["scheme"]


def content_type_for_patient_class(patient_class: str = "") -> Coded:
    """Submission-set contentTypeCode for a PV1-2 patient class (I, O, R, N, E), per the IG's proposal."""
    table = load("content_types")
    code = table["by_patient_class"].get((patient_class or "").strip().upper(), table["default"])
    return code, table["labels"].get(code, code), table["coding_scheme"]
