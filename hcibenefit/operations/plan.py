"""Planning enable/disable of Azure Benefits per VM: pure decisions over gathered facts.

A plan says, for every VM asked about, what would be sent to which node and why, or why nothing
will be: already done, or refused with the reason and the fix. `--what-if` prints exactly this;
applying it sends exactly this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hcibenefit.checks.assess import Assessment, VMStatus
from hcibenefit.facts.host import HOST_SWITCH, HostFacts, VMFacts

Action = Literal["enable", "disable"]
Decision = Literal["change", "already", "refused"]
TransportChoice = Literal["auto", "V1", "V2"]

ADD_NIC = "add-guest-nic"
CONNECT_NIC = "connect-guest-nic"
ENABLE_GSI = "enable-guest-service-interface"
REMOVE_NIC = "remove-guest-nic"
DISABLE_GSI = "disable-guest-service-interface"
# Script parameter that carries the VM names for each step.
STEP_PARAMETER = {
    ADD_NIC: "NicVMName",
    CONNECT_NIC: "ReconnectVMName",
    ENABLE_GSI: "GsiVMName",
    REMOVE_NIC: "NicVMName",
    DISABLE_GSI: "GsiVMName",
}


@dataclass(frozen=True)
class VMPlan:
    vm: str
    cluster: str
    node: str
    action: Action
    decision: Decision
    steps: tuple[str, ...] = ()
    transport: str | None = None
    reason: str = ""
    fix: str | None = None
    before: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "cluster": self.cluster,
            "node": self.node,
            "action": self.action,
            "decision": self.decision,
            "steps": list(self.steps),
            "transport": self.transport,
            "reason": self.reason,
            "fix": self.fix,
            "before": self.before,
        }


def benefit_state(vm: VMFacts, host: HostFacts) -> dict[str, Any]:
    nic = vm.imds_nic
    return {
        "v1_nic": None if nic is None else {"switch": nic.switch_name, "connected": nic.connected},
        "v2_gsi": vm.gsi_enabled if host.supports_v2 else None,
        "state": vm.state,
        "generation": vm.generation,
    }


def _plan(
    status: VMStatus,
    action: Action,
    decision: Decision,
    transport: str | None,
    reason: str,
    *,
    steps: tuple[str, ...] = (),
    fix: str | None = None,
) -> VMPlan:
    vm = status.vm
    before = benefit_state(vm, status.host)
    return VMPlan(vm.name, vm.cluster, vm.node, action, decision, steps, transport, reason, fix, before)


def _refuse(
    status: VMStatus, action: Action, reason: str, fix: str | None, transport: str | None = None
) -> VMPlan:
    return _plan(status, action, "refused", transport, reason, fix=fix)


def _cluster_switch_gaps(assessment: Assessment, cluster: str) -> list[str]:
    """Nodes of the cluster where a V1 VM could not run: no switch, or not assessed."""
    gaps = []
    for node in assessment.nodes:
        if node.cluster != cluster:
            continue
        if node.facts is None:
            gaps.append(f"{node.name} (not reachable, switch unverified)")
        elif node.facts.switch is None or node.facts.switch.switch_type != "Internal":
            gaps.append(node.name)
    return gaps


def plan_enable(
    status: VMStatus, assessment: Assessment, *, transport: TransportChoice = "auto", force: bool = False
) -> VMPlan:
    vm, host, req = status.vm, status.host, status.requirement
    registration = host.registration.registration_status if host.registration else "unknown"
    if registration != "Registered":
        return _refuse(
            status, "enable", f"cluster registration is {registration}", "Register-AzStackHCI, then retry"
        )
    if req.needed is False and not force:
        return _refuse(status, "enable", f"policy: {req.reason}", "pass --force to enable it anyway")
    chosen = req.transport if transport == "auto" else transport
    if chosen is None:
        return _refuse(
            status,
            "enable",
            f"cannot choose V1 or V2: {req.reason}",
            "start the VM (or turn on data exchange), or pass --transport V1|V2",
        )
    if chosen == "V2" and not host.supports_v2:
        return _refuse(
            status,
            "enable",
            f"node {host.node} runs {host.release}: V2 needs 23H2 or later",
            "use --transport V1",
        )
    att = host.attestation.status if host.attestation else "unknown"
    if att != "Active":
        fix = (
            f"hcibenefit host sync --cluster {vm.cluster}"
            if att == "Expired"
            else f"hcibenefit host enable --cluster {vm.cluster} --node {host.node}"
        )
        return _refuse(status, "enable", f"owner node {host.node} attestation is {att}", fix, chosen)

    if chosen == "V2":
        if vm.gsi_enabled:
            return _plan(status, "enable", "already", "V2", "Guest Service Interface is on")
        return _plan(
            status, "enable", "change", "V2", "turn on the Guest Service Interface", steps=(ENABLE_GSI,)
        )

    nic = vm.imds_nic
    if nic is not None and nic.connected and nic.switch_name == HOST_SWITCH:
        return _plan(status, "enable", "already", "V1", "guest NIC present and connected")
    if host.supports_v2 and not host.legacy_os_support:
        return _refuse(
            status,
            "enable",
            f"node {host.node} has legacy OS support off: Add-AzStackHCIVMAttestation would do nothing",
            f"on {host.node}: Enable-AzStackHCIAttestation -Force (legacy OS support), then retry",
            "V1",
        )
    gaps = _cluster_switch_gaps(assessment, vm.cluster)
    if gaps:
        return _refuse(
            status,
            "enable",
            f"not every node of {vm.cluster} has {HOST_SWITCH}: {', '.join(gaps)}; the VM could not migrate there",
            f"hcibenefit host enable --cluster {vm.cluster} --node <node>, for each node listed",
            "V1",
        )
    if nic is not None:
        return _plan(
            status, "enable", "change", "V1", "connect the guest NIC to the IMDS switch", steps=(CONNECT_NIC,)
        )
    if host.module_version is None:
        return _refuse(
            status,
            "enable",
            f"Az.StackHCI is not installed on {host.node}",
            f"on {host.node}: Install-Module Az.StackHCI",
            "V1",
        )
    if vm.generation == 1 and vm.state != "Off":
        return _refuse(
            status,
            "enable",
            f"Generation 1 VM is {vm.state}: Hyper-V cannot add a network adapter while it runs",
            f"Stop-VM -Name {vm.name} on {host.node}, rerun, then start it",
            "V1",
        )
    return _plan(status, "enable", "change", "V1", "add the guest NIC on the IMDS switch", steps=(ADD_NIC,))


def plan_disable(status: VMStatus) -> VMPlan:
    vm, host = status.vm, status.host
    steps: list[str] = []
    if vm.imds_nic is not None:
        if host.module_version is None:
            return _refuse(
                status,
                "disable",
                f"Az.StackHCI is not installed on {host.node}",
                f"on {host.node}: Install-Module Az.StackHCI",
            )
        if vm.generation == 1 and vm.state != "Off":
            return _refuse(
                status,
                "disable",
                f"Generation 1 VM is {vm.state}: Hyper-V cannot remove a network adapter while it runs",
                f"Stop-VM -Name {vm.name} on {host.node}, rerun, then start it",
            )
        steps.append(REMOVE_NIC)
    if host.supports_v2 and vm.gsi_enabled:
        steps.append(DISABLE_GSI)
    if not steps:
        return _plan(status, "disable", "already", None, "no guest NIC and no Guest Service Interface")
    transport = "+".join(t for t, s in (("V1", REMOVE_NIC), ("V2", DISABLE_GSI)) if s in steps)
    reason = " and ".join(
        {REMOVE_NIC: "remove the guest NIC", DISABLE_GSI: "turn off the Guest Service Interface"}[s]
        for s in steps
    )
    return _plan(status, "disable", "change", transport, reason, steps=tuple(steps))


def script_parameters(plans: Sequence[VMPlan]) -> dict[str, list[str]]:
    """The parameters of the one mutating call for one node: VM names per step."""
    params: dict[str, list[str]] = {}
    for plan in plans:
        for step in plan.steps:
            params.setdefault(STEP_PARAMETER[step], []).append(plan.vm)
    return params


def verify(plan: VMPlan, vm: VMFacts | None, host: HostFacts | None) -> str | None:
    """None when the re-read facts show the plan took effect, else what is still wrong."""
    if vm is None or host is None:
        return "the VM is no longer on its node after the change"
    nic = vm.imds_nic
    if plan.action == "enable":
        if plan.transport == "V2":
            return None if vm.gsi_enabled else "Guest Service Interface is still off"
        if nic is None:
            return "the guest NIC is not there"
        if not nic.connected or nic.switch_name != HOST_SWITCH:
            return "the guest NIC is not connected to the IMDS switch"
        return None
    if REMOVE_NIC in plan.steps and nic is not None:
        return "the guest NIC is still there"
    if DISABLE_GSI in plan.steps and vm.gsi_enabled:
        return "Guest Service Interface is still on"
    return None
