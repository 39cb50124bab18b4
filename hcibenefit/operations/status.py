"""`hcibenefit status`: per cluster, the nodes and VMs with a one-word verdict each."""

from __future__ import annotations

import datetime as dt
import fnmatch
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hcibenefit.checks.assess import Assessment, NodeStatus, VMStatus, assess_cluster, merge
from hcibenefit.checks.model import Finding, Severity
from hcibenefit.inventory import Cluster, CredentialResolver, Inventory
from hcibenefit.operations.gather import gather_clusters
from hcibenefit.report import Report, Table, columns


@dataclass(frozen=True)
class StatusResult:
    assessment: Assessment
    vm_glob: str | None

    def vms(self) -> list[VMStatus]:
        if not self.vm_glob:
            return list(self.assessment.vms)
        pattern = self.vm_glob.casefold()
        return [v for v in self.assessment.vms if fnmatch.fnmatchcase(v.vm.name.casefold(), pattern)]

    def findings(self) -> list[Finding]:
        shown_vms = {v.vm.name for v in self.vms()}
        all_vm_names = {v.vm.name for v in self.assessment.vms}
        return [f for f in self.assessment.findings if f.target not in all_vm_names or f.target in shown_vms]


def select_clusters(inventory: Inventory, names: Sequence[str]) -> list[Cluster]:
    """The named clusters (all when none named); an unknown name is a usage error with close matches."""
    if not names:
        return list(inventory.clusters)
    return [inventory.cluster(name) for name in dict.fromkeys(names)]


def gather_status(
    inventory: Inventory,
    resolver: CredentialResolver,
    *,
    cluster_names: Sequence[str] = (),
    vm_glob: str | None = None,
    workers: int = 16,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
) -> StatusResult:
    clusters = select_clusters(inventory, cluster_names)
    gathered, _ = gather_clusters(inventory, clusters, resolver, workers=workers, cancel=cancel)
    when = now or dt.datetime.now(dt.timezone.utc)
    parts = [
        assess_cluster(facts, [n.name for n in cluster.nodes], inventory.policy, when)
        for facts, cluster in zip(gathered, clusters, strict=True)
    ]
    return StatusResult(merge(parts), vm_glob)


def _reason(findings: Sequence[Finding]) -> str:
    worst = sorted(findings, key=lambda f: f.severity, reverse=True)
    return "; ".join(f"{f.check.title}: {f.detail}" for f in worst[:2]) + (
        f" (+{len(worst) - 2} more)" if len(worst) > 2 else ""
    )


def node_record(node: NodeStatus) -> dict[str, Any]:
    facts = node.facts
    att = facts.attestation if facts else None
    switch = (facts.switch or facts.attestation_switch) if facts else None
    return {
        "name": node.name,
        "cluster": node.cluster,
        "verdict": node.verdict,
        "reason": node.error or _reason(node.findings),
        "release": facts.release if facts else None,
        "os_build": facts.os_build if facts else None,
        "registration": facts.registration.registration_status if facts and facts.registration else None,
        "attestation": att.status if att else None,
        "expiration": att.expiration.isoformat() if att and att.expiration else None,
        "switch": None
        if switch is None
        else {"name": switch.name, "type": switch.switch_type, "id": switch.id},
        "host_vnic_addresses": list(facts.host_vnic_addresses)
        if facts and facts.host_vnic_addresses is not None
        else None,
        "legacy_os_support": (facts.legacy_os_support if facts.supports_v2 else None) if facts else None,
        "module_version": facts.module_version if facts else None,
        "vm_count": len(facts.vms) if facts else None,
        "findings": [f.id for f in node.findings],
    }


def vm_record(status: VMStatus) -> dict[str, Any]:
    vm, req = status.vm, status.requirement
    nic = vm.imds_nic
    return {
        "name": vm.name,
        "cluster": vm.cluster,
        "node": vm.node,
        "verdict": status.verdict,
        "reason": _reason(status.findings) or req.reason,
        "id": vm.id,
        "generation": vm.generation,
        "state": vm.state,
        "os": vm.os_name,
        "needs_benefits": req.needed,
        "transport": req.transport,
        "configured": list(status.configured_transports),
        "v1_nic": None if nic is None else {"switch": nic.switch_name, "connected": nic.connected},
        "v2_gsi": vm.gsi_enabled if status.host.supports_v2 else None,
        "kvp": vm.kvp_enabled,
        "attestation_status": vm.attestation.status if vm.attestation else None,
        "findings": [f.id for f in status.findings],
    }


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[value]


def status_report(result: StatusResult) -> Report:
    nodes = [node_record(n) for n in result.assessment.nodes]
    vms = [vm_record(v) for v in result.vms()]
    findings = result.findings()
    data: dict[str, Any] = {
        "nodes": nodes,
        "vms": vms,
        "findings": [f.to_dict() for f in findings],
        "summary": summary(result.assessment, vms),
    }
    node_rows = [
        {
            **n,
            "expires": n["expiration"][:10] if n["expiration"] else None,
            "switch_text": (
                n["switch"]["name"]
                if n["switch"]["name"] == "AZSHCI_HOST-IMDS_DO_NOT_MODIFY"
                else f"renamed: {n['switch']['name']}"
            )
            + ("" if n["switch"]["type"] == "Internal" else f" ({n['switch']['type']})")
            if n["switch"]
            else ("missing" if n["verdict"] != "unreachable" else None),
            "vnic": ", ".join(n["host_vnic_addresses"]) if n["host_vnic_addresses"] else None,
            "legacy": _yes_no(n["legacy_os_support"]) if n["legacy_os_support"] is not None else "n/a",
        }
        for n in nodes
    ]
    vm_rows = [
        {
            **v,
            "needs": _yes_no(v["needs_benefits"]),
            "gen": v["generation"],
            "nic": None
            if v["v1_nic"] is None
            else ("connected" if v["v1_nic"]["connected"] else "disconnected"),
            "gsi": "n/a" if v["v2_gsi"] is None else _yes_no(v["v2_gsi"]),
            "want": v["transport"],
            # A healthy row needs no explanation; the JSON keeps the reason for every VM.
            "reason": None if v["verdict"] in ("ok", "not-needed") else v["reason"],
        }
        for v in vms
    ]
    tables = [
        Table(
            "Nodes",
            columns(
                ("cluster", "CLUSTER"),
                ("name", "NODE"),
                ("verdict", "VERDICT"),
                ("release", "RELEASE"),
                ("attestation", "ATTESTATION"),
                ("expires", "EXPIRES"),
                ("switch_text", "SWITCH"),
                ("vnic", "HOST VNIC"),
                ("legacy", "LEGACY OS"),
                ("reason", "WHY"),
            ),
            node_rows,
        ),
        Table(
            "VMs",
            columns(
                ("cluster", "CLUSTER"),
                ("node", "NODE"),
                ("name", "VM"),
                ("verdict", "VERDICT"),
                ("gen", "GEN"),
                ("state", "STATE"),
                ("os", "GUEST OS"),
                ("needs", "NEEDS"),
                ("want", "VIA"),
                ("nic", "V1 NIC"),
                ("gsi", "V2 GSI"),
                ("attestation_status", "ATTESTATION"),
                ("reason", "WHY"),
            ),
            vm_rows,
        ),
    ]
    counts = data["summary"]
    notes = [
        "VMs: "
        + ", ".join(f"{k} {v}" for k, v in counts["vm_verdicts"].items())
        + " | nodes: "
        + ", ".join(f"{k} {v}" for k, v in counts["node_verdicts"].items())
    ]
    notes += [f"! {n['name']}: {n['reason']}" for n in nodes if n["verdict"] == "unreachable"]
    return Report(data=data, tables=tables, notes=notes)


def summary(assessment: Assessment, vms: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def count(values: Sequence[str]) -> dict[str, int]:
        result: dict[str, int] = {}
        for v in values:
            result[v] = result.get(v, 0) + 1
        return dict(sorted(result.items()))

    worst = assessment.worst()
    return {
        "node_verdicts": count([n.verdict for n in assessment.nodes]),
        "vm_verdicts": count([v["verdict"] for v in vms]),
        "worst_severity": worst.label if worst is not None else None,
        "incomplete": assessment.incomplete,
    }


def exit_findings(findings: Sequence[Finding], fail_on: Severity | None) -> bool:
    return fail_on is not None and any(f.severity >= fail_on for f in findings)
