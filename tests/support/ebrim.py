"""Reading ebRIM 3.0 metadata (XDS SubmitObjectsRequest) in tests: the entry, the package, a slot's values."""

from __future__ import annotations

RIM = "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}"


def entry(request):
    """The one ExtrinsicObject (DocumentEntry) of a request."""
    [extrinsic] = request.iter(f"{RIM}ExtrinsicObject")
    return extrinsic


def package(request):
    """The one RegistryPackage (SubmissionSet) of a request."""
    [registry_package] = request.iter(f"{RIM}RegistryPackage")
    return registry_package


def slot(obj, name) -> list[str]:
    """The values of the slot ``name`` of a registry object ([] when absent)."""
    for s in obj.findall(f"{RIM}Slot"):
        if s.get("name") == name:
            return [v.text for v in s.iter(f"{RIM}Value")]
    return []
