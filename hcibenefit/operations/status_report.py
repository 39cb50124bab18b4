"""The report of `hcibenefit status`: a record per node and per VM (JSON), tables, and the findings
with their fixes. Imported while the hosts work (operations/status.py), not before the first request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hcibenefit.checks.assess import NodeStatus, VMStatus
from hcibenefit.checks.model import Finding
from hcibenefit.checks.unassessed import UnassessedVM
from hcibenefit.checks.verdicts import NOT_ASSESSED
from hcibenefit.facts.host import HOST_SWITCH
from hcibenefit.operations.status import StatusResult
from hcibenefit.report import Column, DetailItem, Details, Report, Table, columns


def _vm_where(item: VMStatus | UnassessedVM) -> tuple[str, str, str]:
    """(name, cluster, node) of an assessed VM or of one named on a node that was not reached."""
    if isinstance(item, UnassessedVM):
        return item.name, item.cluster, item.node
    return item.vm.name, item.vm.cluster, item.vm.node


def _titles(findings: Sequence[Finding]) -> str:
    worst = sorted(findings, key=lambda f: f.severity, reverse=True)
    return "; ".join(dict.fromkeys(f.check.title for f in worst))


def _reason(findings: Sequence[Finding]) -> str:
    worst = sorted(findings, key=lambda f: f.severity, reverse=True)
    return "; ".join(f"{f.check.title}: {f.detail}" for f in worst)


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
        # What Get-AzStackHCIVMAttestation would report, derived from the same facts (it always says
        # Connected for a VM it lists; host-facts no longer calls it: it is a second hop).
        "attestation_status": "Connected" if status.host.attestation_listing(vm) else None,
        "attestation_versions": list(status.host.attestation_listing(vm)),
        "findings": [f.id for f in status.findings],
    }


def unassessed_record(vm: UnassessedVM) -> dict[str, Any]:
    """A VM on a node that was not reached: what its cluster says (name, owner, role state), nothing more."""
    return {
        "name": vm.name,
        "cluster": vm.cluster,
        "node": vm.node,
        "verdict": NOT_ASSESSED,
        "reason": vm.reason,
        "id": None,
        "generation": None,
        "state": None,
        "os": None,
        "needs_benefits": None,
        "transport": None,
        "configured": [],
        "v1_nic": None,
        "v2_gsi": None,
        "kvp": None,
        "attestation_status": None,
        "attestation_versions": [],
        "findings": [],
        "role_state": vm.role_state,
        "named_by": vm.named_by,
    }


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[value]


def _switch_text(node: Mapping[str, Any]) -> str | None:
    switch = node["switch"]
    if switch is None:
        return "missing" if node["verdict"] not in ("unreachable", "skipped") else None
    text = f"renamed: {switch['name']}" if switch["name"] != HOST_SWITCH else "ok"
    if switch["type"] != "Internal":
        text += f" ({switch['type']})"
    addresses = node["host_vnic_addresses"]
    if text == "ok" and (addresses is None or "169.254.169.253" not in addresses):
        text = "vNIC lacks .253"
    return text


def _benefits_text(vm: Mapping[str, Any]) -> str:
    parts = []
    if vm["v1_nic"] is not None:
        on_switch = vm["v1_nic"]["connected"] and vm["v1_nic"]["switch"] == HOST_SWITCH
        parts.append("V1 NIC" if on_switch else "V1 NIC unplugged")
    if vm["v2_gsi"]:
        parts.append("V2 GSI")
    return " + ".join(parts) or "none"


def _needs_text(vm: Mapping[str, Any]) -> str:
    if vm["needs_benefits"] is None:
        return "?"
    if not vm["needs_benefits"]:
        return "no"
    return vm["transport"] or "yes"


NODE_COLUMNS = columns(
    ("cluster", "CLUSTER"),
    ("name", "NODE"),
    ("verdict", "VERDICT"),
    ("release", "RELEASE"),
    ("attestation", "ATTESTATION"),
    ("expires", "EXPIRES"),
    ("switch_text", "IMDS SWITCH"),
    Column("vnic", "HOST VNIC", wide=True),
    Column("legacy", "LEGACY OS", wide=True),
    Column("module_version", "AZ.STACKHCI", wide=True),
    Column("os_build", "BUILD", wide=True),
    Column("why", "WHY", wrap=True),
)
VM_COLUMNS = columns(
    Column("cluster", "CLUSTER", wide=True),
    ("node", "NODE"),
    ("name", "VM"),
    ("verdict", "VERDICT"),
    Column("generation", "GEN", wide=True),
    ("state", "STATE"),
    Column("os", "GUEST OS", wide=True),
    ("needs", "NEEDS"),
    ("benefits", "HAS"),
    Column("attestation_status", "ATTESTATION", wide=True),
    Column("why", "WHY", wrap=True),
)


def findings_details(findings: Sequence[Finding]) -> Details:
    """Every finding, worst first, with its detail and the command that fixes it."""
    ordered = sorted(findings, key=lambda f: (-f.severity, f.cluster, f.target))
    return Details(
        f"Findings ({len(ordered)}), worst first, each with its fix:",
        [
            DetailItem(
                f"{f.severity.label.upper()} {f.target} ({f.cluster}): {f.check.title}",
                [f.detail, f"fix: {f.remediation}"],
            )
            for f in ordered
        ],
    )


def status_report(result: StatusResult, run_info: Mapping[str, Any] | None = None) -> Report:
    node_statuses = result.nodes()
    nodes = [node_record(n) for n in node_statuses]
    assessed = [vm_record(v) for v in result.vms()]
    vms = [*assessed, *(unassessed_record(u) for u in result.unassessed_vms())]
    findings = result.findings()
    excluded = [
        dict(zip(("name", "cluster", "node"), _vm_where(v), strict=True)) | {"rule": rule}
        for v, rule in result.excluded
    ]
    data: dict[str, Any] = {
        **(run_info or {}),
        "selection": result.selection.to_dict(),
        "nodes": nodes,
        "vms": vms,
        "excluded": excluded,
        "not_assessed": list(result.not_assessed),
        "findings": [f.to_dict() for f in findings],
        "summary": summary(node_statuses, vms, findings, incomplete=result.incomplete),
    }

    # Table rows are built only when a table is rendered: a JSON run of 10,000 VMs never makes them.
    def node_rows() -> list[dict[str, Any]]:
        return [
            {
                **n,
                "expires": n["expiration"][:10] if n["expiration"] else None,
                "switch_text": _switch_text(n),
                "vnic": ", ".join(n["host_vnic_addresses"]) if n["host_vnic_addresses"] else None,
                "legacy": _yes_no(n["legacy_os_support"]) if n["legacy_os_support"] is not None else "n/a",
                "why": s.error or _titles(s.findings) or None,
            }
            for n, s in zip(nodes, node_statuses, strict=True)
        ]

    def vm_rows() -> list[dict[str, Any]]:
        rows = [
            {
                **v,
                "needs": _needs_text(v),
                "benefits": _benefits_text(v),
                # A healthy row needs no explanation; the JSON keeps the reason for every VM.
                "why": None if v["verdict"] in ("ok", "not-needed") else (_titles(s.findings) or v["reason"]),
            }
            for v, s in zip(assessed, result.vms(), strict=True)
        ]
        # Nothing about these VMs was read: every fact column says so.
        rows += [
            {**v, "needs": "?", "benefits": "?", "why": u.short_reason}
            for v, u in zip(vms[len(assessed) :], result.unassessed_vms(), strict=True)
        ]
        return rows

    empty_vms = "(none)"
    if result.selection.verdicts:
        empty_vms = f"(no VM with verdict {', '.join(result.selection.verdicts)})"
    tables = [
        Table("Nodes", NODE_COLUMNS, node_rows),
        Table("VMs", VM_COLUMNS, vm_rows, empty=empty_vms),
    ]
    counts = data["summary"]
    notes = [
        "VMs: "
        + (", ".join(f"{k} {v}" for k, v in counts["vm_verdicts"].items()) or "none")
        + " | nodes: "
        + ", ".join(f"{k} {v}" for k, v in counts["node_verdicts"].items())
    ]
    if excluded:
        rules = sorted({e["rule"] for e in excluded})
        notes.append(
            f"excluded by policy.exclude_globs ({', '.join(rules)}): {len(excluded)} VM(s), "
            "not checked; name one with --vm to see it"
        )
    notes += [
        f"not assessed: VM {item['vm']}: {item['reason']}" for item in result.not_assessed if "vm" in item
    ]
    return Report(data=data, tables=tables, notes=notes, details=[findings_details(findings)])


def summary(
    nodes: Sequence[NodeStatus],
    vms: Sequence[Mapping[str, Any]],
    findings: Sequence[Finding],
    *,
    incomplete: bool,
) -> dict[str, Any]:
    def count(values: Sequence[str]) -> dict[str, int]:
        result: dict[str, int] = {}
        for v in values:
            result[v] = result.get(v, 0) + 1
        return dict(sorted(result.items()))

    worst = max((f.severity for f in findings), default=None)
    return {
        "node_verdicts": count([n.verdict for n in nodes]),
        "vm_verdicts": count([v["verdict"] for v in vms]),
        "worst_severity": worst.label if worst is not None else None,
        "incomplete": incomplete,
    }
