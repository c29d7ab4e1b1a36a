"""Parse CDA bytes safely: the one locked-down lxml parser every CDA reader and validator uses.

No entities are expanded, no DTD is loaded and nothing is fetched from the
network; a level-1 CDA may carry a base64 PDF larger than libxml2's default
text limit, which is safe to allow for that reason. Lives in the core because
the validators (``router.cda_schema``, ``router.schematron``) and the header
reader of ``mappings`` both need it.
"""

from __future__ import annotations

import threading

from lxml import etree

from router.errors import ValidationError

HL7 = "urn:hl7-org:v3"
_CLINICAL_DOCUMENT = f"{{{HL7}}}ClinicalDocument"

_local = threading.local()


def _parser() -> etree.XMLParser:
    """One parser per thread: lxml parsers keep per-parse state and must not be shared."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        # huge_tree: a level-1 CDA can carry a base64 PDF larger than libxml2's 10 MB text limit;
        # it is safe here because entities are never expanded and no DTD is loaded.
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=True, collect_ids=False)
        _local.parser = parser
    return parser



def parse_cda(cda: bytes) -> etree._Element:
    """Parse CDA bytes safely and return the ClinicalDocument element.

    Raises ValidationError when the bytes are not XML or not an HL7 v3 ClinicalDocument.
    """
    if not cda or not cda.strip():
        raise ValidationError("CDA is empty")
    try:
        root = etree.fromstring(bytes(cda), _parser())
    except etree.XMLSyntaxError as exc:
        raise ValidationError("CDA is not well-formed XML",
                              details=[f"line {exc.lineno}: {exc.msg}"]) from exc
    if root.tag != _CLINICAL_DOCUMENT:
        raise ValidationError(f"not a CDA: root element is {root.tag}, expected ClinicalDocument "
                              f"in namespace {HL7}")
    return root
