"""One self-contained HTML page for people: counts, what changed since the previous run, the trend of
failures over recent runs (inline SVG), and per-cluster tables with failures first.

No script, no external resource: the page's Content-Security-Policy forbids both, so text a hostile guest
put into a message can never run, and the file opens the same from a share, a mail or a CI artefact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, TextIO

from hcibenefit.report.sweep.common import (
    by_cluster,
    count_line,
    exit_line,
    headline,
    problem_rows,
    target_label,
    when,
)
from hcibenefit.sweep.model import worst_first

MAX_PASSING_ROWS = 2000
"""Per cluster; beyond it the page lists only counts for PASS and N/A (a 10,000-VM fleet has 100,000)."""

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2733;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.sub{color:#5b6673;margin-bottom:16px}
.tiles{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}.tile{background:#fff;border:1px solid #dde3ea;
border-radius:6px;padding:10px 16px;min-width:92px}.tile b{display:block;font-size:24px}
.FAIL{color:#b42318}.ERROR{color:#b54708}.WAIVED{color:#6941c6}.PASS{color:#067647}.NA{color:#5b6673}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0}th,td{border:1px solid #dde3ea;
padding:5px 8px;text-align:left;vertical-align:top}th{background:#f0f3f6}td.fix{min-width:18em;width:30%}td.fix code{white-space:pre-wrap}code{font:12px ui-monospace,Consolas,monospace;background:#f3f5f7;padding:1px 3px}
details{margin:6px 0}.exit{font-weight:600}svg{background:#fff;border:1px solid #dde3ea;border-radius:6px}
ul.changes li{margin:2px 0}
"""


def _status_cell(status: str) -> str:
    css = "NA" if status == "N/A" else status
    return f'<td class="{css}"><b>{escape(status)}</b></td>'


def _tiles(summary: Mapping[str, Any]) -> str:
    tiles = []
    for key, css in (
        ("FAIL", "FAIL"),
        ("ERROR", "ERROR"),
        ("waived", "WAIVED"),
        ("PASS", "PASS"),
        ("N/A", "NA"),
    ):
        label = "not assessed" if key == "ERROR" else key
        tiles.append(f'<div class="tile {css}"><b>{summary.get(key, 0)}</b>{escape(label)}</div>')
    return '<div class="tiles">' + "".join(tiles) + "</div>"


def trend_svg(points: Sequence[Mapping[str, Any]], width: int = 640, height: int = 150) -> str:
    """FAIL and ERROR counts per run, oldest left; a line each, with the run numbers under the axis."""
    if len(points) < 2:
        return "<p>The trend appears from the second run on (history keeps every sweep).</p>"
    left, right, top, bottom = 40, 12, 12, 28
    peak = max(1, *(max(p["FAIL"], p["ERROR"]) for p in points))
    span_x = (width - left - right) / (len(points) - 1)

    def xy(i: int, value: int) -> str:
        x = left + i * span_x
        y = top + (height - top - bottom) * (1 - value / peak)
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg role="img" aria-label="failures per run" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#98a2b3"/>',
        f'<text x="4" y="{top + 8}" font-size="11" fill="#5b6673">{peak}</text>',
        f'<text x="4" y="{height - bottom}" font-size="11" fill="#5b6673">0</text>',
    ]
    for key, colour in (("ERROR", "#b54708"), ("FAIL", "#b42318")):
        line = " ".join(xy(i, p[key]) for i, p in enumerate(points))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>')
        for i, p in enumerate(points):
            x, y = xy(i, p[key]).split(",")
            title = f"run #{p['run']} {when(p['started'])}: {p[key]} {key}"
            parts.append(
                f'<circle cx="{x}" cy="{y}" r="3" fill="{colour}"><title>{escape(title)}</title></circle>'
            )
    step = max(1, len(points) // 10)
    for i, p in enumerate(points):
        if i % step == 0 or i == len(points) - 1:
            label_x = left + i * span_x
            parts.append(
                f'<text x="{label_x:.1f}" y="{height - 10}" font-size="10" text-anchor="middle" fill="#5b6673">#{p["run"]}</text>'
            )
    parts.append(
        f'<text x="{width - right}" y="{top + 8}" font-size="11" text-anchor="end">'
        '<tspan fill="#b42318">— FAIL</tspan> <tspan fill="#b54708">— not assessed</tspan></text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _changes(changes: Mapping[str, Any] | None) -> str:
    if changes is None:
        return "<p>History is off for this run (--no-history): no comparison.</p>"
    prev = changes.get("previous_run")
    if prev is None:
        return "<p>First run of this inventory and selection: nothing to compare with yet.</p>"
    items = []
    for r in changes["new"]:
        items.append(("new", r["status"], r))
    for r in changes["resolved"]:
        items.append(("resolved", f"{r['status']} → {r.get('now') or 'gone'}", r))
    for c in changes["changed"]:
        items.append(("changed", f"{c['before']['status']} → {c['after']['status']}", c["after"]))
    head = (
        f"<p>Since run #{prev['id']} ({escape(when(prev['started']))}): {len(changes['new'])} new, "
        f"{len(changes['resolved'])} resolved, {len(changes['changed'])} changed.</p>"
    )
    if not items:
        return head
    lis = "".join(
        f"<li><b>{escape(kind)}</b> {escape(status)} <b>{escape(target_label(r))}</b>: {escape(r['title'])} "
        f'<span class="sub">({escape(r["message"])})</span></li>'
        for kind, status, r in items
    )
    return head + f'<ul class="changes">{lis}</ul>'


def _cluster_section(cluster: str, records: Sequence[Mapping[str, Any]], counts: Mapping[str, int]) -> str:
    out = [f'<h2>{escape(cluster)}</h2><div class="sub">{escape(count_line(counts))}</div>']
    rows = problem_rows(records)
    if rows:
        out.append(
            "<table><tr><th>status</th><th>severity</th><th>target</th><th>check</th><th>what</th><th>fix</th></tr>"
        )
        for row in rows:
            what = escape(row.message) + (f"<br><i>{escape(row.waiver)}</i>" if row.waiver else "")
            fix = f"<code>{escape(row.remediation)}</code>" if row.remediation else ""
            out.append(
                f"<tr>{_status_cell(row.status)}<td>{escape(row.severity)}</td><td>{escape(row.target)}</td>"
                f"<td>{escape(row.title)}<br><code>{escape(', '.join(row.checks))}</code></td>"
                f'<td>{what}</td><td class="fix">{fix}</td></tr>'
            )
        out.append("</table>")
    else:
        out.append("<p>Every check passes or does not apply.</p>")
    rest = [r for r in worst_first(records) if r["status"] in ("PASS", "N/A")]
    if rest and len(rest) <= MAX_PASSING_ROWS:
        out.append(f"<details><summary>{len(rest)} passing or not applicable</summary><table>")
        out.append("<tr><th>status</th><th>target</th><th>check</th><th>note</th></tr>")
        for r in rest:
            out.append(
                f"<tr>{_status_cell(r['status'])}<td>{escape(target_label(r))}</td>"
                f"<td>{escape(r['title'])} <code>{escape(r['check'])}</code></td><td>{escape(r['message'])}</td></tr>"
            )
        out.append("</table></details>")
    return "".join(out)


def render_html(document: Mapping[str, Any], stream: TextIO, width: int | None) -> None:
    del width
    run = document["run"]
    summary = document["summary"]
    title = f"Azure Benefits sweep {when(run['started'])}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<div class="sub">{escape(headline(document))}</div>',
        _tiles(summary),
        f'<p class="exit">{escape(exit_line(document))}</p>',
    ]
    not_assessed = run["targets"]["not_assessed"]
    if not_assessed:
        lis = "".join(
            f"<li><b>{escape(str(t.get('vm') or t.get('node') or t['cluster']))}</b> "
            f"({escape(t['cluster'])}): {escape(t['reason'])}</li>"
            for t in not_assessed
        )
        body.append(f"<h2>Not assessed</h2><ul>{lis}</ul>")
    excluded = run["targets"].get("excluded") or []
    if excluded:
        lis = "".join(
            f"<li><b>{escape(e['vm'])}</b> ({escape(e['cluster'])}): excluded by policy.exclude_globs "
            f"<code>{escape(e['rule'])}</code></li>"
            for e in excluded
        )
        body.append(f"<h2>Excluded</h2><ul>{lis}</ul>")
    body.append("<h2>Changes since the previous run</h2>" + _changes(document.get("changes")))
    body.append("<h2>Trend</h2>" + trend_svg(document.get("trend") or []))
    for cluster, mine in by_cluster(document["findings"]).items():
        body.append(_cluster_section(cluster, mine, summary["clusters"][cluster]))
    expired = [w for w in document.get("waivers") or [] if w["expired"]]
    if expired:
        lis = "".join(
            f"<li>{escape(w['check'])} on {escape(w['target'])} ({escape(w['where'])}), expired "
            f"{escape(when(w['expires']))}: no longer applies</li>"
            for w in expired
        )
        body.append(f"<h2>Expired waivers</h2><ul>{lis}</ul>")
    body.append(
        f'<p class="sub">hcibenefit {escape(run["hcibenefit_version"])} · inventory {escape(run["inventory"])} '
        f"· {escape(run['inventory_hash'])}</p>"
    )
    stream.write(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
