"""PFI mode or render mode: does a document message carry a finished CDA, or the facts to write one?

The same listener may receive both: a HIS that produces CI-SIS CDA itself
sends them in PFI form (the CDA base64 in an ED OBX of subtype XML, with
MetaDMPMSS rows), while a lab system or an older HIS sends a PDF letter or
discrete results that Liaison renders. The shape of the message decides, so
a channel never needs a per-message switch.
"""

from __future__ import annotations

from collections.abc import Iterable

from router.flags import is_meta_row
from router.recipients_pfi import segment_id, value


def is_render_mode(segments: Iterable) -> bool:
    """True when no OBX is a MetaDMPMSS row or an ED of subtype XML (a CDA): Liaison writes the document."""
    for segment in segments:
        if segment_id(segment) != "OBX":
            continue
        if is_meta_row(segment) or (value(segment, 2).upper() == "ED" and value(segment, 5, 3).upper() == "XML"):
            return False
    return True
