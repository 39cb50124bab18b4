"""Renderers of a sweep document (sweep.model): one function per format, all reading the same document.

`-o table|json|csv|markdown|html|junit` picks one; `--report-dir` writes them all under stable, dated names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TextIO

from hcibenefit.report.sweep.html import render_html
from hcibenefit.report.sweep.machine import render_csv, render_json, render_junit
from hcibenefit.report.sweep.text import render_markdown, render_table

Document = Mapping[str, Any]
Renderer = Callable[[Document, TextIO, int | None], None]

RENDERERS: dict[str, Renderer] = {
    "table": render_table,
    "json": render_json,
    "csv": render_csv,
    "markdown": render_markdown,
    "html": render_html,
    "junit": render_junit,
}
FORMATS: tuple[str, ...] = tuple(RENDERERS)
EXTENSIONS: dict[str, str] = {
    "table": "txt",
    "json": "json",
    "csv": "csv",
    "markdown": "md",
    "html": "html",
    "junit": "junit.xml",
}


def schema() -> dict[str, Any]:
    """The JSON Schema of the document (shipped as package data: sweep-report.schema.json)."""
    import json
    from importlib.resources import files

    text = (
        files("hcibenefit.report").joinpath("sweep", "sweep-report.schema.json").read_text(encoding="utf-8")
    )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def render(document: Document, fmt: str, stream: TextIO, width: int | None = None) -> None:
    """`width`: the terminal's, for the table; None when the output is not a terminal (no wrapping)."""
    RENDERERS[fmt](document, stream, width)


__all__ = ["EXTENSIONS", "FORMATS", "RENDERERS", "render", "schema"]
