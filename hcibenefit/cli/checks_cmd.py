"""`hcibenefit checks list`: the catalogue of every check a sweep runs."""

from __future__ import annotations

import json
from typing import Any

import typer

from hcibenefit.cli.common import app_context, global_options
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
@global_options
def list_checks(ctx: typer.Context) -> int:
    """Every check with its id, scope, severity and fix (a template: {node}, {vm}, {cluster} are filled in).

    Examples:

      hcibenefit checks list

      hcibenefit checks list -o json | jq -r '.checks[] | select(.scope=="guest") | .id'

      hcibenefit checks list -o markdown > checks.md
    """
    app_ = app_context(ctx)
    fmt = app_.choose_format(("table", "json", "markdown"))
    rows = catalogue()
    if fmt == "table":
        from hcibenefit.report import Table, columns
        from hcibenefit.report.model import Report

        table = Table(
            "",
            columns(("id", "ID"), ("scope", "SCOPE"), ("severity", "SEVERITY"), ("title", "TITLE")),
            rows,
        )
        notes = [f"{len(rows)} checks; -o json or -o markdown adds each remediation and documentation link"]
        app_.emit(Report(data=None, tables=[table], notes=notes), "table")
        return int(ExitCode.OK)
    if fmt == "json":
        # An object: the run's envelope, then the catalogue under "checks".
        text = json.dumps(app_.with_envelope({"checks": rows}), indent=2) + "\n"
    else:
        text = markdown(rows)
    from hcibenefit.cli.context import write_text

    with app_.open_output() as stream:
        write_text(stream, text)
    return int(ExitCode.OK)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| id | scope | severity | title | remediation | documentation |", "|---|---|---|---|---|---|"]
    for r in rows:
        fix = r["remediation"].replace("|", "\\|")
        doc = f"[docs]({r['doc_url']})" if r["doc_url"] else ""
        lines.append(f"| `{r['id']}` | {r['scope']} | {r['severity']} | {r['title']} | `{fix}` | {doc} |")
    return "\n".join(lines) + "\n"
