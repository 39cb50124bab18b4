"""Renderers: one function per format behind one lookup, so adding a format touches this folder only."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

from hcibenefit.report.model import Report
from hcibenefit.report.text import json_safe, render_details, render_notes, render_table


@dataclass(frozen=True)
class RenderOptions:
    width: int | None = None
    """Lay tables out for this many columns; None: never wrap (files, pipes)."""
    wide: bool = False
    """Every column, nothing wrapped."""


Renderer = Callable[[Report, TextIO, RenderOptions], None]


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
    return json_safe(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False))


def render_json(report: Report, stream: TextIO, options: RenderOptions) -> None:
    stream.write(to_json_text(report.data))
    stream.write("\n")


def render_text(report: Report, stream: TextIO, options: RenderOptions) -> None:
    width = None if options.wide else options.width
    blocks: list[Callable[[], None]] = [
        *(lambda t=t: render_table(t, stream, width=width, wide=options.wide) for t in report.tables),
        *(lambda d=d: render_details(d, stream, width=width) for d in report.details if d.items),
    ]
    if report.notes:
        blocks.append(lambda: render_notes(report.notes, stream, width=width))
    for index, block in enumerate(blocks):
        if index:
            stream.write("\n")
        block()


RENDERERS: dict[str, Renderer] = {"table": render_text, "json": render_json}
FORMATS: tuple[str, ...] = tuple(RENDERERS)


def render(report: Report, fmt: str, stream: TextIO, options: RenderOptions | None = None) -> None:
    RENDERERS[fmt](report, stream, options or RenderOptions())
