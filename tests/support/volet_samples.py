"""CDA documents of volets Liaison does not render, for the tests of the schematron index and the engine checks.

``official(name)`` is an ANS example of ``TestContenuCDA-3-0/ExemplesCDA`` (the test is
skipped when the file is absent; ``LDL-EES_2022.01.xml`` and ``IMG_CR_IMG_2024.01.xml``
are in the ANS repository at the fixtures' commit but not every fixtures copy holds them).

``ldl_ees()`` is a lettre de liaison à l'entrée (LDL-EES 2022.01) made at test time from
the official LDL-SES example, which every fixtures copy holds: same header, the LDL-EES
templateId, code and title, and the two sections LDL-EES requires that a discharge letter
lacks (treatments on admission, non-coded comment). ``plant(cda, change)`` applies one
change to a copy.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from tests.support.fixtures import require_fixture

HL7 = "urn:hl7-org:v3"
NS = {"h": HL7}
LDL_SES_TEMPLATE = "1.2.250.1.213.1.1.1.29"
LDL_EES_TEMPLATE = "1.2.250.1.213.1.1.1.21"
CR_IMAGERIE_TEMPLATE = "1.2.250.1.213.1.1.1.45"
LDL_EES_SCHEMATRON = "CI-SIS_LDL-EES_2022.01.sch"
CR_IMAGERIE_SCHEMATRON = "CI-SIS_IMG-CR-IMG_2024.01.sch"
#: Sections an LDL-EES requires that the LDL-SES example has not: (templateId, LOINC, title).
_EES_SECTIONS = (("1.3.6.1.4.1.19376.1.5.3.1.3.20", "42346-7", "Traitements à l'admission"),
                 ("1.3.6.1.4.1.19376.1.4.1.2.16", "55112-7", "Commentaire"))


def official(name: str) -> bytes:
    return require_fixture("TestContenuCDA-3-0", "ExemplesCDA", name).read_bytes()


def plant(cda: bytes, change: Callable[[etree._Element], object]) -> bytes:
    doc = etree.fromstring(cda)
    change(doc)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def ldl_ees() -> bytes:
    """An LDL-EES 2022.01 derived from the official LDL-SES example."""
    return plant(official("LDL-SES_2022.01.xml"), _to_ldl_ees)


def _to_ldl_ees(doc: etree._Element) -> None:
    doc.xpath(f"h:templateId[@root='{LDL_SES_TEMPLATE}']", namespaces=NS)[0].set("root", LDL_EES_TEMPLATE)
    code = doc.find(f"{{{HL7}}}code")
    code.set("code", "18761-7")
    code.set("displayName", "Note de transfert (dont lettre de liaison à l'entrée en établissement de soins)")
    doc.find(f"{{{HL7}}}title").text = "Lettre de liaison à l'entrée en établissement de santé"
    body = doc.find(f"{{{HL7}}}component/{{{HL7}}}structuredBody")
    for template, loinc, title in _EES_SECTIONS:
        section = etree.SubElement(etree.SubElement(body, f"{{{HL7}}}component"), f"{{{HL7}}}section")
        etree.SubElement(section, f"{{{HL7}}}templateId", root=template)
        etree.SubElement(section, f"{{{HL7}}}code", code=loinc, codeSystem="2.16.840.1.113883.6.1")
        etree.SubElement(section, f"{{{HL7}}}title").text = title
        etree.SubElement(section, f"{{{HL7}}}text").text = title


def drop_section(template: str) -> Callable[[etree._Element], None]:
    """A change removing the body section declaring ``template``."""
    def change(doc: etree._Element) -> None:
        section = doc.xpath(f"//h:structuredBody/h:component/h:section[h:templateId/@root='{template}']",
                            namespaces=NS)[0]
        component = section.getparent()
        component.getparent().remove(component)
    return change


def set_attribute(xpath: str, name: str, value: str) -> Callable[[etree._Element], None]:
    """A change setting ``name`` on the first element ``xpath`` (prefix ``h:``) selects."""
    def change(doc: etree._Element) -> None:
        doc.xpath(xpath, namespaces=NS)[0].set(name, value)
    return change
