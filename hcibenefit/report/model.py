"""What a command hands to a renderer: the machine-readable data and the tables a person reads.

`data` is the contract for scripts (the JSON output); `tables`, `details` and `notes` are for people.
Keeping both in one value means a command builds its result once and every format shows the same facts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    wrap: bool = False
    """Long text that may wrap to fit the terminal (identifying columns never wrap)."""
    wide: bool = False
    """Shown only with --wide."""


@dataclass(frozen=True)
class Table:
    title: str
    columns: Sequence[Column]
    rows: Sequence[Mapping[str, Any]] | Callable[[], Sequence[Mapping[str, Any]]]
    """The rows, or a function that builds them: only a table renderer calls it, so a JSON run never
    builds rows it will not show."""
    empty: str = "(none)"
    """What to print instead of an empty table."""

    def row_list(self) -> Sequence[Mapping[str, Any]]:
        return self.rows() if callable(self.rows) else self.rows


@dataclass(frozen=True)
class DetailItem:
    """One entry of a details section: a heading line and indented lines under it (detail, fix)."""

    head: str
    lines: Sequence[str] = ()
    verbatim: bool = False
    """Lines shown as they are (a script's text), not re-wrapped."""


@dataclass(frozen=True)
class Details:
    """A section under the tables that lists every reason with its fix: nothing is cut to fit."""

    title: str
    items: Sequence[DetailItem]


@dataclass(frozen=True)
class Report:
    data: Any
    tables: Sequence[Table] = ()
    notes: Sequence[str] = field(default_factory=tuple)
    details: Sequence[Details] = ()


def columns(*specs: tuple[str, str] | Column) -> tuple[Column, ...]:
    """Columns from (key, header) pairs or ready `Column`s."""
    return tuple(spec if isinstance(spec, Column) else Column(*spec) for spec in specs)
