"""Planning enable/disable of Azure Benefits per VM: pure decisions over gathered facts.

A plan says, for every VM asked about, what would be sent to which node and why, or why nothing
will be: already done, or refused with the reason and the fix. `--what-if` prints exactly this;
applying it sends exactly this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hcibenefit.checks import fixes
from hcibenefit.checks.assess import Assessment, NodeStatus, VMStatus
from hcibenefit.facts.host import HOST_SWITCH, HostFacts, VMFacts

Action = Literal["enable", "disable"]
Decision = Literal["change", "already", "refused", "skipped"]
"""skipped: reached through a glob or --all but not eligible (listed with why, not touched)."""
TransportChoice = Literal["auto", "V1", "V2"]

ADD_NIC = "add-guest-nic"
CONNECT_NIC = "connect-guest-nic"
ENABLE_GSI = "enable-guest-service-interface"
REMOVE_NIC = "remove-guest-nic"
DISABLE_GSI = "disable-guest-service-interface"
# Script parameter that carries the VMs for each step, by id: Hyper-V treats a VM name as a wildcard
# pattern, so a VM named "avd-[ab]" or "*" passed by name could select other VMs.
STEP_PARAMETER = {
    ADD_NIC: "NicVMId",
    CONNECT_NIC: "ReconnectVMId",
    ENABLE_GSI: "GsiVMId",
    REMOVE_NIC: "NicVMId",
    DISABLE_GSI: "GsiVMId",
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
    warning: str | None = None
    """What the change costs (disable: the guest loses activation); asked about even for one VM."""
    vm_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "vm_id": self.vm_id,
            "cluster": self.cluster,
            "node": self.node,
            "action": self.action,
            "decision": self.decision,
            "steps": list(self.steps),
            "transport": self.transport,
            "reason": self.reason,
            "fix": self.fix,
            "before": self.before,
            "warning": self.warning,
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
    warning: str | None = None,
) -> VMPlan:
    vm = status.vm
    before = benefit_state(vm, status.host)
    return VMPlan(
        vm.name, vm.cluster, vm.node, action, decision, steps, transport, reason, fix, before, warning, vm.id
    )


def _refuse(
    status: VMStatus, action: Action, reason: str, fix: str | None, transport: str | None = None
) -> VMPlan:
    return _plan(status, action, "refused", transport, reason, fix=fix)


def _cluster_switch_gaps(assessment: Assessment, cluster: str) -> list[NodeStatus]:
    """Nodes of the cluster where a V1 VM could not run: no usable switch, or not assessed."""
    return [
        node
        for node in assessment.nodes
        if node.cluster == cluster
        and (node.facts is None or node.facts.switch is None or node.facts.switch.switch_type != "Internal")
    ]


def _gap_fix(node: NodeStatus) -> str:
    if node.facts is None:
        return f"make {node.name} reachable (it is {node.verdict}: {node.error})"
    return fixes.steps(*fixes.node_enable_steps(node.cluster, node.name, node.facts.module_version))


def plan_excluded(status: VMStatus, action: Action) -> VMPlan:
    """A VM named exactly although policy.exclude_globs excludes it: never touched."""
    return _refuse(
        status,
        action,
        status.requirement.reason,
        "remove the rule from policy.exclude_globs in the inventory if hcibenefit should manage this VM",
    )


def plan_enable(
    status: VMStatus, assessment: Assessment, *, transport: TransportChoice = "auto", force: bool = False
) -> VMPlan:
    vm, host, req = status.vm, status.host, status.requirement
    registration = host.registration.registration_status if host.registration else "unknown"
    if registration != "Registered":
        return _refuse(
            status,
            "enable",
            f"cluster registration is {registration}",
            f"register {vm.cluster} with Azure (Register-AzStackHCI on one of its nodes); then "
            + fixes.enable_vm(vm.name),
        )
    if req.needed is False and not force:
        return _refuse(
            status, "enable", f"policy: {req.reason}", fixes.enable_vm(vm.name, force=True) + "  (if wanted)"
        )
    chosen = req.transport if transport == "auto" else transport
    if chosen is None:
        if not vm.kvp_enabled:
            first = f"on {host.node}: Get-VM -Id {vm.id} | Enable-VMIntegrationService -Name 'Key-Value Pair Exchange'"
        else:
            first = fixes.start_vm(vm.name, host.node, vm.state, vm.id)
        return _refuse(
            status,
            "enable",
            f"cannot choose V1 or V2: {req.reason}",
            f"{fixes.steps(first, fixes.enable_vm(vm.name))}; or choose: {fixes.enable_vm(vm.name, transport='V2')}",
        )
    if chosen == "V2" and not host.supports_v2:
        return _refuse(
            status,
            "enable",
            f"node {host.node} runs {host.release}: V2 needs 23H2 or later",
            fixes.enable_vm(vm.name, transport="V1"),
        )
    att = host.attestation.status if host.attestation else "unknown"
    if att != "Active":
        return _refuse(
            status,
            "enable",
            f"owner node {host.node} attestation is {att}",
            fixes.enable_fix(vm, host, chosen),
            chosen,
        )

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
            f"node {host.node} has legacy OS support off: a guest NIC would not be served",
            fixes.enable_fix(vm, host, "V1"),
            "V1",
        )
    gaps = _cluster_switch_gaps(assessment, vm.cluster)
    if gaps:
        return _refuse(
            status,
            "enable",
            f"not every node of {vm.cluster} has {HOST_SWITCH}: {', '.join(n.name for n in gaps)}; "
            "the VM could not migrate there",
            fixes.steps(*[_gap_fix(n) for n in gaps], fixes.enable_vm(vm.name)),
            "V1",
        )
    if nic is not None:
        return _plan(
            status, "enable", "change", "V1", "connect the guest NIC to the IMDS switch", steps=(CONNECT_NIC,)
        )
    if vm.generation == 1 and vm.state != "Off":
        return _refuse(
            status,
            "enable",
            f"Generation 1 VM is {vm.state}: Hyper-V cannot add a network adapter while it runs",
            fixes.enable_fix(vm, host, "V1"),
            "V1",
        )
    return _plan(status, "enable", "change", "V1", "add the guest NIC on the IMDS switch", steps=(ADD_NIC,))


def plan_disable(status: VMStatus) -> VMPlan:
    vm, host = status.vm, status.host
    steps: list[str] = []
    disable = fixes.hcibenefit("disable", vm=vm.name)
    if vm.imds_nic is not None:
        if vm.generation == 1 and vm.state != "Off":
            return _refuse(
                status,
                "disable",
                f"Generation 1 VM is {vm.state}: Hyper-V cannot remove a network adapter while it runs",
                fixes.stop_start(vm.name, host.node, disable, vm.id),
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
    warning = None
    if status.requirement.needed is not False:
        why = status.requirement.reason if status.requirement.needed else "its guest OS is unknown"
        warning = f"{vm.name}: its guest will lose Windows activation ({why})"
    return _plan(status, "disable", "change", transport, reason, steps=tuple(steps), warning=warning)


def script_parameters(plans: Sequence[VMPlan]) -> dict[str, list[str]]:
    """The parameters of the one mutating call for one node: VM names per step."""
    params: dict[str, list[str]] = {}
    for plan in plans:
        for step in plan.steps:
            params.setdefault(STEP_PARAMETER[step], []).append(plan.vm_id)
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
