"""The CDA a message carries, shown readably: its title and the narrative of each section.

An operator looking at a parked letter wants to read it, not its XML. The
narrative block (``section/text``) is the part of a CDA meant for humans; it is
turned into a small, fixed subset of HTML (paragraphs, lists, tables, line
breaks, emphasis) built element by element, so nothing of the document's own
markup, attributes, links or scripts reaches the page: every text node is
escaped by the serialiser. A level-1 document (``nonXMLBody``: a PDF) is
described, not displayed.

Only roles allowed to see patient data get it, and each view is audited (the
page does both, as for the raw message).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from lxml import etree
from markupsafe import Markup

from router.cda_xml import parse_cda
from router.errors import ValidationError
from router.flags import is_meta_row
from router.hl7.charset import decode_lenient
from router.hl7.msh import iter_segments
from router.hl7.segments import normalise_segments
from router.recipients_pfi import value

_V3 = "{urn:hl7-org:v3}"
#: CDA narrative elements and the HTML element each becomes; anything else keeps only its text.
_HTML = {"paragraph": "p", "list": "ul", "item": "li", "table": "table", "thead": "thead", "tbody": "tbody",
         "tfoot": "tfoot", "tr": "tr", "td": "td", "th": "th", "caption": "caption", "br": "br", "sub": "sub",
         "sup": "sup", "content": "span"}
_SPANS = ("colspan", "rowspan")
_MAX_SECTIONS = 200                # a bound on what one page renders


@dataclass(frozen=True)
class Section:
    title: str
    html: Markup
    code: str = ""
    sections: tuple["Section", ...] = ()


@dataclass(frozen=True)
class Narrative:
    """What the page shows of a CDA."""

    title: str
    code: str = ""
    effective_time: str = ""
    sections: tuple[Section, ...] = ()
    non_xml: str = ""              # "application/pdf, 123 KB" for a level-1 document
    problem: str = ""              # why nothing could be shown


def carried_cda(raw: bytes) -> bytes | None:
    """The CDA of a PFI message (the first ED OBX outside MetaDMPMSS, as the engine takes it), or None."""
    text, _codec, _lossy = decode_lenient(raw, "utf-8")
    for segment in iter_segments(normalise_segments(text)):
        if segment.id == "OBX" and value(segment, 2).upper() == "ED" and not is_meta_row(segment):
            try:
                return base64.b64decode("".join(value(segment, 5, 5).split()), validate=True)
            except (binascii.Error, ValueError):
                return None
    return None


def readable(cda: bytes) -> Narrative:
    """The document's title, code, date and sections' narrative; a Narrative with ``problem`` when unreadable."""
    try:
        doc = parse_cda(cda)
    except ValidationError as exc:
        return Narrative(title="", problem=str(exc))
    code = doc.find(f"{_V3}code")
    effective = doc.find(f"{_V3}effectiveTime")
    head = dict(title=_text(doc.find(f"{_V3}title")),
                code=(code.get("displayName") or code.get("code") or "") if code is not None else "",
                effective_time=effective.get("value", "") if effective is not None else "")
    body = doc.find(f"{_V3}component/{_V3}nonXMLBody/{_V3}text")
    if body is not None:
        size = len("".join((body.text or "").split())) * 3 // 4
        return Narrative(**head, non_xml=f"{body.get('mediaType', 'unknown type')}, {size // 1024} KB")
    structured = doc.find(f"{_V3}component/{_V3}structuredBody")
    if structured is None:
        return Narrative(**head, problem="the document has neither a structured nor a non-XML body")
    budget = [_MAX_SECTIONS]
    return Narrative(**head, sections=tuple(_sections(structured, budget)))


def _sections(parent: etree._Element, budget: list[int]) -> list[Section]:
    found = []
    for section in parent.iterfind(f"{_V3}component/{_V3}section"):
        if budget[0] <= 0:
            break
        budget[0] -= 1
        code = section.find(f"{_V3}code")
        text = section.find(f"{_V3}text")
        found.append(Section(title=_text(section.find(f"{_V3}title")),
                             code=(code.get("displayName") or code.get("code") or "") if code is not None else "",
                             html=_html(text) if text is not None else Markup(""),
                             sections=tuple(_sections(section, budget))))
    return found


def _html(text: etree._Element) -> Markup:
    """The narrative block as the allowed HTML subset; the serialiser escapes every text node."""
    root = etree.Element("div", {"class": "narrative"})
    _copy(text, root)
    return Markup(etree.tostring(root, method="html", encoding="unicode"))


def _copy(source: etree._Element, target: etree._Element) -> None:
    _append_text(target, source.text)
    for child in source:
        if not isinstance(child.tag, str):                 # comments and processing instructions: dropped
            _append_text(target, child.tail)
            continue
        local = etree.QName(child).localname
        tag = _HTML.get(local)
        if local == "list" and child.get("listType") == "ordered":
            tag = "ol"
        if tag is None:                                    # linkHtml, renderMultiMedia, footnotes...: text only
            _append_text(target, "".join(child.itertext()))
        else:
            element = etree.SubElement(target, tag)
            for name in _SPANS:
                if (child.get(name) or "").isdigit():
                    element.set(name, child.get(name))
            if tag != "br":
                _copy(child, element)
        _append_text(target, child.tail)


def _append_text(target: etree._Element, text: str | None) -> None:
    if not text:
        return
    if len(target):
        target[-1].tail = (target[-1].tail or "") + text
    else:
        target.text = (target.text or "") + text


def _text(el: etree._Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""
