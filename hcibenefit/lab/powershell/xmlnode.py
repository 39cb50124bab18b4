"""`[xml]` and PowerShell's XML adapter (powershell51.md section 4, [SD:CoreAdapter] XmlNodeAdapter).

Members of an XmlElement are its attributes and child elements, matched case-insensitively; a child
element with only text reads as that text, an empty one as "", several with one name as an array.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from hcibenefit.lab.powershell.errors import ErrorRecord, PSError
from hcibenefit.lab.powershell.values import MISSING


class XmlNode:
    __slots__ = ("element", "is_document")

    def __init__(self, element: ET.Element, *, is_document: bool = False) -> None:
        self.element = element
        self.is_document = is_document

    @property
    def type_name(self) -> str:
        return "System.Xml.XmlDocument" if self.is_document else "System.Xml.XmlElement"

    def _children(self) -> list[ET.Element]:
        return [self.element] if self.is_document else list(self.element)

    def member(self, name: str) -> Any:
        folded = name.casefold()
        if not self.is_document:
            for attribute, value in self.element.attrib.items():
                if attribute.casefold() == folded:
                    return value
        matches = [child for child in self._children() if child.tag.casefold() == folded]
        if not matches:
            if folded == "innertext":
                return "".join(self.element.itertext())
            return MISSING
        values = [_adapt(child) for child in matches]
        return values[0] if len(values) == 1 else values

    def ps_string(self) -> str:
        return self.type_name


def _adapt(element: ET.Element) -> Any:
    if element.attrib or len(element):
        return XmlNode(element)
    return element.text or ""


def parse_xml(text: str) -> XmlNode:
    try:
        return XmlNode(ET.fromstring(text), is_document=True)
    except ET.ParseError as exc:
        raise PSError(
            ErrorRecord(
                f'Cannot convert value "{text[:40]}" to type "System.Xml.XmlDocument". Error: "{exc}"',
                "InvalidCastToXmlDocument",
                "InvalidArgument",
                exception_type="System.Management.Automation.PSInvalidCastException",
            )
        ) from None
