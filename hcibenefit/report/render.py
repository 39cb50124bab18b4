"""Renderers: one function per format behind one lookup, so adding a format touches this folder only."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

from hcibenefit.report.model import Report, Table

Renderer = Callable[[Report, TextIO], None]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def to_json_text(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)


def render_json(report: Report, stream: TextIO) -> None:
    stream.write(to_json_text(report.data))
    stream.write("\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value) or "-"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def render_table_only(table: Table, stream: TextIO) -> None:
    from tabulate import tabulate

    headers = [c.header for c in table.columns]
    rows = [[_cell(row.get(c.key)) for c in table.columns] for row in table.rows]
    if table.title:
        stream.write(f"{table.title}\n")
    if rows:
        stream.write(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
        stream.write("\n")
    else:
        stream.write("(none)\n")


def render_table(report: Report, stream: TextIO) -> None:
    for index, table in enumerate(report.tables):
        if index:
            stream.write("\n")
        render_table_only(table, stream)
    if report.notes:
        stream.write("\n")
        for note in report.notes:
            stream.write(f"{note}\n")


RENDERERS: dict[str, Renderer] = {"table": render_table, "json": render_json}


def render(report: Report, fmt: str, stream: TextIO) -> None:
    RENDERERS[fmt](report, stream)
