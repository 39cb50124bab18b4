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
    out = _no_counts()
    for r in records:
        _count(out, r)
    return out


def _no_counts() -> dict[str, int]:
    out = dict.fromkeys(STATUSES, 0)
    out["waived"] = 0
    return out


def _count(out: dict[str, int], record: Record) -> None:
    key = "waived" if record.get("waived") else record["status"]
    out[key] = out.get(key, 0) + 1


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
    # Only the records `before` names are looked up again: an index of every id in `after` would hold
    # ~140,000 id strings at once in a 10,000-VM sweep. Ids are unique within a run (history's key).
    now_of: dict[str, Record] = {}
    appeared, gone, changed = [], [], []
    for rec in after:
        problem = is_problem(rec)
        if not problem and not old:
            continue
        rid = rec["id"]
        prev = old.get(rid)
        if prev is not None:
            now_of[rid] = rec
        if problem and not is_problem(prev):
            appeared.append(rec)
        elif problem and prev is not None and _differs(prev, rec):
            changed.append((prev, rec))
    for rid, prev in old.items():
        if is_problem(prev) and not is_problem(now_of.get(rid)):
            now = now_of.get(rid)
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
    return (str(record["cluster"]).lower(), *_order_in_cluster(record))


def _order_in_cluster(record: Record) -> tuple[Any, ...]:
    return (
        bool(record.get("waived")),
        STATUSES.index(record["status"]) if record["status"] in STATUSES else 9,
        SEVERITY_ORDER.get(record["severity"], 9),
        SCOPE_ORDER.get(record.get("scope", ""), 9),
        record["id"],
    )


def worst_first(records: Iterable[Record]) -> list[Record]:
    """Sorted by `_order`, a cluster at a time: the same order (the sort is stable and the cluster comes
    first), without a sort key per result for the whole fleet at once (~35 MB at 140,000 results)."""
    by_cluster: dict[str, list[Record]] = {}
    for record in records:
        by_cluster.setdefault(str(record["cluster"]).lower(), []).append(record)
    ordered: list[Record] = []
    for cluster in sorted(by_cluster):
        ordered += sorted(by_cluster.pop(cluster), key=_order_in_cluster)
    return ordered


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
    records: Sequence[Record]
    """Dicts, or ResultRecords (checks.results) that read each field from their result when asked."""
    waivers: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, Any] | None = None
    trend: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        records = worst_first(self.records)
        total = _no_counts()
        by_cluster: dict[str, dict[str, int]] = {}
        for r in records:
            cluster = by_cluster.get(r["cluster"])
            if cluster is None:
                cluster = by_cluster[r["cluster"]] = _no_counts()
            _count(cluster, r)
            _count(total, r)
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": DOCUMENT_KIND,
            "run": self.run,
            "summary": {**total, "clusters": by_cluster},
            "changes": self.changes,
            "trend": self.trend,
            "waivers": self.waivers,
            # The records themselves, not copies: nothing downstream changes them, and a 10,000-VM
            # sweep has ~140,000 (a copy each was ~60 MB at the run's peak).
            "findings": records,
        }
