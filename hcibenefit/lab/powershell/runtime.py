"""What the evaluator and its compiled expressions share: VOID, type literals as values, how values
enter and leave pipelines, and the operators (powershell51.md sections 3 and 4)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hcibenefit.lab.powershell import convert as cv

VOID: Any = object()
CONSTANT_VARIABLES: dict[str, Any] = {"true": True, "false": False, "null": None}


class TypeRef:
    """A type literal used as a value: `-is [datetime]`, `[string]` passed as an argument."""

    def __init__(self, name: str) -> None:
        self.name = name

    def ps_string(self) -> str:
        return self.name


def enumerate_value(value: Any) -> list[Any]:
    """What writing a value to the pipeline produces: arrays unrolled one level, anything else itself."""
    if value is VOID:
        return []
    if isinstance(value, list):
        return list(value)
    enumerate_items = getattr(value, "ps_enumerate", None)
    if callable(enumerate_items):
        return list(enumerate_items())
    return [value]


def collapse(items: list[Any]) -> Any:
    """A pipeline's result as a value: none -> $null, one -> the item, several -> object[]."""
    if not items:
        return None
    if len(items) == 1:
        return items[0]
    return list(items)


def _xor(left: Any, right: Any) -> bool:
    return cv.to_bool(left) != cv.to_bool(right)


def _type_name(right: Any) -> str:
    return right.name if isinstance(right, TypeRef) else cv.to_string(right)


def _replace(left: Any, right: Any) -> str:
    pattern, replacement = [*right, ""][:2] if isinstance(right, list) else (right, "")
    regex = re.compile(cv.to_string(pattern), re.IGNORECASE)
    template = re.sub(
        r"\$(\d+)|\$\{(\w+)\}",
        lambda m: "\\g<" + (m.group(1) or m.group(2)) + ">",
        cv.to_string(replacement),
    )
    return regex.sub(template.replace("$$", "$"), cv.to_string(left))


OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "-xor": _xor,
    "+": cv.add,
    "-": cv.subtract,
    "*": cv.multiply,
    "/": cv.divide,
    "%": cv.modulo,
    "-is": lambda left, right: cv.is_instance(left, _type_name(right)),
    "-isnot": lambda left, right: not cv.is_instance(left, _type_name(right)),
    "-in": lambda left, right: cv.contains(right, left),
    "-notin": lambda left, right: not cv.contains(right, left),
    "-contains": lambda left, right: cv.contains(left, right),
    "-notcontains": lambda left, right: not cv.contains(left, right),
    "-replace": _replace,
    "-ireplace": _replace,
}
"""The operators that are not comparisons, by their (lower-case) token."""

COMPARISON_BASES = frozenset({"eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch"})
COMPARISONS: dict[str, tuple[str, bool]] = {}


def comparison(op: str) -> tuple[str, bool]:
    """A comparison operator as (base operator, case-sensitive): -ceq is ("eq", True), -ilike ("like", False)."""
    found = COMPARISONS.get(op)
    if found is None:
        base = op.lstrip("-")
        case_sensitive = base.startswith("c")
        base = base[1:] if base[:1] in ("c", "i") and base[1:] in COMPARISON_BASES else base
        found = COMPARISONS[op] = (base, case_sensitive)
    return found


__all__ = [
    "CONSTANT_VARIABLES",
    "OPERATORS",
    "VOID",
    "TypeRef",
    "collapse",
    "comparison",
    "enumerate_value",
]
