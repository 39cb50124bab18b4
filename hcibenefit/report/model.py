"""What a command hands to a renderer: the machine-readable data and the tables a person reads.

`data` is the contract for scripts (the JSON output); `tables` and `notes` are for people. Keeping
both in one value means a command builds its result once and every format shows the same facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Column:
    key: str
    header: str


@dataclass(frozen=True)
class Table:
    title: str
    columns: Sequence[Column]
    rows: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Report:
    data: Any
    tables: Sequence[Table] = ()
    notes: Sequence[str] = field(default_factory=tuple)


def columns(*pairs: tuple[str, str]) -> tuple[Column, ...]:
    return tuple(Column(key, header) for key, header in pairs)
