"""A checklist's records: items with a status, the VMs they are about, and the go/no-go over them.

An item is one line a change board reads: PASS, WARN, FAIL or N/A, the evidence that decided it and the
exact fix. Items are made from the catalogue's results (checks.results) and from the AVD judgements in
checklist.avd; the statuses here are the checklist's own four, because "WARN" has no place in a sweep's
PASS/FAIL/ERROR/N/A and "could not be assessed" has none on a go/no-go sheet: it is a FAIL (not assessed)
there, since nobody can sign what was not looked at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

RemedyKind = Literal["host-sync", "host-enable", "vm-enable", "guest-kick"]
REMEDY_ORDER: tuple[RemedyKind, ...] = ("host-sync", "host-enable", "vm-enable", "guest-kick")
"""The order fixes run in: a node must serve IMDS before a VM's benefits help, and those before a kick."""


class ItemStatus(str, Enum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    NA = "N/A"

    @property
    def rank(self) -> int:
        """Worst first: FAIL, WARN, PASS, N/A (a PASS beside an N/A makes the item PASS)."""
        return {"FAIL": 0, "WARN": 1, "PASS": 2, "N/A": 3}[self.value]


def worst(statuses: Sequence[ItemStatus]) -> ItemStatus:
    return min(statuses, key=lambda s: s.rank) if statuses else ItemStatus.NA


@dataclass(frozen=True)
class Remedy:
    """What hcibenefit itself can do about a failing item, through an existing command."""

    kind: RemedyKind
    cluster: str
    target: str
    """The node (host-sync, host-enable) or the VM (vm-enable, guest-kick)."""
    enable_task: bool = False
    """guest-kick: enable a disabled LicenseImdsIntegration task first."""

    @property
    def command(self) -> str:
        from hcibenefit.checks import fixes

        if self.kind in ("host-sync", "host-enable"):
            return fixes.hcibenefit("host", self.kind.split("-")[1], cluster=self.cluster, node=self.target)
        if self.kind == "vm-enable":
            return fixes.enable_vm(self.target)
        return fixes.hcibenefit("guest", "kick", vm=self.target) + (
            " --enable-task" if self.enable_task else ""
        )


@dataclass(frozen=True)
class Item:
    """One checklist line for one VM."""

    item: str
    """Stable id (cluster-release, guest-activated, ...): what scripts match on."""
    title: str
    ref: str
    """The go/no-go criterion it answers (C1..C21 of the AVD readiness list), for the ticket."""
    status: ItemStatus
    evidence: str
    fix: str | None = None
    owner: str | None = None
    """Who acts on a WARN or FAIL: hcibenefit (--fix can), or the admin role that must."""
    assessed: bool = True
    """False: the facts could not be read (a node did not answer, Azure could not be read); a FAIL."""
    checks: tuple[str, ...] = ()
    """The catalogue checks (hcibenefit checks list) the item is made of."""
    remedies: tuple[Remedy, ...] = ()

    @property
    def fixable(self) -> bool:
        return bool(self.remedies)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "status": self.status.value,
            "evidence": self.evidence,
            "fix": self.fix,
            "title": self.title,
            "ref": self.ref,
            "owner": self.owner,
            "assessed": self.assessed,
            "checks": list(self.checks),
            "fixable": self.fixable,
        }


@dataclass(frozen=True)
class VMChecklist:
    vm: str
    cluster: str | None
    node: str | None
    items: tuple[Item, ...]
    session_hosts: tuple[str, ...] = ()
    """The AVD session host names this VM is (host pool/name)."""

    def go(self, *, strict: bool) -> bool:
        bad = {ItemStatus.FAIL, ItemStatus.WARN} if strict else {ItemStatus.FAIL}
        return not any(i.status in bad for i in self.items)

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.item == item_id), None)

    def to_dict(self, *, strict: bool) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "cluster": self.cluster,
            "go": self.go(strict=strict),
            "items": [i.to_dict() for i in self.items],
            "node": self.node,
            "session_hosts": list(self.session_hosts),
            "counts": counts(self.items),
        }


def counts(items: Sequence[Item]) -> dict[str, int]:
    out = {s.value: 0 for s in ItemStatus}
    for item in items:
        out[item.status.value] += 1
    return out


@dataclass(frozen=True)
class Checklist:
    """A whole run: every VM's items, what could not be mapped, and the run's particulars."""

    vms: tuple[VMChecklist, ...]
    strict: bool
    window_days: int
    run: dict[str, Any] = field(default_factory=dict)
    """When, who, which inventory (and its hash), which hcibenefit, what was asked."""
    notes: tuple[str, ...] = ()

    @property
    def go(self) -> bool:
        return bool(self.vms) and all(vm.go(strict=self.strict) for vm in self.vms)

    @property
    def not_assessed(self) -> bool:
        return any(not i.assessed for vm in self.vms for i in vm.items)

    @property
    def findings(self) -> bool:
        bad = {ItemStatus.FAIL, ItemStatus.WARN} if self.strict else {ItemStatus.FAIL}
        return any(i.assessed and i.status in bad for vm in self.vms for i in vm.items)

    def to_dict(self) -> dict[str, Any]:
        all_items = [i for vm in self.vms for i in vm.items]
        return {
            "go": self.go,
            "vms": [vm.to_dict(strict=self.strict) for vm in self.vms],
            "kind": "hcibenefit-checklist",
            "checklist": "avd",
            "go_line": go_line(self),
            "strict": self.strict,
            "window_days": self.window_days,
            "counts": counts(all_items),
            "run": self.run,
            "notes": list(self.notes),
        }


def go_line(checklist: Checklist) -> str:
    """The sentence a change board signs under (or does not)."""
    total = len(checklist.vms)
    if not total:
        return "NO-GO: no session host was checked"
    nogo = [vm.vm for vm in checklist.vms if not vm.go(strict=checklist.strict)]
    if not nogo:
        warned = sum(1 for vm in checklist.vms for i in vm.items if i.status is ItemStatus.WARN)
        extra = f" ({warned} warning(s): see WARN items)" if warned else ""
        return f"GO: all {total} session host(s) pass every item{extra}"
    shown = ", ".join(nogo[:8]) + (f" and {len(nogo) - 8} more" if len(nogo) > 8 else "")
    what = "FAIL or WARN (--strict)" if checklist.strict else "FAIL"
    return f"NO-GO: {len(nogo)} of {total} session host(s) have a {what} item: {shown}"
