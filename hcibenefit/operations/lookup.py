"""Finding VMs by the names a user typed: case-insensitive, ambiguous and unknown names reported."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hcibenefit.errors import UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Lookup(Generic[T]):
    found: list[tuple[str, T]] = field(default_factory=list)
    """(the name as typed, the one match), in the order the names were given."""
    missing: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    """"name (node1, node2)" for names that match VMs on more than one node."""


def find_by_name(
    names: Sequence[str], candidates: Sequence[T], *, name_of: Callable[[T], str], node_of: Callable[[T], str]
) -> Lookup[T]:
    by_name: dict[str, list[T]] = {}
    for candidate in candidates:
        by_name.setdefault(name_of(candidate).casefold(), []).append(candidate)
    result: Lookup[T] = Lookup()
    seen: set[str] = set()
    for typed in names:
        key = typed.casefold()
        if key in seen:
            continue
        seen.add(key)
        matches = by_name.get(key, [])
        if not matches:
            result.missing.append(typed)
        elif len(matches) > 1:
            result.ambiguous.append(f"{typed} ({', '.join(node_of(m) for m in matches)})")
        else:
            result.found.append((typed, matches[0]))
    return result


def unknown_vm_error(missing: Sequence[str], known: Sequence[str], *, nothing_done: str) -> UsageError:
    """Exit-2 error naming the unknown VMs, with close matches as the hint."""
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, known, n=3)
        if close:
            hints.append(f"{name}: did you mean {', '.join(close)}?")
    quoted = ", ".join(repr(n) for n in missing)
    return UsageError(
        f"no VM named {quoted} on any node of the selected clusters; {nothing_done}",
        hint="; ".join(hints) or "run `hcibenefit status` to list the VMs",
    )
