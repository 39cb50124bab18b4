"""Reports: one data model, several formats."""

from hcibenefit.report.model import Column, DetailItem, Details, Report, Table, columns
from hcibenefit.report.render import FORMATS, RENDERERS, RenderOptions, render, to_json_text

__all__ = [
    "FORMATS",
    "RENDERERS",
    "Column",
    "DetailItem",
    "Details",
    "RenderOptions",
    "Report",
    "Table",
    "columns",
    "render",
    "to_json_text",
]
