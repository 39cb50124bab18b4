"""Renderers of a checklist document (checklist.model.Checklist.to_dict()): a table for the terminal, Markdown
and HTML for the change ticket, JSON for programs. Built on the sweep's machinery (report.sweep.common's
wrapping, time and Markdown cell rules, report.sweep.html's page style and its Content-Security-Policy), so
the two reports read alike and neither runs script.

Every format shows the same things: the time, the operator, the inventory and its hash, the hcibenefit
version, the go/no-go line, then per VM its items in order with evidence and fix. A --fix run's document
also carries "before" (the checklist before the changes) and "fix" (what was planned and done); the human
formats then show each item's status before and after.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any, TextIO

from hcibenefit.report.sweep.common import md_cell, when, wrap
from hcibenefit.report.sweep.html import CSS
from hcibenefit.report.text import json_safe, printable

Document = Mapping[str, Any]
FORMATS = ("table", "markdown", "html", "json")
TITLE = "Azure Virtual Desktop rollout checklist"
INDENT = 8


def _facts(document: Document) -> list[tuple[str, str]]:
    """The ticket's header: what was checked, when, by whom, with what."""
    run = document.get("run") or {}
    selection = run.get("selection") or {}
    asked = []
    if selection.get("host_pool"):
        asked.append(f"host pool {selection['host_pool']}")
    if selection.get("vms"):
        asked.append("VMs " + ", ".join(selection["vms"]))
    if selection.get("vm_file"):
        asked.append(f"from {selection['vm_file']}")
    if selection.get("clusters"):
        asked.append("clusters " + ", ".join(selection["clusters"]))
    return [
        ("Time", when(run.get("started"))),
        ("Operator", str(run.get("operator") or "unknown")),
        ("Inventory", f"{run.get('inventory')} ({run.get('inventory_hash')})"),
        ("hcibenefit", str(run.get("hcibenefit_version"))),
        ("Checked", "; ".join(asked) or "-"),
        ("Window", f"{document.get('window_days')} days"),
        (
            "Strict",
            "yes: a WARN is a no-go" if document.get("strict") else "no: a WARN does not stop the rollout",
        ),
        ("Azure", str(run.get("azure") or "not read (the inventory has no azure: section)")),
    ]


def _before_of(document: Document) -> dict[tuple[str, str], str]:
    before = document.get("before")
    if not before:
        return {}
    return {(vm["vm"], i["item"]): i["status"] for vm in before["vms"] for i in vm["items"]}


def _vm_heading(vm: Mapping[str, Any]) -> str:
    where = ", ".join(p for p in (vm.get("cluster"), vm.get("node")) if p) or "not mapped"
    hosts = vm.get("session_hosts") or []
    session = f" · session host {', '.join(hosts)}" if hosts else ""
    return f"{vm['vm']} ({where}): {'GO' if vm['go'] else 'NO-GO'}{session}"


def _status(item: Mapping[str, Any], before: Mapping[tuple[str, str], str], vm: str) -> str:
    was = before.get((vm, item["item"]))
    status = item["status"] if item.get("assessed", True) else f"{item['status']} (not assessed)"
    return f"{was} -> {status}" if was and was != item["status"] else status


def _fix_lines(document: Document) -> list[tuple[str, str]]:
    """The --fix part: (heading, line) pairs: each step with its command and what it did (or would do) per
    target, then what is left to people."""
    fix = document.get("fix")
    if not fix:
        return []
    lines = [("plan" if fix.get("what_if") else "fixed", fix.get("summary", ""))]
    for number, step in enumerate(fix.get("steps") or [], 1):
        declined = " (not confirmed: nothing was sent)" if step.get("declined") else ""
        lines.append((f"step {number}", f"{step['command']}{declined}"))
        for outcome in step.get("outcomes") or []:
            fixed = (
                f"; fix: {outcome['fix']}" if outcome.get("fix") and outcome["result"] != "changed" else ""
            )
            lines.append((f"  {outcome['target']}", f"{outcome['result']}: {outcome['why']}{fixed}"))
    for left in fix.get("cannot_fix") or []:
        lines.append(
            (
                f"left to {left['owner']}",
                f"{left['vm']}: {left['title']} ({left['status']}): {left['fix'] or '-'}",
            )
        )
    return lines


# --- table ---------------------------------------------------------------------------------------------


def render_table(document: Document, stream: TextIO, width: int | None) -> None:
    out: list[str] = []
    out += wrap(printable(f"hcibenefit checklist avd · {TITLE}"), width, 0)
    out += wrap(printable(" · ".join(f"{k.lower()} {v}" for k, v in _facts(document)[:5])), width, 0, hang=2)
    out += ["", *wrap(printable(document["go_line"]), width, 0, hang=2), ""]
    before = _before_of(document)
    for vm in document["vms"]:
        out += wrap(printable(_vm_heading(vm)), width, 0, hang=2)
        for item in vm["items"]:
            status = _status(item, before, vm["vm"])
            out += wrap(printable(f"{status:<6} {item['title']} [{item['item']}]"), width, 2, hang=INDENT + 2)
            if item["evidence"]:
                out += wrap(printable(item["evidence"]), width, INDENT + 2)
            if item.get("fix") and item["status"] != "PASS":
                who = f"  ({item['owner']})" if item.get("owner") else ""
                out += wrap(printable(f"fix: {item['fix']}{who}"), width, INDENT + 2)
        out.append("")
    for heading, line in _fix_lines(document):
        out += wrap(printable(f"{heading}: {line}"), width, 0, hang=4)
    for note in document.get("notes") or []:
        out += wrap(printable(f"! {note}"), width, 0, hang=2)
    counts = document.get("counts") or {}
    out += wrap(
        printable(" · ".join(f"{k} {counts.get(k, 0)}" for k in ("FAIL", "WARN", "PASS", "N/A"))), width, 0
    )
    out += wrap(printable(document["go_line"]), width, 0, hang=2)
    stream.write("\n".join(out) + "\n")


# --- Markdown ------------------------------------------------------------------------------------------


def _md_code(text: str) -> str:
    """A command in a table cell: code, with pipes escaped and no line breaks."""
    flat = " ".join(text.split()).replace("`", "'")
    return f"`{flat}`".replace("|", "\\|")


def render_markdown(document: Document, stream: TextIO, width: int | None) -> None:
    del width
    verdict = "GO" if document["go"] else "NO-GO"
    out = [f"# {TITLE}: {verdict}", "", "| | |", "|---|---|"]
    out += [f"| {md_cell(k)} | {md_cell(v)} |" for k, v in _facts(document)]
    out += ["", f"**{md_cell(document['go_line'])}**", ""]
    before = _before_of(document)
    for vm in document["vms"]:
        out += [f"## {md_cell(_vm_heading(vm))}", ""]
        out += ["| # | item | status | evidence | fix | who |", "|---|---|---|---|---|---|"]
        for n, item in enumerate(vm["items"], 1):
            fix = _md_code(item["fix"]) if item.get("fix") and item["status"] != "PASS" else ""
            who = md_cell(item.get("owner")) if item["status"] != "PASS" else ""
            out.append(
                f"| {n} | {md_cell(item['title'])} ({md_cell(item['ref'])}) | **{md_cell(_status(item, before, vm['vm']))}** "
                f"| {md_cell(item['evidence'])} | {fix} | {who} |"
            )
        out.append("")
    fix_lines = _fix_lines(document)
    if fix_lines:
        out += ["## Fixes", "", *(f"- **{md_cell(h)}**: {md_cell(line)}" for h, line in fix_lines), ""]
    notes = document.get("notes") or []
    if notes:
        out += ["## Notes", "", *(f"- {md_cell(n)}" for n in notes), ""]
    out.append(f"_{md_cell(document['go_line'])}_")
    stream.write("\n".join(out) + "\n")


# --- HTML ----------------------------------------------------------------------------------------------

EXTRA_CSS = """
.WARN{color:#b54708}.GO{color:#067647}.NOGO{color:#b42318}.verdict{font-size:18px;font-weight:700;margin:12px 0}
table.facts td:first-child{width:9em;color:#5b6673}td.ev{width:40%}.sign{margin-top:32px;color:#5b6673}
"""


def _cell_class(status: str) -> str:
    return {"N/A": "NA"}.get(status, status)


def render_html(document: Document, stream: TextIO, width: int | None) -> None:
    del width
    verdict = "GO" if document["go"] else "NO-GO"
    run = document.get("run") or {}
    title = f"{TITLE} {when(run.get('started'))}: {verdict}"
    body = [f"<h1>{escape(TITLE)}</h1>", '<table class="facts">']
    body += [f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in _facts(document)]
    body.append("</table>")
    css = "GO" if document["go"] else "NOGO"
    body.append(f'<p class="verdict {css}">{escape(document["go_line"])}</p>')
    before = _before_of(document)
    for vm in document["vms"]:
        vm_css = "GO" if vm["go"] else "NOGO"
        body.append(f'<h2 class="{vm_css}">{escape(_vm_heading(vm))}</h2>')
        body.append(
            "<table><tr><th>#</th><th>item</th><th>status</th><th>evidence</th><th>fix</th><th>who</th></tr>"
        )
        for n, item in enumerate(vm["items"], 1):
            show_fix = item.get("fix") and item["status"] != "PASS"
            fix = f"<code>{escape(item['fix'])}</code>" if show_fix else ""
            who = escape(item.get("owner") or "") if item["status"] != "PASS" else ""
            body.append(
                f"<tr><td>{n}</td><td>{escape(item['title'])}<br><code>{escape(item['item'])}</code> "
                f'{escape(item["ref"])}</td><td class="{_cell_class(item["status"])}"><b>'
                f'{escape(_status(item, before, vm["vm"]))}</b></td><td class="ev">{escape(item["evidence"])}</td>'
                f'<td class="fix">{fix}</td><td>{who}</td></tr>'
            )
        body.append("</table>")
    fix_lines = _fix_lines(document)
    if fix_lines:
        lis = "".join(f"<li><b>{escape(h)}</b>: {escape(line)}</li>" for h, line in fix_lines)
        body.append(f"<h2>Fixes</h2><ul>{lis}</ul>")
    notes = document.get("notes") or []
    if notes:
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    body.append('<p class="sign">Approved by: ______________________ Date: ____________</p>')
    stream.write(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}{EXTRA_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


# --- JSON ----------------------------------------------------------------------------------------------


def render_json(document: Document, stream: TextIO, width: int | None) -> None:
    del width
    stream.write(json_safe(json.dumps(document, indent=2, ensure_ascii=False)))
    stream.write("\n")


RENDERERS: dict[str, Callable[[Document, TextIO, int | None], None]] = {
    "table": render_table,
    "markdown": render_markdown,
    "html": render_html,
    "json": render_json,
}


def render(document: Document, fmt: str, stream: TextIO, width: int | None = None) -> None:
    RENDERERS[fmt](document, stream, width)


__all__: Sequence[str] = ("FORMATS", "render")
