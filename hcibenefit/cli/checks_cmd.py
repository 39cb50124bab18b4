"""`hcibenefit checks list`: the catalogue of every check a sweep runs."""

from __future__ import annotations

import json
from typing import Any

import typer

from hcibenefit.cli.common import app_context
from hcibenefit.cli.sweep_cmd import OutputFileOption, OutputFormatOption, _open, choose_format
from hcibenefit.errors import UsageError
from hcibenefit.exitcodes import ExitCode

app = typer.Typer(
    help="The checks a sweep runs: id, scope, severity, remediation, documentation.", no_args_is_help=True
)


def catalogue() -> list[dict[str, Any]]:
    from hcibenefit.checks.registry import all_checks

    return [
        {
            "id": m.id,
            "title": m.title,
            "scope": m.scope,
            "severity": m.severity.label,
            "remediation": m.remediation,
            "doc_url": m.doc_url or None,
        }
        for m in sorted(all_checks(), key=lambda m: (m.scope, m.id))
    ]


@app.command("list")
def list_checks(
    ctx: typer.Context, output: OutputFormatOption = None, output_file: OutputFileOption = None
) -> int:
    """Every check with its id, scope, severity and fix (a template: {node}, {vm}, {cluster} are filled in).

    Examples:

      hcibenefit checks list

      hcibenefit checks list -o json | jq -r '.[] | select(.scope=="guest") | .id'
    """
    app_ = app_context(ctx)
    fmt = choose_format(app_, output)
    rows = catalogue()
    with _open(app_, output_file) as stream:
        if fmt == "json":
            stream.write(json.dumps(rows, indent=2) + "\n")
        elif fmt == "markdown":
            stream.write(
                "| id | scope | severity | title | remediation | documentation |\n|---|---|---|---|---|---|\n"
            )
            for r in rows:
                fix = r["remediation"].replace("|", "\\|")
                stream.write(
                    f"| `{r['id']}` | {r['scope']} | {r['severity']} | {r['title']} | `{fix}` | {r['doc_url'] or ''} |\n"
                )
        elif fmt == "table":
            from hcibenefit.report import Table, columns, render
            from hcibenefit.report.model import Report

            table = Table(
                "",
                columns(("id", "ID"), ("scope", "SCOPE"), ("severity", "SEVERITY"), ("title", "TITLE")),
                rows,
            )
            render(
                Report(
                    data=None,
                    tables=[table],
                    notes=[f"{len(rows)} checks; -o json adds each remediation and doc link"],
                ),
                "table",
                stream,
            )
        else:
            raise UsageError(f"checks list prints table, json or markdown, not {fmt}")
    return int(ExitCode.OK)
