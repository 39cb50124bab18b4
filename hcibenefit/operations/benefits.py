"""`hcibenefit enable|disable --vm`: find each VM's owner node, plan, confirm, act once per node, verify.

Round trips: one host-facts call per node of the selected clusters to find the VMs, then per touched
node one mutating call and one host-facts call to verify. Never one call per VM.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hcibenefit.checks.assess import Assessment, VMStatus, assess_cluster, merge
from hcibenefit.checks.unassessed import VERDICT as NOT_ASSESSED
from hcibenefit.checks.unassessed import UnassessedVM, vm_name, vms_named_on_unreachable_nodes
from hcibenefit.errors import UsageError
from hcibenefit.facts.host import GUEST_NIC, FactsError, HostFacts, VMFacts
from hcibenefit.inventory import CredentialResolver, Inventory
from hcibenefit.operations.audit import AuditError, AuditLog
from hcibenefit.operations.gather import Connection, connections, fetch_host_facts, gather_clusters
from hcibenefit.operations.plan import (
    Action,
    TransportChoice,
    VMPlan,
    benefit_state,
    plan_disable,
    plan_enable,
    plan_excluded,
    script_parameters,
    verify,
)
from hcibenefit.operations.selection import Selection
from hcibenefit.remoting.catalog import VM_BENEFITS_DISABLE, VM_BENEFITS_ENABLE, Script
from hcibenefit.remoting.errors import RemotingError
from hcibenefit.remoting.runner import DEFAULT_WORKERS, run_per_host
from hcibenefit.remoting.session import run_script
from hcibenefit.report import Column, DetailItem, Details, Report, Table, columns
from hcibenefit.report.text import powershell_literal

log = logging.getLogger(__name__)

MUTATION_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class VMOutcome:
    plan: VMPlan
    result: str
    """planned, already, refused, changed, failed, unverified"""
    error: str | None = None
    after: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "result": self.result, "error": self.error, "after": self.after}


@dataclass(frozen=True)
class BenefitsResult:
    action: Action
    what_if: bool
    outcomes: tuple[VMOutcome, ...]
    not_assessed: dict[str, str] = field(default_factory=dict)
    """VM name → why it could not be found or assessed (nodes unreachable)."""
    unreachable_nodes: dict[str, str] = field(default_factory=dict)
    declined: bool = False
    """The user answered no: nothing was sent, which is not a failure (exit 0)."""
    unassessed: tuple[UnassessedVM, ...] = ()
    """The selected VMs another node of their cluster names on a node that was not reached: nothing sent."""

    @property
    def incomplete(self) -> bool:
        bad = {"refused", "failed", "unverified"}
        return bool(self.not_assessed) or any(o.result in bad for o in self.outcomes)


@dataclass(frozen=True)
class BenefitsPlan:
    """Every selected VM with what would be done to it (or why not), before anything is sent."""

    plans: tuple[VMPlan, ...]
    not_assessed: dict[str, str]
    expansions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(glob, the VM names it matched): shown before asking, so a glob never surprises."""
    unassessed: tuple[UnassessedVM, ...] = ()
    """Selected VMs on nodes that were not reached (also in not_assessed, by name, with why)."""


def plan_benefits(
    assessment: Assessment,
    selection: Selection,
    *,
    action: Action,
    transport: TransportChoice = "auto",
    force: bool = False,
    exclusion: Callable[[str], str | None] = lambda name: None,
    unassessed: Sequence[UnassessedVM] = (),
) -> BenefitsPlan:
    """A plan for every selected VM: change, already, refused (with why and the fix) or skipped.

    A VM reached through a glob, --all or --verdict that the policy says needs no benefits (or whose
    guest OS is unknown) is `skipped`: listed with why, not touched, not a failure. Named exactly, the
    same VM is `refused`, since the user asked for it. Raises UsageError for a name or glob found nowhere
    when every node answered; with nodes unreachable such a name is reported as not assessed instead,
    since the VM may live there. A VM in `unassessed` (another node of its cluster names it on a node
    that was not reached) is selected like any other and reported as not assessed by name, with why.
    """
    candidates: list[VMStatus | UnassessedVM] = [*assessment.vms, *unassessed]
    match = selection.match_vms(candidates, name_of=vm_name, exclusion=exclusion)
    if match.ambiguous:
        places = {
            name: ", ".join(_node(c) for c in candidates if vm_name(c).casefold() == name.casefold())
            for name in match.ambiguous
        }
        raise UsageError(
            "VM name on more than one node: "
            + "; ".join(f"{name} ({nodes})" for name, nodes in places.items())
            + "; nothing was changed"
        )
    not_assessed: dict[str, str] = {}
    if match.unmatched:
        unreachable = [n.name for n in assessment.nodes if n.facts is None]
        if not unreachable:
            match.raise_unmatched(
                [vm_name(c) for c in candidates],
                where="on any node of the selected clusters",
                nothing_done="nothing was changed",
            )
        for name in match.unmatched:
            not_assessed[name] = (
                f"not found on the nodes that answered; unreachable: {', '.join(unreachable)}"
            )
    plans = []
    named = [c for c in match.selected if isinstance(c, UnassessedVM) and selection.keeps(NOT_ASSESSED)]
    not_assessed.update((vm.name, vm.reason) for vm in named)
    for status in match.selected:
        if isinstance(status, UnassessedVM) or not selection.keeps(status.verdict):
            continue
        explicit = selection.explicit(status.vm.name)
        if status.verdict == "excluded":
            plans.append(plan_excluded(status, action))
            continue
        plan = (
            plan_enable(status, assessment, transport=transport, force=force)
            if action == "enable"
            else plan_disable(status)
        )
        if not explicit and plan.decision == "refused" and status.requirement.needed is not True:
            plan = replace(plan, decision="skipped")
        plans.append(plan)
    expansions = tuple((glob, tuple(names)) for glob, names in match.expansions)
    return BenefitsPlan(tuple(plans), not_assessed, expansions, tuple(named))


def _node(item: VMStatus | UnassessedVM) -> str:
    return item.node if isinstance(item, UnassessedVM) else item.vm.node


def _apply_on_node(
    action: Action,
    connection: Connection,
    plans: Sequence[VMPlan],
    cancel: threading.Event,
    audit: AuditLog,
) -> list[VMOutcome]:
    """One mutating call, then one read to verify; each written ahead to the audit log and after."""
    script = VM_BENEFITS_ENABLE if action == "enable" else VM_BENEFITS_DISABLE
    parameters = script_parameters(plans)
    try:
        change = audit.begin(
            action=action,
            cluster=connection.node.cluster,
            node=connection.node.name,
            remote_user=connection.endpoint.account,
            call={"script": script.key, "parameters": parameters},
            targets={
                p.vm.casefold(): {
                    "vm": p.vm,
                    "steps": list(p.steps),
                    "transport": p.transport,
                    "before": p.before,
                }
                for p in plans
            },
        )
    except AuditError as exc:
        return [VMOutcome(plan, "failed", f"not sent: {exc}") for plan in plans]
    with change:
        per_vm: dict[str, dict[str, Any]] = {}
        change_error: str | None = None
        try:
            document = run_script(
                connection.endpoint, script, parameters, cancel=cancel, timeout_s=MUTATION_TIMEOUT_S
            )
            for item in document.get("results") or []:
                if isinstance(item, dict) and isinstance(item.get("vm_id"), str):
                    per_vm.setdefault(item["vm_id"].lower(), item)
        except RemotingError as exc:
            # After a mutating call failed mid-way the host may or may not have changed: re-read.
            change_error = f"{exc.kind}: {exc.detail}"
        after: HostFacts | None = None
        verify_error: str | None = None
        try:
            after = fetch_host_facts(connection, cancel)
        except (RemotingError, FactsError) as exc:
            verify_error = str(exc)
        vms_after = {vm.id.lower(): vm for vm in after.vms} if after else {}
        outcomes = [_verified(plan, per_vm, after, vms_after, change_error, verify_error) for plan in plans]
        for outcome in outcomes:
            change.finish(
                outcome.plan.vm.casefold(), result=outcome.result, error=outcome.error, after=outcome.after
            )
    return outcomes


def _verified(
    plan: VMPlan,
    per_vm: Mapping[str, Mapping[str, Any]],
    after: HostFacts | None,
    vms_after: Mapping[str, VMFacts],
    change_error: str | None,
    verify_error: str | None,
) -> VMOutcome:
    reported = per_vm.get(plan.vm_id.lower())
    script_error = None
    if reported is not None and not reported.get("ok", False):
        err = reported.get("error") or {}
        if isinstance(err, dict):
            script_error = f"{err.get('message', 'failed')} [{err.get('error_id', '')}]"
        else:  # not an object (a script whose ConvertTo-Json -Depth is too shallow writes a type name)
            script_error = f"failed: {str(err)[:200]}"
        if reported.get("leftover_nic"):
            script_error += f"; a half-configured {GUEST_NIC} is left on the VM"
    if after is None:
        return VMOutcome(
            plan, "unverified", script_error or change_error or f"could not re-read the node: {verify_error}"
        )
    vm_after = vms_after.get(plan.vm_id.lower())
    state_after = benefit_state(vm_after, after) if vm_after is not None else None
    problem = verify(plan, vm_after, after)
    if problem is None:
        return VMOutcome(plan, "changed", None, state_after)
    why = script_error or change_error or problem
    return VMOutcome(plan, "failed", why if why == problem else f"{why}; {problem}", state_after)


def apply_plans(
    inventory: Inventory,
    resolver: CredentialResolver,
    plans: Sequence[VMPlan],
    *,
    action: Action,
    audit: AuditLog,
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
) -> list[VMOutcome]:
    """Send the changes of ``plans``, one call per node, nodes in parallel; every call audited."""
    changes = [p for p in plans if p.decision == "change"]
    by_node: dict[str, list[VMPlan]] = {}
    for plan in changes:
        by_node.setdefault(plan.node, []).append(plan)
    conns = connections([inventory.node(name) for name in by_node], resolver, azure=inventory.azure)
    results = run_per_host(
        conns,
        lambda c, ev: _apply_on_node(action, c, by_node[c.node.name], ev, audit),
        name_of=lambda c: c.node.name,
        workers=workers,
        cancel=cancel,
        activity=f"{action} on the nodes",
    )
    outcomes: dict[str, VMOutcome] = {}
    for outcome in results:
        if outcome.value is None:
            error = f"{outcome.error.kind}: {outcome.error.detail}" if outcome.error else "unknown error"
            for plan in by_node[outcome.target.node.name]:
                outcomes[plan.vm] = VMOutcome(plan, "failed", error)
            continue
        for item in outcome.value:
            outcomes[item.plan.vm] = item
    return [outcomes.get(p.vm) or _passive(p) for p in plans]


def _passive(plan: VMPlan) -> VMOutcome:
    passive = {"already": "already", "refused": "refused", "skipped": "skipped"}
    return VMOutcome(plan, passive.get(plan.decision, "planned"), None, None)


def run_benefits(
    inventory: Inventory,
    resolver: CredentialResolver,
    *,
    action: Action,
    selection: Selection,
    what_if: bool = False,
    transport: TransportChoice = "auto",
    force: bool = False,
    confirm: Callable[[BenefitsPlan], bool] = lambda plan: True,
    audit: AuditLog | None = None,
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
) -> BenefitsResult:
    """Plan, then (unless --what-if) confirm, apply once per node and verify.

    `confirm` is asked whenever something would change; it decides whether to ask a person.
    """
    if not selection.names_targets:
        raise UsageError(
            "say which VMs: --vm NAME|GLOB (repeatable), --verdict VERDICT, or --all for every VM of the "
            "selected clusters; nothing was changed"
        )
    clusters = selection.select_clusters(inventory, nothing_done="nothing was changed")
    gathered, _ = gather_clusters(inventory, clusters, resolver, workers=workers, cancel=cancel)
    when = now or dt.datetime.now(dt.timezone.utc)
    assessment = merge(
        [
            assess_cluster(f, [n.name for n in c.nodes], inventory.policy, when)
            for f, c in zip(gathered, clusters, strict=True)
        ]
    )
    unreachable = {n.name: n.error or "" for n in assessment.nodes if n.facts is None}
    proposal = plan_benefits(
        assessment,
        selection,
        action=action,
        transport=transport,
        force=force,
        exclusion=inventory.policy.exclusion,
        unassessed=vms_named_on_unreachable_nodes(gathered),
    )
    plans, not_assessed, named = proposal.plans, proposal.not_assessed, proposal.unassessed
    changes = [p for p in plans if p.decision == "change"]
    if what_if or not changes:
        outcomes = tuple(_passive(p) for p in plans)
        return BenefitsResult(action, what_if, outcomes, not_assessed, unreachable, unassessed=named)
    if not confirm(proposal):
        return BenefitsResult(
            action,
            False,
            tuple(_passive(p) for p in plans),
            not_assessed,
            unreachable,
            declined=True,
            unassessed=named,
        )
    if audit is None:
        raise ValueError("changes are sent only with an audit log (AuditLog.open)")
    outcomes_list = apply_plans(
        inventory, resolver, plans, action=action, audit=audit, workers=workers, cancel=cancel
    )
    return BenefitsResult(action, False, tuple(outcomes_list), not_assessed, unreachable, unassessed=named)


def describe_call(action: Action, plans: Sequence[VMPlan]) -> list[dict[str, Any]]:
    """The exact mutating calls a plan would send: one per node, script id and parameters."""
    script = VM_BENEFITS_ENABLE if action == "enable" else VM_BENEFITS_DISABLE
    by_node: dict[str, list[VMPlan]] = {}
    for plan in plans:
        if plan.decision == "change":
            by_node.setdefault(plan.node, []).append(plan)
    return [
        {
            "node": node,
            "script": script.key,
            "vms": [plan.vm for plan in p],
            "parameters": script_parameters(p),
        }
        for node, p in by_node.items()
    ]


RESULT_WORDS = {"planned": "would change", "skipped": "not touched", "already": "already"}


def benefits_report(
    result: BenefitsResult, run_info: Mapping[str, Any] | None = None, *, show_scripts: bool = False
) -> Report:
    records = [o.to_dict() for o in result.outcomes]
    calls = describe_call(result.action, [o.plan for o in result.outcomes])
    data = {
        **(run_info or {}),
        "action": result.action,
        "what_if": result.what_if,
        "vms": records,
        "calls": calls,
        "not_assessed": result.not_assessed,
        "not_assessed_vms": [vm.to_dict() for vm in result.unassessed],
        "unreachable_nodes": result.unreachable_nodes,
        "declined": result.declined,
    }
    rows = [
        {
            "vm": o.plan.vm,
            "cluster": o.plan.cluster,
            "node": o.plan.node,
            "result": (
                RESULT_WORDS.get(o.result, o.result) if result.what_if or o.result == "skipped" else o.result
            ),
            "via": o.plan.transport,
            "steps": ", ".join(o.plan.steps) or None,
            "why": o.error or o.plan.reason,
        }
        for o in result.outcomes
    ]
    where = {vm.name: vm for vm in result.unassessed}
    rows += [
        {
            "vm": name,
            "cluster": where[name].cluster if name in where else None,
            "node": where[name].node if name in where else None,
            "result": "not assessed",
            "why": where[name].short_reason if name in where else why,
        }
        for name, why in result.not_assessed.items()
    ]
    table = Table(
        f"{result.action} {'(what-if: nothing was sent)' if result.what_if else ''}".strip(),
        columns(
            ("cluster", "CLUSTER"),
            ("node", "NODE"),
            ("vm", "VM"),
            ("result", "RESULT"),
            ("via", "VIA"),
            Column("steps", "STEPS", wide=True),
            Column("why", "WHY", wrap=True),
        ),
        rows,
    )
    fixes = Details(
        "What to do for the VMs left as they are:",
        [
            DetailItem(f"{o.plan.vm} ({o.plan.node}): {o.error or o.plan.reason}", [f"fix: {o.plan.fix}"])
            for o in result.outcomes
            if o.plan.fix and o.result in ("refused", "skipped", "failed")
        ],
    )
    script = VM_BENEFITS_ENABLE if result.action == "enable" else VM_BENEFITS_DISABLE
    sent = Details(
        ("Would send" if result.what_if else "Sent") + " (one call per node):",
        [
            describe_script_call(script, call["node"], call["parameters"], show_scripts, vms=call["vms"])
            for call in calls
        ],
    )
    notes = []
    if result.declined:
        notes.append("not confirmed: nothing was changed")
    for node, why in result.unreachable_nodes.items():
        notes.append(f"! {node}: {why}")
    return Report(data=data, tables=[table], notes=notes, details=[sent, fixes])


def describe_script_call(
    script: Script,
    target: str,
    parameters: Mapping[str, Any],
    show_script: bool,
    *,
    vms: Sequence[str] = (),
) -> DetailItem:
    """One call as a person checks it: script, target (and the VMs its ids stand for), each parameter value
    quoted as PowerShell would receive it, and (at -v) the script's text."""
    lines = [f"-{name} {powershell_literal(value)}" for name, value in parameters.items()]
    if show_script:
        lines += ["", f"script {script.key}:", *script.text().splitlines()]
    # The VMs the ids stand for, each quoted (a name may hold a comma).
    title = f"{script.key} on {target}" + (f" for {', '.join(map(powershell_literal, vms))}" if vms else "")
    return DetailItem(title, lines, verbatim=True)


__all__ = [
    "BenefitsPlan",
    "BenefitsResult",
    "VMOutcome",
    "benefits_report",
    "describe_script_call",
    "plan_benefits",
    "run_benefits",
]
