"""The table (for a terminal or a log) and Markdown (for a ticket or a wiki page)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any, TextIO

from hcibenefit.report.sweep.common import (
    by_cluster,
    change_lines,
    count_line,
    exit_line,
    headline,
    problem_rows,
    when,
)

INDENT = 20
"""Where a row's detail lines start: under the title, after STATUS and SEVERITY."""


def _wrap(text: str, width: int | None, indent: int, *, hang: int | None = None) -> list[str]:
    """`text` at `indent`, wrapped to `width` (None: one line). Commands are never broken inside a word:
    a fix must stay copyable, so hyphenated names and long paths overflow rather than split."""
    pad = " " * indent
    if width is None or width - indent < 30:
        return [pad + text]
    rest = " " * (hang if hang is not None else indent + 2)
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=pad,
        subsequent_indent=rest,
        break_on_hyphens=False,
        break_long_words=False,
    ) or [pad]


def render_table(document: Mapping[str, Any], stream: TextIO, width: int | None) -> None:
    """Grouped by cluster, worst first; PASS and N/A only counted. `width` None: no wrapping (piped)."""
    out: list[str] = [*_wrap(headline(document), width, 0), ""]
    records = document["findings"]
    clusters = document["summary"]["clusters"]
    for cluster, mine in by_cluster(records).items():
        out += _wrap(f"{cluster}: {count_line(clusters[cluster])}", width, 0)
        rows = problem_rows(mine)
        if not rows:
            out.append("  every check passes or does not apply")
        current = None
        for row in rows:
            if row.target != current:
                current = row.target
                out.append(f"  {row.target}")
            checks = row.checks[0] if len(row.checks) == 1 else ", ".join(row.checks)
            out += _wrap(f"{row.status:<6} {row.severity:<8} {row.title} [{checks}]", width, 4, hang=INDENT)
            out += _wrap(row.message, width, INDENT)
            if row.waiver:
                out += _wrap(row.waiver, width, INDENT)
            if row.remediation and row.status != "WAIVED":
                out += _wrap(f"fix: {row.remediation}", width, INDENT)
        out.append("")
    excluded = document["run"]["targets"].get("excluded") or []
    if excluded:
        rules = ", ".join(sorted({e["rule"] for e in excluded}))
        names = ", ".join(e["vm"] for e in excluded[:8]) + (" ..." if len(excluded) > 8 else "")
        out += _wrap(f"excluded by policy.exclude_globs ({rules}): {names}", width, 0, hang=2)
    for waiver in document.get("waivers") or []:
        if waiver["expired"]:
            out += _wrap(
                f"! waiver {waiver['check']} on {waiver['target']} ({waiver['where']}) expired "
                f"{when(waiver['expires'])}: it no longer silences anything",
                width,
                0,
            )
    for line in change_lines(document.get("changes")):
        out += _wrap(line.strip(), width, 2 if line.startswith("  ") else 0, hang=4)
    out += _wrap(f"{count_line(document['summary'])} · {exit_line(document)}", width, 0)
    stream.write("\n".join(out) + "\n")


def _md(text: Any) -> str:
    """A table cell: no line breaks, pipes escaped, nothing Markdown would turn into markup by surprise."""
    value = "" if text is None else str(text)
    for char in ("\\", "|", "*", "_", "`", "<", ">", "[", "]"):
        value = value.replace(char, "\\" + char)
    return " ".join(value.split())


def render_markdown(document: Mapping[str, Any], stream: TextIO, width: int | None) -> None:
    del width
    run = document["run"]
    out = [f"# Azure Benefits sweep, {when(run['started'])}", "", _md(headline(document)), ""]
    out += [f"**{_md(count_line(document['summary']))}** — {_md(exit_line(document))}", ""]
    changes = change_lines(document.get("changes"), limit=50)
    if changes:
        out += ["## Changes since the previous run", "", *(f"- {_md(line.strip())}" for line in changes), ""]
    for cluster, mine in by_cluster(document["findings"]).items():
        out += [f"## {_md(cluster)}", "", _md(count_line(document["summary"]["clusters"][cluster])), ""]
        rows = problem_rows(mine)
        if not rows:
            out += ["Every check passes or does not apply.", ""]
            continue
        out += ["| status | severity | target | check | what | fix |", "|---|---|---|---|---|---|"]
        for row in rows:
            what = row.message + (f" ({row.waiver})" if row.waiver else "")
            fix = f"`{row.remediation}`".replace("|", "\\|") if row.remediation else ""
            out.append(
                f"| {row.status} | {row.severity} | {_md(row.target)} | {_md(row.title)} ({_md(', '.join(row.checks))}) "
                f"| {_md(what)} | {fix} |"
            )
        out.append("")
    expired = [w for w in document.get("waivers") or [] if w["expired"]]
    if expired:
        out += ["## Expired waivers", ""]
        out += [
            f"- {_md(w['check'])} on {_md(w['target'])} ({_md(w['where'])}), expired {when(w['expires'])}"
            for w in expired
        ]
        out.append("")
    out.append(f"_hcibenefit {run['hcibenefit_version']}, inventory {_md(run['inventory'])}_")
    stream.write("\n".join(out) + "\n")
