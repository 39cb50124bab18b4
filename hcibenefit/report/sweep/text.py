"""The table (for a terminal or a log) and Markdown (for a ticket or a wiki page)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from hcibenefit.report.sweep.common import (
    by_cluster,
    change_lines,
    count_line,
    exit_line,
    headline,
    md_cell,
    problem_rows,
    when,
    wrap,
)

INDENT = 20
"""Where a row's detail lines start: under the title, after STATUS and SEVERITY."""


def render_table(document: Mapping[str, Any], stream: TextIO, width: int | None) -> None:
    """Grouped by cluster, worst first; PASS and N/A only counted. `width` None: no wrapping (piped)."""
    out: list[str] = [*wrap(headline(document), width, 0), ""]
    records = document["findings"]
    clusters = document["summary"]["clusters"]
    for cluster, mine in by_cluster(records).items():
        out += wrap(f"{cluster}: {count_line(clusters[cluster])}", width, 0)
        rows = problem_rows(mine)
        if not rows:
            out.append("  every check passes or does not apply")
        current = None
        for row in rows:
            if row.target != current:
                current = row.target
                out.append(f"  {row.target}")
            checks = row.checks[0] if len(row.checks) == 1 else ", ".join(row.checks)
            out += wrap(f"{row.status:<6} {row.severity:<8} {row.title} [{checks}]", width, 4, hang=INDENT)
            out += wrap(row.message, width, INDENT)
            if row.waiver:
                out += wrap(row.waiver, width, INDENT)
            if row.remediation and row.status != "WAIVED":
                out += wrap(f"fix: {row.remediation}", width, INDENT)
        out.append("")
    excluded = document["run"]["targets"].get("excluded") or []
    if excluded:
        rules = ", ".join(sorted({e["rule"] for e in excluded}))
        names = ", ".join(e["vm"] for e in excluded[:8]) + (" ..." if len(excluded) > 8 else "")
        out += wrap(f"excluded by policy.exclude_globs ({rules}): {names}", width, 0, hang=2)
    for waiver in document.get("waivers") or []:
        if waiver["expired"]:
            out += wrap(
                f"! waiver {waiver['check']} on {waiver['target']} ({waiver['where']}) expired "
                f"{when(waiver['expires'])}: it no longer silences anything",
                width,
                0,
            )
    for line in change_lines(document.get("changes")):
        out += wrap(line.strip(), width, 2 if line.startswith("  ") else 0, hang=4)
    out += wrap(f"{count_line(document['summary'])} · {exit_line(document)}", width, 0)
    stream.write("\n".join(out) + "\n")


def render_markdown(document: Mapping[str, Any], stream: TextIO, width: int | None) -> None:
    del width
    run = document["run"]
    out = [f"# Azure Benefits sweep, {when(run['started'])}", "", md_cell(headline(document)), ""]
    out += [f"**{md_cell(count_line(document['summary']))}** — {md_cell(exit_line(document))}", ""]
    changes = change_lines(document.get("changes"), limit=50)
    if changes:
        out += [
            "## Changes since the previous run",
            "",
            *(f"- {md_cell(line.strip())}" for line in changes),
            "",
        ]
    for cluster, mine in by_cluster(document["findings"]).items():
        out += [
            f"## {md_cell(cluster)}",
            "",
            md_cell(count_line(document["summary"]["clusters"][cluster])),
            "",
        ]
        rows = problem_rows(mine)
        if not rows:
            out += ["Every check passes or does not apply.", ""]
            continue
        out += ["| status | severity | target | check | what | fix |", "|---|---|---|---|---|---|"]
        for row in rows:
            what = row.message + (f" ({row.waiver})" if row.waiver else "")
            fix = f"`{row.remediation}`".replace("|", "\\|") if row.remediation else ""
            out.append(
                f"| {row.status} | {row.severity} | {md_cell(row.target)} | {md_cell(row.title)} ({md_cell(', '.join(row.checks))}) "
                f"| {md_cell(what)} | {fix} |"
            )
        out.append("")
    expired = [w for w in document.get("waivers") or [] if w["expired"]]
    if expired:
        out += ["## Expired waivers", ""]
        out += [
            f"- {md_cell(w['check'])} on {md_cell(w['target'])} ({md_cell(w['where'])}), expired {when(w['expires'])}"
            for w in expired
        ]
        out.append("")
    out.append(f"_hcibenefit {run['hcibenefit_version']}, inventory {md_cell(run['inventory'])}_")
    stream.write("\n".join(out) + "\n")
