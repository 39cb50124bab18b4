"""A sweep run as one document: run metadata, every result, waivers, and what changed since the previous run.

The document is the JSON output (its schema ships as report/sweep/sweep-report.schema.json) and what every
other format renders, so a table, a CSV file and a JUnit file of the same run can never disagree. History
stores the same records, so `history show` renders an old run exactly as the sweep did.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
DOCUMENT_KIND = "hcibenefit-sweep"
STATUSES = ("FAIL", "ERROR", "N/A", "PASS")
PROBLEM_STATUSES = frozenset({"FAIL", "ERROR"})
RECORD_FIELDS = (
    "id",
    "check",
    "title",
    "scope",
    "status",
    "severity",
    "cluster",
    "node",
    "vm",
    "message",
    "remediation",
    "waived",
    "waiver_reason",
    "waiver_owner",
    "waiver_expires",
    "waiver_expired",
    "doc_url",
)
"""The fields of every result record, in order: the JSON findings' keys and the CSV header."""

Record = Mapping[str, Any]


def inventory_hash(clusters: Iterable[tuple[str, Iterable[str]]]) -> str:
    """The fleet's identity: its cluster and node names, not the file's bytes, so a comment or a changed
    timeout (or the lab's new ports on every start) keep comparing with the runs before."""
    canonical = sorted((c.lower(), sorted(n.lower() for n in nodes)) for c, nodes in clusters)
    digest = hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()
    return f"sha256:{digest[:32]}"


def scope_key(selection: Mapping[str, Sequence[str]]) -> str:
    """Runs compare with earlier runs of the same selection (a one-cluster sweep is not last night's)."""
    return json.dumps({k: sorted(v.lower() for v in vals) for k, vals in sorted(selection.items())})


def is_problem(record: Record | None) -> bool:
    return record is not None and record["status"] in PROBLEM_STATUSES


def counts(records: Iterable[Record]) -> dict[str, int]:
    """Results by status; a waived FAIL or ERROR counts under `waived` only, so the five add up."""
    out = dict.fromkeys(STATUSES, 0)
    out["waived"] = 0
    for r in records:
        key = "waived" if r.get("waived") else r["status"]
        out[key] = out.get(key, 0) + 1
    return out


@dataclass(frozen=True)
class Changes:
    """Problems (FAIL or ERROR) that appeared, went away or changed between two runs."""

    new: tuple[Record, ...] = ()
    resolved: tuple[Record, ...] = ()
    """The earlier run's records, each with `now`: the later status, or None when no longer reported."""
    changed: tuple[tuple[Record, Record], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.new or self.resolved or self.changed)

    def to_dict(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        return {
            "previous_run": dict(previous) if previous else None,
            "new": [dict(r) for r in self.new],
            "resolved": [dict(r) for r in self.resolved],
            "changed": [
                {
                    "id": after["id"],
                    "before": {k: before.get(k) for k in ("status", "severity", "message", "waived")},
                    "after": dict(after),
                }
                for before, after in self.changed
            ],
        }


def compare(before: Iterable[Record], after: Iterable[Record]) -> Changes:
    """What a reader of last night's report needs to know about tonight's.

    Only the problems of `before` are read (History.problems gives just those); `after` must be whole, since
    a resolved problem says what it is now.

    A problem is new when it was not a problem before (absent, PASS or N/A), resolved when it is no problem
    now, changed when it stays a problem but its status or waiver changed. Messages that tick (expires in 3
    days, then 2) are not changes.
    """
    old = {r["id"]: r for r in before}
    new = {r["id"]: r for r in after}
    appeared, gone, changed = [], [], []
    for rid, rec in new.items():
        prev = old.get(rid)
        if is_problem(rec) and not is_problem(prev):
            appeared.append(rec)
        elif is_problem(rec) and prev is not None and _differs(prev, rec):
            changed.append((prev, rec))
    for rid, prev in old.items():
        if is_problem(prev) and not is_problem(new.get(rid)):
            now = new.get(rid)
            gone.append({**prev, "now": now["status"] if now else None})
    order = _order
    return Changes(
        tuple(sorted(appeared, key=order)),
        tuple(sorted(gone, key=order)),
        tuple(sorted(changed, key=lambda pair: order(pair[1]))),
    )


def _differs(a: Record, b: Record) -> bool:
    return a["status"] != b["status"] or bool(a.get("waived")) != bool(b.get("waived"))


SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


SCOPE_ORDER = {"cluster": 0, "azure": 1, "node": 2, "vm": 3, "guest": 4}
"""Causes before effects: a node's problem before its VMs', a VM's configuration before its guest's."""


def _order(record: Record) -> tuple[Any, ...]:
    return (
        str(record["cluster"]).lower(),
        bool(record.get("waived")),
        STATUSES.index(record["status"]) if record["status"] in STATUSES else 9,
        SEVERITY_ORDER.get(record["severity"], 9),
        SCOPE_ORDER.get(record.get("scope", ""), 9),
        record["id"],
    )


def worst_first(records: Iterable[Record]) -> list[Record]:
    return sorted(records, key=_order)


@dataclass(frozen=True)
class TrendPoint:
    run: int
    started: str
    fail: int
    error: int

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "started": self.started, "FAIL": self.fail, "ERROR": self.error}


@dataclass
class RunDocument:
    """Builder for the document; `to_dict()` is what is rendered, written and validated."""

    run: dict[str, Any]
    records: list[dict[str, Any]]
    waivers: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, Any] | None = None
    trend: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        records = worst_first(self.records)
        by_cluster: dict[str, dict[str, int]] = {}
        for r in records:
            by_cluster.setdefault(r["cluster"], {})
        for cluster in by_cluster:
            by_cluster[cluster] = counts(r for r in records if r["cluster"] == cluster)
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": DOCUMENT_KIND,
            "run": self.run,
            "summary": {**counts(records), "clusters": by_cluster},
            "changes": self.changes,
            "trend": self.trend,
            "waivers": self.waivers,
            # The records themselves, not copies: nothing downstream changes them, and a 10,000-VM
            # sweep has ~140,000 (a copy each was ~60 MB at the run's peak).
            "findings": records,
        }
