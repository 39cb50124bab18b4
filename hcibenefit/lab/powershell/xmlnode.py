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
    """An XmlDocument or XmlElement. The lab's XML is read-only, so each node indexes its members by
    folded name the first time one is read, and hands out the same child nodes every time (as .NET
    hands out the same XmlElement)."""

    __slots__ = ("_attributes", "_children", "element", "is_document")

    def __init__(self, element: ET.Element, *, is_document: bool = False) -> None:
        self.element = element
        self.is_document = is_document
        self._attributes: dict[str, str] | None = None
        self._children: dict[str, list[Any]] = {}

    @property
    def type_name(self) -> str:
        return "System.Xml.XmlDocument" if self.is_document else "System.Xml.XmlElement"

    def _index(self) -> dict[str, str]:
        attributes: dict[str, str] = {}
        if not self.is_document:
            for attribute, value in self.element.attrib.items():
                attributes.setdefault(attribute.casefold(), value)
        for child in [self.element] if self.is_document else list(self.element):
            self._children.setdefault(child.tag.casefold(), []).append(_adapt(child))
        self._attributes = attributes
        return attributes

    def member(self, name: str) -> Any:
        return self.member_folded(name.casefold())

    def member_folded(self, folded: str) -> Any:
        """`member` for a name already case-folded."""
        attributes = self._attributes if self._attributes is not None else self._index()
        if folded in attributes:
            return attributes[folded]
        values = self._children.get(folded)
        if not values:
            if folded == "innertext":
                return "".join(self.element.itertext())
            return MISSING
        # A fresh array each time: a script may change the one it got.
        return values[0] if len(values) == 1 else list(values)

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
