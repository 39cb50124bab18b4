"""What every human-readable format shows the same way: labels, grouping, the summary line."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hcibenefit.sweep.model import worst_first

Record = Mapping[str, Any]
EXIT_MEANING = {
    0: "everything assessed and compliant",
    1: "findings",
    2: "usage or configuration error",
    4: "incomplete: some targets not assessed",
    5: "findings, and some targets not assessed",
    130: "interrupted",
}


def target_label(record: Record) -> str:
    if record.get("vm"):
        return f"{record['vm']} @ {record['node']}" if record.get("node") else str(record["vm"])
    return str(record.get("node") or record["cluster"])


def when(text: str | None) -> str:
    if not text:
        return "-"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Row:
    """One line of a human report: a problem, or several ERRORs that share a target and a reason."""

    status: str
    severity: str
    target: str
    title: str
    checks: tuple[str, ...]
    message: str
    remediation: str | None
    waiver: str | None


def problem_rows(records: Iterable[Record]) -> list[Row]:
    """FAIL and ERROR records, grouped by target (the worst target first), worst first within a target.
    The ERRORs of one target with one reason fold into one row (a node that did not answer is one line, not
    one per check), and a fix already shown for the target is not repeated."""
    groups: dict[str, list[Record]] = {}
    for r in worst_first(records):
        if r["status"] in ("FAIL", "ERROR"):
            groups.setdefault(target_label(r), []).append(r)
    rows: list[Row] = []
    for target, mine in groups.items():
        rows += _target_rows(target, mine)
    return rows


def _target_rows(target: str, records: list[Record]) -> list[Row]:
    rows: list[Row] = []
    folded: dict[tuple[str, str], int] = {}
    shown_fixes: set[str] = set()
    for r in records:
        status = "WAIVED" if r.get("waived") else r["status"]
        if r["status"] == "ERROR":
            key = (r["message"], status)
            if key in folded:
                old = rows[folded[key]]
                checks = (*old.checks, r["check"])
                rows[folded[key]] = Row(
                    old.status,
                    old.severity,
                    target,
                    f"{len(checks)} checks not assessed",
                    checks,
                    old.message,
                    old.remediation,
                    old.waiver,
                )
                continue
            folded[key] = len(rows)
        fix = r.get("remediation") or None
        if fix is not None and fix in shown_fixes:
            fix = None
        elif fix is not None:
            shown_fixes.add(fix)
        rows.append(
            Row(status, r["severity"], target, r["title"], (r["check"],), r["message"], fix, _waiver_text(r))
        )
    return rows


def _waiver_text(record: Record) -> str | None:
    if not record.get("waiver_reason"):
        return None
    owner = f" ({record['waiver_owner']})" if record.get("waiver_owner") else ""
    until = f", until {record['waiver_expires'][:10]}" if record.get("waiver_expires") else ""
    if record.get("waiver_expired"):
        return f"waiver expired {record['waiver_expires'][:10]}: {record['waiver_reason']}{owner}"
    return f"waived: {record['waiver_reason']}{owner}{until}"


def by_cluster(records: Sequence[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(str(r["cluster"]), []).append(r)
    return out


def count_line(counts: Mapping[str, int]) -> str:
    parts = [f"{k} {counts.get(k, 0)}" for k in ("FAIL", "ERROR") if counts.get(k)]
    if counts.get("waived"):
        parts.append(f"waived {counts['waived']}")
    parts += [f"{k} {counts.get(k, 0)}" for k in ("PASS", "N/A")]
    return " · ".join(parts)


def headline(document: Mapping[str, Any]) -> str:
    run = document["run"]
    t = run["targets"]["assessed"]
    clusters = len(document["summary"]["clusters"]) or len(run["selection"]["clusters"])
    source = "" if run["source"] == "winrm" else f" · {run['source']}"
    number = f"run #{run['id']} · " if run.get("id") else ""
    return (
        f"hcibenefit sweep · {number}{when(run['started'])} · {clusters} cluster(s), {t['nodes']} node(s), "
        f"{t['vms']} VM(s), {t['guests']} guest(s) asked · {run['duration_s']:.1f}\u00a0s{source}"
    )


def exit_line(document: Mapping[str, Any]) -> str:
    code = document["run"]["exit_code"]
    return f"exit {code}: {EXIT_MEANING.get(code, '?')} (--fail-on {document['run']['fail_on']})"


def change_lines(changes: Mapping[str, Any] | None, limit: int = 12) -> list[str]:
    """What is new since the previous run of this inventory, for the text formats."""
    if changes is None:
        return []
    prev = changes.get("previous_run")
    if prev is None:
        return ["first run of this inventory and selection: nothing to compare with yet"]
    new, resolved, changed = changes["new"], changes["resolved"], changes["changed"]
    lines = [
        f"since run #{prev['id']} ({when(prev['started'])}): {len(new)} new, {len(resolved)} resolved, "
        f"{len(changed)} changed"
    ]
    items = [("+", r["status"], target_label(r), r["title"], r["message"]) for r in new]
    items += [
        ("-", r["status"], target_label(r), r["title"], f"now {r.get('now') or 'not reported'}")
        for r in resolved
    ]
    items += [
        (
            "~",
            f"{c['before']['status']}->{c['after']['status']}",
            target_label(c["after"]),
            c["after"]["title"],
            c["after"]["message"],
        )
        for c in changed
    ]
    for sign, status, target, title, message in items[:limit]:
        lines.append(f"  {sign} {status} {target}: {title} ({message})")
    if len(items) > limit:
        lines.append(f"  … and {len(items) - limit} more (hcibenefit history diff)")
    return lines


def wrap(text: str, width: int | None, indent: int, *, hang: int | None = None) -> list[str]:
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


def md_cell(text: Any) -> str:
    """A table cell: no line breaks, pipes escaped, nothing Markdown would turn into markup by surprise."""
    value = "" if text is None else str(text)
    for char in ("\\", "|", "*", "_", "`", "<", ">", "[", "]"):
        value = value.replace(char, "\\" + char)
    return " ".join(value.split())
