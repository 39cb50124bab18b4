"""The exact commands that fix a finding, built in one place so every check, plan and refusal agrees.

A fix is text shown to a person, never sent anywhere: hcibenefit commands with their names quoted for a
POSIX shell, PowerShell commands with names as single-quoted literals, and "on NODE:" for what has to be
run on a node itself. When a fix cannot work yet, it starts with what to do first ("first ...; then ...").
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hcibenefit.facts.host import HostFacts, VMFacts

AZ_STACKHCI_MINIMUM = "2.3.0"


def sh(value: str) -> str:
    return shlex.quote(value)


def ps(value: str) -> str:
    """A PowerShell single-quoted string literal (quotes doubled), for display."""
    return "'" + value.replace("'", "''") + "'"


def hcibenefit(*words: str, **options: str | None) -> str:
    """`hcibenefit WORDS --option value ...` with values shell-quoted; options whose value is None skipped."""
    parts = ["hcibenefit", *words]
    for name, value in options.items():
        if value is not None:
            parts += [f"--{name.replace('_', '-')}", sh(value)]
    return " ".join(parts)


def host_sync(cluster: str, node: str) -> str:
    return hcibenefit("host", "sync", cluster=cluster, node=node)


def host_enable(cluster: str, node: str) -> str:
    return hcibenefit("host", "enable", cluster=cluster, node=node)


def enable_vm(vm: str, *, transport: str | None = None, force: bool = False) -> str:
    return hcibenefit("enable", vm=vm, transport=transport) + (" --force" if force else "")


def install_module(node: str) -> str:
    return f"on {node}: Install-Module -Name Az.StackHCI -MinimumVersion {AZ_STACKHCI_MINIMUM} -Force"


def first(prerequisite: str | None, then: str) -> str:
    """`then`, preceded by what has to happen before it can work."""
    return then if not prerequisite else f"first {prerequisite}; then {then}"


def select_vm(vm: str, vm_id: str | None = None) -> str:
    """The VM for a Hyper-V command: by id when known. -Name/-VMName take a wildcard pattern, so a VM named
    'avd-[ab]' or '*' would select others; without an id the name's wildcard characters are escaped."""
    if vm_id:
        return f"Get-VM -Id {vm_id}"
    escaped = "".join("`" + c if c in "*?[]`" else c for c in vm)
    return f"Get-VM -Name {ps(escaped)}"


def stop_start(vm: str, node: str, then: str, vm_id: str | None = None) -> str:
    """A change Hyper-V makes only while the VM is off: stop it, change, start it again."""
    select = select_vm(vm, vm_id)
    return f"on {node}: {select} | Stop-VM; then {then}; then on {node}: {select} | Start-VM"


def start_vm(vm: str, node: str, state: str, vm_id: str | None = None) -> str:
    """Bring a VM back to Running so its guest can be read: Resume-VM for Paused, Start-VM otherwise."""
    verb = "Resume-VM" if state == "Paused" else "Start-VM"
    return f"on {node}: {select_vm(vm, vm_id)} | {verb}"


def steps(*parts: str | None) -> str:
    """Steps in order: "first A; then B; then C" (just "A" for one)."""
    kept = [p for p in parts if p]
    if len(kept) <= 1:
        return kept[0] if kept else ""
    return "first " + "; then ".join(kept)


def node_enable_steps(cluster: str, node: str, module_version: str | None) -> list[str]:
    """What turns IMDS attestation on for a node: Enable-AzStackHCIAttestation needs Az.StackHCI."""
    return [*([install_module(node)] if module_version is None else []), host_enable(cluster, node)]


def node_serving_steps(host: HostFacts) -> list[str]:
    """What makes a node serve IMDS again: nothing when Active, sync when Expired, else enable."""
    status = host.attestation.status if host.attestation else "unknown"
    if status == "Active":
        return []
    if status == "Expired":
        return [host_sync(host.cluster, host.node)]
    return node_enable_steps(host.cluster, host.node, host.module_version)


def enable_fix(vm: VMFacts, host: HostFacts, transport: str | None) -> str:
    """The exact way to give this VM Azure Benefits, with what has to happen on its node first."""
    before = node_serving_steps(host)
    command = enable_vm(vm.name)
    if transport == "V1":
        if host.supports_v2 and not host.legacy_os_support:
            before.append(f"on {host.node}: Enable-AzStackHCIAttestation -Force  (legacy OS support, V1)")
        # The guest NIC is added with the Hyper-V cmdlets (no Az.StackHCI needed on the node).
        if vm.imds_nic is None and vm.generation == 1 and vm.state != "Off":
            return steps(*before, stop_start(vm.name, host.node, command, vm.id))
    return steps(*before, command)


def rebuild_switch(node: str) -> str:
    """An altered IMDS switch or host vNIC: Az.StackHCI rebuilds it from scratch (and re-adds guests)."""
    return (
        f"on {node}: Disable-AzStackHCIAttestation -RemoveVM -Force; "
        f"then on {node}: Enable-AzStackHCIAttestation -AddVM -Force"
    )


def start_cluster_node(name: str, state: str, on: str) -> str:
    verb = "Resume-ClusterNode" if state == "Paused" else "Start-ClusterNode"
    return f"on {on}: {verb} -Name {ps(name)}"
