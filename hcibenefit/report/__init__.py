"""Reports: one data model, several formats."""

from hcibenefit.report.model import Column, Report, Table, columns
from hcibenefit.report.render import RENDERERS, render, to_json_text

__all__ = ["RENDERERS", "Column", "Report", "Table", "columns", "render", "to_json_text"]
