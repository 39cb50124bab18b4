"""From gathered facts to verdicts: run every check and sum each node and VM up in one word.

Pure: takes facts (and which nodes could not be reached), returns values. The one-word verdicts
follow from the findings, so a verdict can always be explained by the findings behind it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hcibenefit.checks.eligibility import Requirement, requirement
from hcibenefit.checks.model import ClusterView, Finding, Severity
from hcibenefit.checks.registry import VMContext, cluster_findings, vm_findings
from hcibenefit.facts.host import HostFacts, VMFacts
from hcibenefit.inventory.model import Policy

VM_VERDICT_ORDER = ("broken", "missing", "unknown")
NODE_VERDICT_BY_CHECK = {
    "node.not-registered": "unregistered",
    "node.attestation-expired": "expired",
    "node.attestation-inactive": "inactive",
    "node.attestation-error": "error",
    "node.switch-missing": "broken",
    "node.switch-altered": "broken",
    "node.host-vnic-address": "broken",
}
NODE_VERDICT_ORDER = ("unregistered", "error", "expired", "inactive", "broken")


@dataclass(frozen=True)
class ClusterFacts:
    """What gathering produced for one cluster."""

    name: str
    hosts: tuple[HostFacts, ...]
    unreachable: Mapping[str, str]


@dataclass(frozen=True)
class NodeStatus:
    name: str
    cluster: str
    facts: HostFacts | None
    error: str | None
    findings: tuple[Finding, ...]
    verdict: str


@dataclass(frozen=True)
class VMStatus:
    vm: VMFacts
    host: HostFacts
    requirement: Requirement
    findings: tuple[Finding, ...]
    verdict: str

    @property
    def configured_transports(self) -> tuple[str, ...]:
        found = []
        if self.vm.imds_nic is not None:
            found.append("V1")
        if self.host.supports_v2 and self.vm.gsi_enabled:
            found.append("V2")
        return tuple(found)


@dataclass(frozen=True)
class Assessment:
    nodes: tuple[NodeStatus, ...]
    vms: tuple[VMStatus, ...]
    findings: tuple[Finding, ...]

    @property
    def incomplete(self) -> bool:
        return any(n.facts is None for n in self.nodes)

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)


def _vm_verdict(findings: Sequence[Finding], req: Requirement) -> str:
    implied = {f.check.verdict for f in findings if f.check.verdict}
    for verdict in VM_VERDICT_ORDER:
        if verdict in implied:
            return verdict
    if req.needed is False:
        return "not-needed"
    if req.needed is None:
        # The guest OS cannot be read (VM off, saved, paused; data exchange off): whether it needs
        # benefits, and so whether what it has is right, cannot be decided.
        return "unknown"
    return "ok"


def _node_verdict(findings: Sequence[Finding]) -> str:
    implied = {NODE_VERDICT_BY_CHECK.get(f.check.id) for f in findings}
    for verdict in NODE_VERDICT_ORDER:
        if verdict in implied:
            return verdict
    if any(f.severity >= Severity.MEDIUM for f in findings):
        return "warning"
    return "ok"


def assess_cluster(
    cluster: ClusterFacts, node_order: Sequence[str], policy: Policy, now: dt.datetime
) -> Assessment:
    view = ClusterView(
        name=cluster.name,
        hosts=cluster.hosts,
        unreachable=cluster.unreachable,
        now=now,
        expiry_warning_days=policy.expiry_warning_days,
        policy=policy,
    )
    findings = list(cluster_findings(view))
    by_host = {h.node: h for h in cluster.hosts}
    nodes: list[NodeStatus] = []
    for name in node_order:
        mine = tuple(f for f in findings if f.target.lower() == name.lower())
        if name in cluster.unreachable:
            why = cluster.unreachable[name]
            verdict = "skipped" if why.startswith("skipped:") else "unreachable"
            nodes.append(NodeStatus(name, cluster.name, None, why, mine, verdict))
        else:
            nodes.append(NodeStatus(name, cluster.name, by_host.get(name), None, mine, _node_verdict(mine)))
    vms: list[VMStatus] = []
    for host in cluster.hosts:
        for vm in host.vms:
            rule = policy.exclusion(vm.name)
            if rule is not None:
                # policy.exclude_globs: never checked, never reported as a finding.
                excluded = Requirement(False, None, f"excluded by policy.exclude_globs {rule!r}")
                vms.append(VMStatus(vm, host, excluded, (), "excluded"))
                continue
            req = requirement(vm, host, policy)
            vm_found = tuple(vm_findings(VMContext(vm, host, view, req)))
            findings.extend(vm_found)
            vms.append(VMStatus(vm, host, req, vm_found, _vm_verdict(vm_found, req)))
    return Assessment(tuple(nodes), tuple(vms), tuple(findings))


def merge(assessments: Sequence[Assessment]) -> Assessment:
    return Assessment(
        nodes=tuple(n for a in assessments for n in a.nodes),
        vms=tuple(v for a in assessments for v in a.vms),
        findings=tuple(f for a in assessments for f in a.findings),
    )
