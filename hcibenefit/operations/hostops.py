"""`hcibenefit host enable|sync`: node-level remediation, with the same plan/what-if/verify rules as VMs.

`host sync` runs Sync-AzureStackHCI on each node that needs it, one at a time.

`host enable` runs Enable-AzStackHCIAttestation once per cluster: the cmdlet configures every node of the
cluster from the node it runs on (Invoke-Command -ComputerName for the others) after opening a session
back to that node, and ends with a cluster sync. From our WinRM session those are second hops, so the
session must be able to delegate credentials: CredSSP, or Kerberos with delegation. The inventory says
which auth a node uses; without one that can delegate, the plan refuses and says what to set
(docs/host-enable.md). Each selected node is re-read afterwards to verify.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hcibenefit.checks import fixes
from hcibenefit.checks.assess import Assessment, NodeStatus, assess_cluster
from hcibenefit.errors import UsageError
from hcibenefit.facts.host import HOST_SWITCH, FactsError
from hcibenefit.inventory import CredentialResolver, Inventory
from hcibenefit.inventory import Node as InventoryNode
from hcibenefit.operations.audit import AuditError, AuditLog
from hcibenefit.operations.gather import Connection, connections, fetch_host_facts, gather_clusters
from hcibenefit.operations.selection import Selection
from hcibenefit.remoting.catalog import HOST_ATTESTATION_ENABLE, HOST_SYNC
from hcibenefit.remoting.errors import RemotingError
from hcibenefit.remoting.session import run_script
from hcibenefit.report import Column, DetailItem, Details, Report, Table, columns

HostAction = Literal["enable", "sync"]
NODE_OPERATION_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class NodePlan:
    node: str
    cluster: str
    action: HostAction
    decision: str  # change, already, refused
    reason: str
    fix: str | None = None
    before: str | None = None


@dataclass(frozen=True)
class NodeOutcome:
    plan: NodePlan
    result: str  # planned, already, refused, changed, failed, unverified
    error: str | None = None
    after: str | None = None

    def to_dict(self) -> dict[str, Any]:
        p = self.plan
        return {
            "node": p.node,
            "cluster": p.cluster,
            "action": p.action,
            "decision": p.decision,
            "reason": p.reason,
            "fix": p.fix,
            "before": p.before,
            "result": self.result,
            "error": self.error,
            "after": self.after,
        }


def _cluster_blockers(assessment: Assessment) -> list[tuple[str, str]]:
    """(what blocks a cluster-wide attestation change, what removes it)."""
    blockers = []
    for node in assessment.nodes:
        if node.facts is None:
            blockers.append(
                (
                    f"{node.name} is {node.verdict} ({node.error})",
                    f"make {node.name} reachable ({fixes.hcibenefit('inventory', 'test', node=node.name)})",
                )
            )
    for node in assessment.nodes:
        if node.facts is not None:
            blockers += [
                (f"{m.name} is {m.state}", fixes.start_cluster_node(m.name, m.state, node.name))
                for m in node.facts.cluster_nodes
                if m.state != "Up"
            ]
            break
    return blockers


def _retry(action: HostAction, node: NodeStatus) -> str:
    return fixes.hcibenefit("host", action, cluster=node.cluster, node=node.name)


def plan_node(
    node: NodeStatus, assessment: Assessment, action: HostAction, *, explicit: bool
) -> NodePlan | None:
    facts = node.facts
    if facts is None:
        return NodePlan(
            node.name,
            node.cluster,
            action,
            "refused",
            f"{node.verdict}: {node.error}",
            fixes.steps(
                f"make {node.name} reachable ({fixes.hcibenefit('inventory', 'test', node=node.name)} "
                "shows connection, TLS and logon)",
                _retry(action, node),
            ),
        )
    status = facts.attestation.status if facts.attestation else "unknown"
    registration = facts.registration.registration_status if facts.registration else "unknown"
    if registration != "Registered":
        return NodePlan(
            node.name,
            node.cluster,
            action,
            "refused",
            f"cluster registration is {registration}",
            f"register {node.cluster} with Azure (Register-AzStackHCI on one of its nodes); then "
            + _retry(action, node),
            status,
        )
    if action == "sync":
        if status == "Active" and not explicit:
            return None
        if status == "Inactive":
            return NodePlan(
                node.name,
                node.cluster,
                action,
                "refused",
                "attestation is Inactive: sync does not turn it on",
                fixes.steps(*fixes.node_enable_steps(node.cluster, node.name, facts.module_version)),
                status,
            )
        return NodePlan(
            node.name,
            node.cluster,
            action,
            "change",
            f"attestation is {status}: Sync-AzureStackHCI",
            None,
            status,
        )
    # enable
    switch = facts.switch or facts.attestation_switch
    if status == "Active" and switch is not None and switch.name == HOST_SWITCH:
        return (
            NodePlan(node.name, node.cluster, action, "already", "attestation is Active", None, status)
            if explicit
            else None
        )
    if status not in ("Inactive", "Error") and not explicit:
        return None
    if facts.module_version is None:
        return NodePlan(
            node.name,
            node.cluster,
            action,
            "refused",
            "Az.StackHCI is not installed",
            fixes.steps(*fixes.node_enable_steps(node.cluster, node.name, None)),
            status,
        )
    if switch is not None and (switch.name != HOST_SWITCH or switch.switch_type != "Internal"):
        return NodePlan(
            node.name,
            node.cluster,
            action,
            "refused",
            f"the IMDS switch was altered ({switch.name}, {switch.switch_type}); enabling would not repair it",
            fixes.rebuild_switch(node.name),
            status,
        )
    blockers = _cluster_blockers(assessment)
    if blockers:
        return NodePlan(
            node.name,
            node.cluster,
            action,
            "refused",
            "every cluster node must be Up and reachable: " + "; ".join(text for text, _ in blockers),
            fixes.steps(*(fix for _, fix in blockers), _retry(action, node)),
            status,
        )
    return NodePlan(
        node.name,
        node.cluster,
        action,
        "change",
        f"attestation is {status}: Enable-AzStackHCIAttestation",
        None,
        status,
    )


def delegation_gap(node: InventoryNode) -> str | None:
    """Why a WinRM session to this node cannot hand its credentials on (None: it can)."""
    settings = node.winrm
    if settings.auth == "credssp":
        return None
    if settings.auth in ("kerberos", "negotiate") and settings.negotiate_delegate:
        return None
    detail = f"auth {settings.auth}"
    if settings.auth in ("kerberos", "negotiate"):
        detail += " without negotiate_delegate: true"
    return detail


def _needs_delegation(plan: NodePlan, node: InventoryNode) -> NodePlan:
    gap = delegation_gap(node)
    if gap is None:
        return plan
    return NodePlan(
        plan.node,
        plan.cluster,
        plan.action,
        "refused",
        f"Enable-AzStackHCIAttestation configures every node of {plan.cluster} from {plan.node} and opens a "
        f"session back to {plan.node}: from WinRM those are second hops, and {gap} cannot delegate credentials",
        f"in the inventory give cluster {plan.cluster} winrm auth: credssp (Enable-WSManCredSSP -Role Server on "
        "its nodes), or auth: kerberos with negotiate_delegate: true for an account trusted for delegation; "
        "see docs/host-enable.md",
        plan.before,
    )


def run_host_action(
    inventory: Inventory,
    resolver: CredentialResolver,
    *,
    action: HostAction,
    selection: Selection,
    what_if: bool = False,
    confirm: Callable[[Sequence[NodePlan]], bool] = lambda plans: True,
    audit: AuditLog | None = None,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
) -> tuple[list[NodeOutcome], bool]:
    """Plan every selected node, then (unless --what-if) confirm and act one node at a time, verified.

    Without --node, only the nodes that need it are planned; a node named exactly is planned (forced)
    whatever its state. `confirm` is asked whenever something would change.
    """
    if not (selection.clusters or selection.nodes or selection.sites or selection.tags or selection.all):
        raise UsageError(
            "say which nodes: --cluster NAME, --node NAME (repeatable), --site, --tag, or --all for every "
            "cluster in the inventory; nothing was changed"
        )
    clusters = selection.select_clusters(inventory, nothing_done="nothing was changed")
    wanted = {n.name.casefold() for n in selection.select_nodes(clusters, nothing_done="nothing was changed")}
    gathered, _ = gather_clusters(inventory, clusters, resolver, cancel=cancel)
    when = now or dt.datetime.now(dt.timezone.utc)
    plans = []
    for facts, cluster in zip(gathered, clusters, strict=True):
        assessment = assess_cluster(facts, [n.name for n in cluster.nodes], inventory.policy, when)
        for node in assessment.nodes:
            if node.name.casefold() not in wanted:
                continue
            plan = plan_node(node, assessment, action, explicit=selection.explicit_node(node.name))
            if plan is not None and plan.decision == "change" and action == "enable":
                plan = _needs_delegation(plan, inventory.node(plan.node))
            if plan is not None:
                plans.append(plan)
    changes = [p for p in plans if p.decision == "change"]
    passive = {"change": "planned", "already": "already", "refused": "refused"}
    if what_if or not changes:
        return [NodeOutcome(p, passive[p.decision]) for p in plans], False
    if not confirm(changes):
        return [NodeOutcome(p, passive[p.decision]) for p in plans], True
    if audit is None:
        raise ValueError("changes are sent only with an audit log (AuditLog.open)")
    conn_by_node = {
        c.node.name: c
        for c in connections([inventory.node(p.node) for p in changes], resolver, azure=inventory.azure)
    }
    outcomes = []
    # Enable acts on the whole cluster from one node: sent once, on the first node that needs it; the
    # cluster's other planned nodes are only re-read (with the first call's error, if any).
    sent_for_cluster: dict[str, str | None] = {}
    for plan in plans:
        if plan.decision != "change":
            outcomes.append(NodeOutcome(plan, passive[plan.decision]))
            continue
        outcomes.append(
            _apply_on_node(action, plan, conn_by_node[plan.node], audit, cancel, sent_for_cluster)
        )
    return outcomes, False


def _apply_on_node(
    action: HostAction,
    plan: NodePlan,
    conn: Connection,
    audit: AuditLog,
    cancel: threading.Event | None,
    sent_for_cluster: dict[str, str | None],
) -> NodeOutcome:
    """The node-level cmdlet, then a re-read to verify; written ahead to the audit log and after.

    Enable is sent once per cluster (`sent_for_cluster`: cluster -> the call's error); a later node of the
    same cluster is only re-read."""
    script = HOST_ATTESTATION_ENABLE if action == "enable" else HOST_SYNC
    ev = cancel or threading.Event()
    if action == "enable" and plan.cluster in sent_for_cluster:
        return _verify_node(action, plan, conn, ev, sent_for_cluster[plan.cluster])
    try:
        change = audit.begin(
            action=f"host-{action}",
            cluster=plan.cluster,
            node=plan.node,
            remote_user=conn.endpoint.account,
            call={"script": script.key, "parameters": {}},
            targets={plan.node: {"before": plan.before, "reason": plan.reason}},
        )
    except AuditError as exc:
        return NodeOutcome(plan, "failed", f"not sent: {exc}")
    with change:
        error = None
        try:
            document = run_script(conn.endpoint, script, None, cancel=ev, timeout_s=NODE_OPERATION_TIMEOUT_S)
            if not document.get("ok"):
                err = document.get("error") or {}
                error = f"{err.get('message', 'failed')} [{err.get('error_id', '')}]"
        except RemotingError as exc:
            error = f"{exc.kind}: {exc.detail}"
        if action == "enable":
            sent_for_cluster[plan.cluster] = error
        outcome = _verify_node(action, plan, conn, ev, error)
        change.finish(plan.node, result=outcome.result, error=outcome.error, after=outcome.after)
    return outcome


def _verify_node(
    action: HostAction, plan: NodePlan, conn: Connection, ev: threading.Event, error: str | None
) -> NodeOutcome:
    try:
        after = fetch_host_facts(conn, ev)
        status = after.attestation.status if after.attestation else "unknown"
        result = "changed" if status == "Active" else "failed"
        if result == "failed" and error is None:
            error = f"attestation is {status} after {action}"
        return NodeOutcome(plan, result, error, status)
    except (RemotingError, FactsError) as exc:
        return NodeOutcome(plan, "unverified", error or f"could not re-read the node: {exc}")


def host_report(
    action: HostAction,
    outcomes: Sequence[NodeOutcome],
    *,
    what_if: bool,
    declined: bool,
    run_info: Mapping[str, Any] | None = None,
    show_scripts: bool = False,
) -> Report:
    from hcibenefit.operations.benefits import describe_script_call

    script = HOST_ATTESTATION_ENABLE if action == "enable" else HOST_SYNC
    rows = [
        {
            "node": o.plan.node,
            "cluster": o.plan.cluster,
            "result": "would change" if what_if and o.result == "planned" else o.result,
            "before": o.plan.before,
            "after": o.after,
            "why": o.error or o.plan.reason,
        }
        for o in outcomes
    ]
    notes = []
    if not outcomes:
        notes.append("nothing to do: no selected node needs it (name one with --node to force it)")
    if declined:
        notes.append("not confirmed: nothing was changed")
    data = {
        **(run_info or {}),
        "action": f"host-{action}",
        "what_if": what_if,
        "declined": declined,
        "nodes": [o.to_dict() for o in outcomes],
        "calls": [
            {"node": o.plan.node, "script": script.key, "parameters": {}}
            for o in outcomes
            if o.plan.decision == "change"
        ],
    }
    table = Table(
        f"host {action}{' (what-if: nothing was sent)' if what_if else ''}",
        columns(
            ("cluster", "CLUSTER"),
            ("node", "NODE"),
            ("result", "RESULT"),
            ("before", "BEFORE"),
            ("after", "AFTER"),
            Column("why", "WHY", wrap=True),
        ),
        rows,
    )
    targets: dict[str, str] = {}
    for o in outcomes:
        if o.plan.decision != "change":
            continue
        if action == "enable":
            # Enable-AzStackHCIAttestation configures every node of the cluster from the node it runs on.
            targets.setdefault(o.plan.cluster, f"{o.plan.node} (configures every node of {o.plan.cluster})")
        else:
            targets[o.plan.node] = o.plan.node
    sent = Details(
        ("Would send" if what_if else "Sent")
        + (" (one call per cluster):" if action == "enable" else " (one node at a time):"),
        [describe_script_call(script, target, {}, show_scripts) for target in targets.values()],
    )
    left = Details(
        "What to do for the nodes left as they are:",
        [
            DetailItem(
                f"{o.plan.node} ({o.plan.cluster}): {o.error or o.plan.reason}", [f"fix: {o.plan.fix}"]
            )
            for o in outcomes
            if o.plan.fix and o.result in ("refused", "failed", "unverified")
        ],
    )
    return Report(data=data, tables=[table], notes=notes, details=[sent, left])
