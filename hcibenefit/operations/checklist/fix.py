"""`checklist avd --fix`: what hcibenefit can do about the failing items, through the commands that already do it.

The plan comes from the items' remedies (checklist.items), in the order fixes must run: a node must serve IMDS
before a VM's benefits help (host sync, then host enable), a VM needs its benefits before its guest's task can
activate it (enable, then guest kick). Each step is the existing operation (operations.hostops,
operations.benefits, operations.guests.kick) with its own planning, confirmation, write-ahead audit and
verification; --what-if runs their planning only. Items no command here can fix are listed with who must act.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hcibenefit.checklist.model import REMEDY_ORDER, Checklist, ItemStatus, Remedy, RemedyKind
from hcibenefit.inventory import CredentialResolver, Inventory
from hcibenefit.operations.audit import AuditLog
from hcibenefit.operations.selection import Selection

Confirm = Callable[[str, Sequence[str]], bool]
"""(the step, what it would change) → go ahead? The CLI asks a person as the step's own command would."""

BAD_RESULTS = frozenset({"refused", "failed", "unverified"})


@dataclass(frozen=True)
class Step:
    kind: RemedyKind
    cluster: str | None
    targets: tuple[str, ...]
    enable_task: bool = False
    items: tuple[str, ...] = ()
    """The failing items (vm: item) this step is for."""

    @property
    def command(self) -> str:
        return "; ".join(
            Remedy(self.kind, self.cluster or "", t, self.enable_task).command for t in self.targets
        )


@dataclass(frozen=True)
class FixPlan:
    steps: tuple[Step, ...]
    cannot_fix: tuple[dict[str, Any], ...]

    @property
    def empty(self) -> bool:
        return not self.steps


def plan_fixes(checklist: Checklist) -> FixPlan:
    """Steps for every failing item hcibenefit can fix, in REMEDY_ORDER; the rest with who must act."""
    wanted: dict[tuple[RemedyKind, str | None, bool], dict[str, list[str]]] = {}
    cannot: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for vm in checklist.vms:
        for item in vm.items:
            if item.status not in (ItemStatus.FAIL, ItemStatus.WARN):
                continue
            if not item.remedies:
                # One line per problem, with every VM it stops: a cluster's release is one upgrade.
                owner = item.owner or "an administrator"
                entry = cannot.setdefault(
                    (item.item, owner, item.fix),
                    {
                        "vm": "",
                        "vms": [],
                        "item": item.item,
                        "title": item.title,
                        "status": item.status.value,
                        "owner": owner,
                        "fix": item.fix,
                        "evidence": item.evidence,
                    },
                )
                entry["vms"].append(vm.vm)
                entry["vm"] = ", ".join(entry["vms"])
                continue
            for remedy in item.remedies:
                key = (remedy.kind, remedy.cluster, remedy.enable_task)
                wanted.setdefault(key, {}).setdefault(remedy.target, []).append(f"{vm.vm}: {item.item}")
    enabled = {
        (cluster, node.casefold())
        for (kind, cluster, _), targets in wanted.items()
        if kind == "host-enable"
        for node in targets
    }
    steps = []
    for kind in REMEDY_ORDER:
        for (k, cluster, enable_task), targets in sorted(
            wanted.items(), key=lambda kv: (str(kv[0][1]), kv[0][2])
        ):
            if k != kind:
                continue
            names = [t for t in targets if not (kind == "host-sync" and (cluster, t.casefold()) in enabled)]
            if not names:
                continue  # Enable-AzStackHCIAttestation ends with a sync of its own
            items = tuple(dict.fromkeys(i for t in names for i in targets[t]))
            steps.append(Step(kind, cluster, tuple(names), enable_task, items))
    return FixPlan(tuple(steps), tuple(cannot.values()))


@dataclass
class StepRecord:
    step: Step
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    declined: bool = False

    @property
    def incomplete(self) -> bool:
        return any(o["result"] in BAD_RESULTS for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.step.kind,
            "cluster": self.step.cluster,
            "targets": list(self.step.targets),
            "command": self.step.command,
            "for_items": list(self.step.items),
            "declined": self.declined,
            "outcomes": self.outcomes,
            "calls": self.calls,
        }


def run_fixes(
    inventory: Inventory,
    resolver: CredentialResolver,
    plan: FixPlan,
    *,
    what_if: bool,
    confirm: Confirm,
    audit: AuditLog | None,
    workers: int = 16,
    cancel: threading.Event | None = None,
) -> list[StepRecord]:
    """Each step through its own command's operation, in order; --what-if plans them and sends nothing."""
    records = []
    for step in plan.steps:
        if step.kind in ("host-sync", "host-enable"):
            records.append(_host_step(inventory, resolver, step, what_if, confirm, audit, cancel))
        elif step.kind == "vm-enable":
            records.append(_enable_step(inventory, resolver, step, what_if, confirm, audit, workers, cancel))
        else:
            records.append(_kick_step(inventory, resolver, step, what_if, confirm, audit, workers, cancel))
    return records


WOULD = {"planned": "would change"}


def _clusters(step: Step) -> tuple[str, ...]:
    return (step.cluster,) if step.cluster else ()


def _host_step(
    inventory: Inventory,
    resolver: CredentialResolver,
    step: Step,
    what_if: bool,
    confirm: Confirm,
    audit: AuditLog | None,
    cancel: threading.Event | None,
) -> StepRecord:
    from hcibenefit.operations.hostops import HostAction, run_host_action

    action: HostAction = "sync" if step.kind == "host-sync" else "enable"
    selection = Selection(clusters=_clusters(step), nodes=step.targets)
    outcomes, declined = run_host_action(
        inventory,
        resolver,
        action=action,
        selection=selection,
        what_if=what_if,
        confirm=lambda plans: confirm(
            f"host {action}", [f"host {action} on {p.node}: {p.reason}" for p in plans]
        ),
        audit=audit,
        cancel=cancel,
    )
    record = StepRecord(step, declined=declined)
    for o in outcomes:
        record.outcomes.append(
            {
                "target": o.plan.node,
                "result": WOULD.get(o.result, o.result) if what_if else o.result,
                "why": o.error or o.plan.reason,
                "fix": o.plan.fix,
                "before": o.plan.before,
                "after": o.after,
            }
        )
        if o.plan.decision == "change":
            record.calls.append({"node": o.plan.node, "action": f"host-{action}"})
    return record


def _enable_step(
    inventory: Inventory,
    resolver: CredentialResolver,
    step: Step,
    what_if: bool,
    confirm: Confirm,
    audit: AuditLog | None,
    workers: int,
    cancel: threading.Event | None,
) -> StepRecord:
    from hcibenefit.operations.benefits import describe_call, run_benefits

    result = run_benefits(
        inventory,
        resolver,
        action="enable",
        selection=Selection(vms=step.targets, clusters=_clusters(step)),
        what_if=what_if,
        confirm=lambda proposal: confirm(
            "enable",
            [f"enable {p.vm} on {p.node}: {p.reason}" for p in proposal.plans if p.decision == "change"],
        ),
        audit=audit,
        workers=workers,
        cancel=cancel,
    )
    record = StepRecord(step, declined=result.declined)
    for o in result.outcomes:
        record.outcomes.append(
            {
                "target": o.plan.vm,
                "result": WOULD.get(o.result, o.result) if what_if else o.result,
                "why": o.error or o.plan.reason,
                "fix": o.plan.fix,
                "before": o.plan.before,
                "after": o.after,
            }
        )
    for name, why in result.not_assessed.items():
        record.outcomes.append({"target": name, "result": "failed", "why": why, "fix": None})
    record.calls = describe_call("enable", [o.plan for o in result.outcomes])
    return record


def _kick_step(
    inventory: Inventory,
    resolver: CredentialResolver,
    step: Step,
    what_if: bool,
    confirm: Confirm,
    audit: AuditLog | None,
    workers: int,
    cancel: threading.Event | None,
) -> StepRecord:
    from hcibenefit.operations.guests.kick import run_kick

    result = run_kick(
        inventory,
        resolver,
        Selection(vms=step.targets, clusters=_clusters(step)),
        what_if=what_if,
        enable_task=step.enable_task,
        confirm=lambda plans: confirm("guest kick", [f"kick {p.record.target.name}: {p.why}" for p in plans]),
        audit=audit,
        workers=workers,
        cancel=cancel,
    )
    record = StepRecord(step, declined=result.declined, calls=[dict(c) for c in result.calls])
    for o in result.outcomes:
        final = o.final
        why = o.error or o.plan.why
        if not what_if and o.result == "kicked":
            why = f"{final.verdict.verdict}: {final.verdict.title}"
        record.outcomes.append(
            {
                "target": o.plan.record.target.name,
                "result": WOULD.get(o.result, o.result) if what_if else o.result,
                "why": why,
                "fix": o.plan.fix,
            }
        )
    return record


def fix_document(
    plan: FixPlan, records: Sequence[StepRecord], *, what_if: bool, after: Checklist | None
) -> dict[str, Any]:
    """The "fix" part of a --fix run's document (the checklist itself, after the fixes, is the rest)."""
    if plan.empty:
        summary = "nothing hcibenefit can fix"
    else:
        verb = "would run" if what_if else "ran"
        summary = f"{verb} {len(plan.steps)} step(s): " + ", then ".join(
            f"{s.kind} ({', '.join(s.targets)})" for s in plan.steps
        )
    if plan.cannot_fix:
        summary += f"; {len(plan.cannot_fix)} failing item(s) need people (listed as left)"
    if after is not None:
        summary += f"; after: {'GO' if after.go else 'NO-GO'}"
    return {
        "what_if": what_if,
        "summary": summary,
        "steps": [r.to_dict() for r in records],
        "cannot_fix": list(plan.cannot_fix),
    }


__all__ = ["FixPlan", "Step", "StepRecord", "fix_document", "plan_fixes", "run_fixes"]
