"""From the catalogue's results to a checklist item: who acts, what hcibenefit can fix, how the parts of an
item combine into its status, evidence and fix. Pure; the items themselves are in checklist.items and
checklist.azure_items."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from hcibenefit.checklist.context import VMEvidence
from hcibenefit.checklist.model import Item, ItemStatus, Remedy, worst
from hcibenefit.checks.results import Result, Status
from hcibenefit.facts.host import HostFacts

HCIBENEFIT = "hcibenefit (--fix)"
HCI_ADMIN = "HCI admin"
AZURE_ADMIN = "Azure admin"
AVD_ADMIN = "AVD admin"
GUEST_ADMIN = "guest OS admin"

FAIL, WARN, PASS, NA = ItemStatus.FAIL, ItemStatus.WARN, ItemStatus.PASS, ItemStatus.NA
NO_AZURE = "needs Azure: the inventory has no azure: section"
SYNC_LIMIT_DAYS = 30


@dataclass(frozen=True)
class Part:
    """One piece of an item's verdict: a catalogue result, or an AVD judgement."""

    status: ItemStatus
    text: str = ""
    fix: str | None = None
    owner: str | None = None
    assessed: bool = True
    remedies: tuple[Remedy, ...] = ()


@dataclass(frozen=True)
class ItemDef:
    id: str
    title: str
    ref: str
    owner: str
    """Who acts when no hcibenefit command can."""
    checks: Mapping[str, ItemStatus]
    """Catalogue check id → what its FAIL makes of the item (FAIL or WARN)."""
    judge: Callable[[VMEvidence], list[Part]] | None = None
    evidence: Callable[[VMEvidence], str] | None = None
    """The positive statement for a PASS."""
    applies: Callable[[VMEvidence], str | None] | None = None
    """None when the item is about the VM, else why not (N/A)."""
    needs_azure: bool = False


# --- from catalogue results to parts ----------------------------------------------------------------


def _label(results: Sequence[Result]) -> str:
    """The message of one or more results that say the same thing, with the nodes they are about."""
    message = results[0].message
    nodes = [r.target.node for r in results if r.target.node and not r.target.vm]
    nodes = [n for n in nodes if n.casefold() not in message.casefold()]
    return f"{', '.join(nodes)}: {message}" if nodes else message


def _first_node(ctx: VMEvidence) -> str:
    """The node a cluster-wide sync runs on: the one that synced longest ago, else the owner."""
    synced = [
        (h.registration.last_connected, h.node)
        for h in ctx.hosts
        if h.registration is not None and h.registration.last_connected is not None
    ]
    return min(synced)[1] if synced else ctx.host.node


def _host(ctx: VMEvidence, name: str | None) -> HostFacts | None:
    key = (name or "").casefold()
    return next((h for h in ctx.hosts if h.node.casefold() == key), None)


def _node_remedy(ctx: VMEvidence, node: str) -> Remedy:
    """Sync for a node that only needs its certificate renewed, enable for one that never served."""
    host = _host(ctx, node)
    status = host.attestation.status if host and host.attestation else "unknown"
    name = host.node if host else node
    if status in ("Expired", "Active"):
        return Remedy("host-sync", ctx.cluster, name)
    return Remedy("host-enable", ctx.cluster, name)


def _missing_switch_nodes(ctx: VMEvidence) -> list[str]:
    return [h.node for h in ctx.hosts if h.switch is None and h.attestation_switch is None]


_SYNC_NODE = frozenset(
    {
        "node.attestation-expired",
        "node.attestation-expiring",
        "node.attestation-error",
        "node.sync-overdue",
        "node.sync-near-limit",
    }
)
_SYNC_CLUSTER = frozenset(
    {"azure.sync-out-of-policy", "azure.sync-near-limit", "azure.sync-late", "azure.cluster-not-connected"}
)
_ENABLE_VM = frozenset({"vm.benefits-missing", "vm.guest-nic-disconnected", "vm.attestation-disconnected"})


def remedies_for(ctx: VMEvidence, result: Result) -> tuple[Remedy, ...]:
    """What hcibenefit can do about a catalogue FAIL, through host sync/enable, enable or guest kick."""
    check, node, vm = result.check.id, result.target.node, ctx.vm.name
    if check in _SYNC_NODE and node:
        return (Remedy("host-sync", ctx.cluster, node),)
    if check in ("node.attestation-inactive", "node.switch-missing") and node:
        return (Remedy("host-enable", ctx.cluster, node),)
    if check in _SYNC_CLUSTER:
        return (Remedy("host-sync", ctx.cluster, _first_node(ctx)),)
    if check == "azure.imds-enabled-node-not-active" and node:
        return (_node_remedy(ctx, node),)
    if check == "azure.imds-disabled":
        inactive = [h.node for h in ctx.hosts if h.attestation is None or h.attestation.status != "Active"]
        if inactive:
            return tuple(_node_remedy(ctx, n) for n in inactive)
        return (Remedy("host-sync", ctx.cluster, _first_node(ctx)),)
    if check == "vm.owner-node-not-active":
        return (_node_remedy(ctx, ctx.host.node),)
    if check in ("vm.owner-node-switch-broken", "vm.failover-node-lacks-switch"):
        return tuple(Remedy("host-enable", ctx.cluster, n) for n in _missing_switch_nodes(ctx))
    if check in _ENABLE_VM:
        return (Remedy("vm-enable", ctx.cluster, vm),)
    if check == "guest.activated":
        return (Remedy("guest-kick", ctx.cluster, vm, enable_task=_task_disabled(ctx)),)
    if check == "guest.license-task":
        probe = ctx.probe
        if probe is not None and not probe.task.present:
            return ()  # a missing task comes with the cumulative update, not with a kick
        return (Remedy("guest-kick", ctx.cluster, vm, enable_task=_task_disabled(ctx)),)
    return ()


def _task_disabled(ctx: VMEvidence) -> bool:
    probe = ctx.probe
    return probe is not None and probe.task.state == "Disabled"


def catalogue_parts(ctx: VMEvidence, levels: Mapping[str, ItemStatus], owner: str) -> list[Part]:
    """Parts from the catalogue's results; results of one check that say the same about several nodes are
    one part naming the nodes."""
    parts: list[Part] = []
    for check, level in levels.items():
        groups: dict[tuple[Status, str], list[Result]] = {}
        for result in ctx.results_of(check):
            groups.setdefault((result.status, result.message), []).append(result)
        for (status, message), results in groups.items():
            fix = merge_fixes(r.remediation for r in results)
            if status is Status.PASS:
                parts.append(Part(PASS))
            elif status is Status.NA:
                parts.append(Part(NA, message))
            elif status is Status.ERROR:
                parts.append(Part(FAIL, f"not assessed: {_label(results)}", fix, owner, assessed=False))
            else:
                remedies = tuple(dict.fromkeys(r for result in results for r in remedies_for(ctx, result)))
                parts.append(
                    Part(level, _label(results), fix, HCIBENEFIT if remedies else owner, True, remedies)
                )
    return parts


# --- from parts to an item ----------------------------------------------------------------------------


def _unique(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def combine(defn: ItemDef, ctx: VMEvidence, parts: Sequence[Part]) -> Item:
    status = worst([p.status for p in parts])
    bad = [p for p in parts if p.status in (FAIL, WARN)]
    if status in (FAIL, WARN):
        shown = [p for p in bad if p.status is FAIL] + [p for p in bad if p.status is WARN]
        evidence = "; ".join(_unique(p.text for p in shown))
        fix = merge_fixes(p.fix for p in shown)
        owner = ", ".join(_unique(p.owner or defn.owner for p in shown))
        assessed = any(p.assessed for p in bad if p.status is status)
        remedies = tuple(dict.fromkeys(r for p in bad for r in p.remedies))
        return Item(
            defn.id, defn.title, defn.ref, status, evidence, fix, owner, assessed, _ids(defn), remedies
        )
    if status is NA:
        return Item(
            defn.id,
            defn.title,
            defn.ref,
            NA,
            _unique(p.text for p in parts)[0] if parts else "",
            checks=_ids(defn),
        )
    evidence = defn.evidence(ctx) if defn.evidence is not None else ""
    return Item(defn.id, defn.title, defn.ref, PASS, evidence or "every check passes", checks=_ids(defn))


def _steps(text: str) -> list[str]:
    body = text[len("first ") :] if text.startswith("first ") else text
    return [step.strip() for step in body.split("; then ") if step.strip()]


def merge_fixes(texts: Iterable[str | None]) -> str | None:
    """Several fixes as one text: each once, and one whose every step an earlier one already has is left
    out ("first A; then B" covers "B"), so overlapping remediations of one item do not repeat."""
    seen: list[str] = []
    kept: list[str] = []
    for text in _unique(texts):
        steps = _steps(text)
        if steps and all(step in seen for step in steps):
            continue
        kept.append(text)
        seen += steps
    return "; also ".join(kept) or None


def _ids(defn: ItemDef) -> tuple[str, ...]:
    return tuple(defn.checks)


def judge_item(defn: ItemDef, ctx: VMEvidence) -> Item:
    if defn.needs_azure and ctx.azure is None:
        return Item(defn.id, defn.title, defn.ref, NA, NO_AZURE, checks=_ids(defn))
    if defn.needs_azure and ctx.azure is not None and ctx.azure.unreadable:
        # The catalogue's results say the same (ERROR: the subscription could not be read): say it once.
        return combine(defn, ctx, azure_unreadable(ctx))
    why = defn.applies(ctx) if defn.applies is not None else None
    if why is not None:
        return Item(defn.id, defn.title, defn.ref, NA, why, checks=_ids(defn))
    parts = catalogue_parts(ctx, defn.checks, defn.owner)
    if defn.judge is not None:
        parts += defn.judge(ctx)
    if not parts:
        return Item(defn.id, defn.title, defn.ref, NA, "nothing to judge", checks=_ids(defn))
    return combine(defn, ctx, parts)


def day_text(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment else "unknown"


def when_text(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "unknown"


def azure_unreadable(ctx: VMEvidence) -> list[Part]:
    azure = ctx.azure
    if azure is not None and azure.unreadable:
        # What would make the subscription readable (a role, a login), when the read says.
        fix = azure.pair.unread[1] if azure.pair is not None and azure.pair.unread else None
        return [Part(FAIL, f"not assessed: {azure.unreadable}", fix, AZURE_ADMIN, assessed=False)]
    return []
