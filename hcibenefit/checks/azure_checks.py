"""Reconciliation: where what Azure believes and what the hosts report disagree (scope azure).

Each check reads an ``azure.join.AzureView`` and speaks about one inventory cluster at a time. Azure
is read, never changed: where a finding tempts a clean-up in Azure, the fix says what to verify
first and which command would do harm.

Thresholds: a cluster must sync with Azure once in 30 days or it falls out of policy (Azure Local
FAQ); sync runs every 12 hours, so two days without one already means syncs are failing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from hcibenefit.azure.ids import first_label
from hcibenefit.azure.join import AzureView, ClusterPair, VMPair
from hcibenefit.checks.model import CheckMeta, Finding, Severity
from hcibenefit.checks.registry import azure_check
from hcibenefit.facts.guest import LICENSED, license_status_name

POLICY_DAYS = 30
LATE_DAYS = 2
DOC_VERIFICATION = "https://learn.microsoft.com/azure/azure-local/deploy/azure-verification"
DOC_FAQ = "https://learn.microsoft.com/azure/azure-local/faq"
DOC_VM_ACTIVATION = "https://learn.microsoft.com/azure/azure-local/manage/vm-activate"
DOC_DISCONNECT = "https://learn.microsoft.com/azure/azure-arc/servers/azcmagent-disconnect"
DOC_AVD = "https://learn.microsoft.com/azure/virtual-desktop/azure-local-overview"
DOC_BRIDGE = "https://learn.microsoft.com/azure/azure-local/manage/azure-arc-vm-management-prerequisites"
# Hyper-V's state → the VM instance power states that agree with it.
POWER_AGREES = {
    "Running": {"Running"},
    "Off": {"Stopped", "Deallocated"},
    "Saved": {"Saved"},
    "Paused": {"Paused"},
}
VM_CHECKS = frozenset(
    {
        "azure.arc-vm-orphaned",
        "azure.vm-not-projected",
        "azure.vm-power-state-differs",
        "azure.vm-host-node-differs",
        "azure.vm-license-differs",
        "azure.avd-host-without-benefits",
    }
)
"""Checks whose target is a VM (so a VM selection narrows them)."""
NODE_CHECKS = frozenset(
    {
        "azure.imds-enabled-node-not-active",
        "azure.node-not-in-azure",
        "azure.node-only-in-azure",
        "azure.wss-not-applied",
        "azure.node-arc-disconnected",
    }
)
"""Checks whose target is a node."""


def _meta(id: str, title: str, severity: Severity, remediation: str, doc_url: str = "") -> CheckMeta:
    return CheckMeta(id, title, severity, "azure", remediation, doc_url=doc_url)


NOT_IN_AZURE = _meta(
    "azure.cluster-not-in-azure",
    "Cluster has no resource in Azure",
    Severity.HIGH,
    "{fix}",
    DOC_FAQ,
)
UNMANAGED = _meta(
    "azure.cluster-unmanaged",
    "Azure cluster not in the inventory",
    Severity.LOW,
    "Add {cluster} to the inventory (clusters: - name: {cluster}, with azure: {{subscription_id: "
    "{subscription}, resource_group: {resource_group}}}) so that its hosts are checked too",
    DOC_FAQ,
)
IMDS_DISABLED = _meta(
    "azure.imds-disabled",
    "Azure VM verification off on a 23H2 or later cluster",
    Severity.MEDIUM,
    "hcibenefit host enable --cluster {cluster}  (Azure shows Enabled after the next sync; if every node is "
    "already Active: hcibenefit host sync --cluster {cluster})",
    DOC_VERIFICATION,
)
NODE_NOT_ACTIVE = _meta(
    "azure.imds-enabled-node-not-active",
    "Azure says IMDS attestation is Enabled, the node disagrees",
    Severity.HIGH,
    "hcibenefit host {action} --cluster {cluster} --node {node}  (Azure's Enabled is the cluster's last sync, "
    "not this node's state)",
    DOC_VERIFICATION,
)
OUT_OF_POLICY = _meta(
    "azure.sync-out-of-policy",
    "No sync with Azure for more than 30 days: out of policy",
    Severity.CRITICAL,
    "hcibenefit host sync --cluster {cluster}  (Sync-AzureStackHCI); if it fails, fix the nodes' outbound "
    "connectivity to Azure first (Test-AzureLocalConnectivity)",
    DOC_FAQ,
)
SYNC_EXPIRING = _meta(
    "azure.sync-near-limit",
    "Cluster falls out of policy soon: no sync with Azure",
    Severity.HIGH,
    "hcibenefit host sync --cluster {cluster}  (Sync-AzureStackHCI); it must succeed within {left} day(s)",
    DOC_FAQ,
)
SYNC_LATE = _meta(
    "azure.sync-late",
    "Cluster has not synced with Azure for days (sync runs every 12 hours)",
    Severity.MEDIUM,
    "hcibenefit host sync --cluster {cluster}  (Sync-AzureStackHCI); if it fails, check the nodes' outbound "
    "connectivity to Azure (Test-AzureLocalConnectivity)",
    DOC_FAQ,
)
NOT_CONNECTED = _meta(
    "azure.cluster-not-connected",
    "Azure does not see the cluster as connected",
    Severity.MEDIUM,
    "On a node of {cluster}: Get-AzureStackHCI (ConnectionStatus, LastConnected); then "
    "hcibenefit host sync --cluster {cluster}",
    DOC_FAQ,
)
NODE_NOT_IN_AZURE = _meta(
    "azure.node-not-in-azure",
    "Cluster node missing from Azure's node list",
    Severity.MEDIUM,
    "hcibenefit host sync --cluster {cluster}  (a node added since the last sync appears after it); with legacy "
    "OS support, also hcibenefit host enable --cluster {cluster} --node {node}",
    DOC_VERIFICATION,
)
NODE_ONLY_IN_AZURE = _meta(
    "azure.node-only-in-azure",
    "Azure lists a node the cluster does not have",
    Severity.MEDIUM,
    "hcibenefit host sync --cluster {cluster}  (Azure keeps a removed node until the next sync); the removed "
    "server keeps the AZSHCI_HOST-IMDS_DO_NOT_MODIFY switch until Disable-AzStackHCIAttestation -RemoveVM runs on it",
    DOC_VERIFICATION,
)
WSS_NOT_APPLIED = _meta(
    "azure.wss-not-applied",
    "Windows Server subscription not applied on a node",
    Severity.MEDIUM,
    "hcibenefit host sync --cluster {cluster}  (the subscription applies at the node's next sync); then on "
    "{node}: Get-AzureStackHCISubscriptionStatus",
    DOC_VM_ACTIVATION,
)
NODE_ARC_DISCONNECTED = _meta(
    "azure.node-arc-disconnected",
    "Node's Arc machine is not connected",
    Severity.MEDIUM,
    "On {node}: azcmagent show, then azcmagent check (the Connected Machine agent and its endpoints)",
    "https://learn.microsoft.com/azure/azure-arc/servers/troubleshoot-agent-onboard",
)
ORPHANED = _meta(
    "azure.arc-vm-orphaned",
    "Arc VM in Azure has no Hyper-V VM",
    Severity.MEDIUM,
    "Confirm {vm} exists on no node (Get-VM -Name {vm} on each node of {cluster}); then remove only the Azure "
    "resource: az stack-hci-vm delete --name {vm} --resource-group {resource_group}. hcibenefit never deletes "
    "it. Never run azcmagent disconnect without --force-local-only for an Azure Local VM: it deletes the VM "
    "on-premises as well",
    DOC_DISCONNECT,
)
NOT_PROJECTED = _meta(
    "azure.vm-not-projected",
    "Hyper-V VM has no Arc VM in Azure",
    Severity.LOW,
    "Created outside Azure (Hyper-V Manager, WAC) or left behind when Azure deleted it: manage it from Azure "
    "by re-creating it through Azure Local VM management, or accept {vm} as unmanaged",
    DOC_BRIDGE,
)
POWER_DIFFERS = _meta(
    "azure.vm-power-state-differs",
    "Azure's power state disagrees with Hyper-V",
    Severity.INFO,
    "Get-VM -Name {vm} on {node} is the truth; Azure catches up when the resource bridge syncs (a lasting "
    "difference: check the bridge and the VM's guest agent)",
    DOC_FAQ,
)
HOST_DIFFERS = _meta(
    "azure.vm-host-node-differs",
    "Azure's host node disagrees with the VM's owner node",
    Severity.INFO,
    "Get-ClusterGroup -Name {vm} shows the owner ({node}); Azure catches up when the resource bridge syncs",
    DOC_FAQ,
)
LICENSE_DIFFERS = _meta(
    "azure.vm-license-differs",
    "Arc licenseStatus disagrees with the guest's own activation",
    Severity.MEDIUM,
    "hcibenefit guest check --vm {vm}  (the guest's own answer is the truth; the Arc agent refreshes licenseProfile "
    "on its next report); if the guest is not activated: hcibenefit guest kick --vm {vm}",
    DOC_VM_ACTIVATION,
)
BRIDGE_DOWN = _meta(
    "azure.resource-bridge-not-running",
    "Arc resource bridge is not Running",
    Severity.HIGH,
    "az arcappliance show --resource-group {resource_group} --name {bridge}  (Azure Local VM management: create, "
    "start, stop and AVD deployment from Azure, needs it Running)",
    DOC_BRIDGE,
)
AVD_WITHOUT_BENEFITS = _meta(
    "azure.avd-host-without-benefits",
    "AVD session host on a VM without Azure Benefits or activation",
    Severity.HIGH,
    "hcibenefit status --vm {vm} says what is missing; hcibenefit enable --vm {vm} adds Azure Benefits, "
    "hcibenefit guest kick --vm {vm} activates the guest",
    DOC_AVD,
)


def _values(pair: ClusterPair, **extra: str) -> dict[str, str]:
    azure = pair.azure
    return {
        "cluster": pair.name,
        "subscription": azure.subscription_id if azure else "",
        "resource_group": azure.resource_group if azure else "",
        **extra,
    }


def _finding(meta: CheckMeta, pair: ClusterPair, target: str, detail: str, **values: str) -> Finding:
    return Finding(meta, pair.name, target, detail, _values(pair, **values))


def _has_azure(pair: ClusterPair) -> str | None:
    if pair.azure is None:
        return (
            "the cluster has no Azure resource" if pair.azure_known else "its subscription could not be read"
        )
    return None


def _days_since_sync(pair: ClusterPair, view: AzureView) -> float | None:
    if pair.azure is None or pair.azure.last_sync is None:
        return None
    return (view.now - pair.azure.last_sync).total_seconds() / 86400


# --- clusters ---------------------------------------------------------------------------------


@azure_check(
    NOT_IN_AZURE,
    applies=lambda p: None if p.azure is None else "the cluster has an Azure resource",
    needs=("azure",),
)
def cluster_not_in_azure(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        if pair.azure is not None or not pair.azure_known:
            continue
        statuses = sorted({h.registration.registration_status for h in pair.hosts if h.registration})
        if pair.reported_ids:
            detail = f"the nodes report {pair.reported_ids[0]}, which Azure does not have"
            fix = (
                f"Add the subscription of {pair.reported_ids[0]} to azure.subscriptions if it is outside the scope; "
                "if the resource was deleted, repair the registration on a node: Register-AzStackHCI "
                "-RepairRegistration"
            )
        elif statuses and "Registered" not in statuses:
            detail = (
                f"no Azure Local cluster resource, and the nodes say RegistrationStatus {', '.join(statuses)}"
            )
            fix = f"Register {pair.name} with Azure: Register-AzStackHCI (the Azure Local deployment does it on 23H2 and later)"
        else:
            detail = f"no Azure Local cluster resource found by {pair.matched_by}"
            fix = (
                f"Name its resource in the inventory (clusters: - name: {pair.name}, azure: subscription_id, "
                "resource_group, resource_name), or register the cluster (Register-AzStackHCI)"
            )
        yield _finding(meta, pair, pair.name, detail, fix=fix)


# Needs "azure": in a subscription that could not be read, whether the cluster is the Azure resource it
# seems to be, and what else is there, cannot be told (a PASS would claim it).
@azure_check(UNMANAGED, needs=("azure",))
def cluster_unmanaged(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for cluster in view.unmanaged:
        yield Finding(
            meta,
            cluster.name,
            cluster.name,
            f"{cluster.id}: {cluster.status or 'no status'}, not in the inventory",
            {
                "cluster": cluster.name,
                "subscription": cluster.subscription_id,
                "resource_group": cluster.resource_group,
            },
        )


def _is_23h2_or_later(pair: ClusterPair) -> bool | None:
    known = pair.azure.is_23h2_or_later if pair.azure else None
    if known is None and pair.hosts:
        return any(h.supports_v2 for h in pair.hosts)
    return known


def _not_23h2(pair: ClusterPair) -> str | None:
    missing = _has_azure(pair)
    if missing:
        return missing
    return None if _is_23h2_or_later(pair) else "before 23H2 IMDS attestation is opt-in"


def _node_states(pair: ClusterPair) -> str:
    states = [f"{h.node} {h.attestation.status}" for h in pair.hosts if h.attestation]
    return ", ".join(states) or "no node answered"


@azure_check(IMDS_DISABLED, applies=_not_23h2, needs=("azure",))
def imds_disabled(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        if pair.azure is None or not _is_23h2_or_later(pair):
            continue
        if (pair.azure.imds_attestation or "").casefold() == "disabled":
            version = pair.azure.cluster_version or "23H2+"
            yield _finding(
                meta,
                pair,
                pair.name,
                f"Azure says imdsAttestation Disabled on a {version} cluster (on by default since 23H2); nodes: "
                f"{_node_states(pair)}",
            )


@azure_check(NODE_NOT_ACTIVE, applies=_has_azure, needs=("azure",))
def imds_enabled_node_not_active(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        if pair.azure is None or (pair.azure.imds_attestation or "").casefold() != "enabled":
            continue
        for host in pair.hosts:
            status = host.attestation.status if host.attestation else None
            if status is None or status == "Active":
                continue
            action = "enable" if status == "Inactive" else "sync"
            yield _finding(
                meta,
                pair,
                host.node,
                f"Azure says imdsAttestation Enabled; {host.node} reports {status}",
                node=host.node,
                action=action,
            )


def _sync_applies(pair: ClusterPair) -> str | None:
    missing = _has_azure(pair)
    if missing:
        return missing
    assert pair.azure is not None
    return None if pair.azure.registered else "the cluster never connected to Azure (NotYetRegistered)"


def _sync_band(pair: ClusterPair, view: AzureView) -> tuple[str, float] | None:
    """Which sync check speaks for the cluster (only the most severe one does), with the days."""
    if pair.azure is None or not pair.azure.registered:
        return None
    days = _days_since_sync(pair, view)
    if days is None:
        return ("out-of-policy", float("inf"))
    if days > POLICY_DAYS:
        return ("out-of-policy", days)
    if POLICY_DAYS - days <= view.expiry_warning_days:
        return ("near-limit", days)
    if days >= LATE_DAYS:
        return ("late", days)
    return None


def _sync_detail(pair: ClusterPair, days: float) -> str:
    assert pair.azure is not None
    if pair.azure.last_sync is None:
        return "Azure has no lastSyncTimestamp for the cluster"
    return f"last sync {pair.azure.last_sync:%Y-%m-%d %H:%M} UTC, {days:.1f} days ago"


@azure_check(OUT_OF_POLICY, applies=_sync_applies, needs=("azure",))
def sync_out_of_policy(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        band = _sync_band(pair, view)
        if band and band[0] == "out-of-policy":
            yield _finding(
                meta,
                pair,
                pair.name,
                _sync_detail(pair, band[1]) + "; new VMs are refused, attestation expires",
            )


@azure_check(SYNC_EXPIRING, applies=_sync_applies, needs=("azure",))
def sync_near_limit(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        band = _sync_band(pair, view)
        if band and band[0] == "near-limit":
            left = max(0, math.ceil(POLICY_DAYS - band[1]))
            yield _finding(
                meta,
                pair,
                pair.name,
                f"{_sync_detail(pair, band[1])}; out of policy in {left} day(s)",
                left=str(left),
            )


@azure_check(SYNC_LATE, applies=_sync_applies, needs=("azure",))
def sync_late(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        band = _sync_band(pair, view)
        if band and band[0] == "late":
            yield _finding(meta, pair, pair.name, _sync_detail(pair, band[1]))


@azure_check(NOT_CONNECTED, applies=_has_azure, needs=("azure",))
def cluster_not_connected(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        azure = pair.azure
        if azure is None:
            continue
        if azure.status == "ConnectedRecently" and azure.connectivity_status in (None, "Connected"):
            continue
        detail = (
            f"status {azure.status or 'unknown'}, connectivityStatus {azure.connectivity_status or 'unknown'}"
        )
        if not azure.registered:
            detail += ": registered in Azure, but the cluster never connected"
        yield _finding(meta, pair, pair.name, detail)


# --- nodes ----------------------------------------------------------------------------------------


def _node_list_applies(pair: ClusterPair) -> str | None:
    missing = _has_azure(pair)
    if missing:
        return missing
    assert pair.azure is not None
    if not pair.azure.registered:
        return "the cluster never reported its nodes to Azure"
    return None


@azure_check(NODE_NOT_IN_AZURE, applies=_node_list_applies, needs=("azure", "cluster_nodes"))
def node_not_in_azure(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        members = pair.cluster_nodes()
        if pair.azure is None or members is None or not pair.azure.registered:
            continue
        in_azure = {first_label(n.name) for n in pair.azure.nodes}
        for name in members:
            if first_label(name) not in in_azure:
                yield _finding(
                    meta,
                    pair,
                    name.lower(),
                    f"Get-ClusterNode lists {name}; Azure's node list does not",
                    node=name,
                )


@azure_check(NODE_ONLY_IN_AZURE, applies=_node_list_applies, needs=("azure", "cluster_nodes"))
def node_only_in_azure(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        members = pair.cluster_nodes()
        if pair.azure is None or members is None:
            continue
        real = {first_label(n) for n in members}
        for node in pair.azure.nodes:
            if first_label(node.name) not in real:
                yield _finding(
                    meta,
                    pair,
                    node.name.lower(),
                    f"Azure lists {node.name}; Get-ClusterNode does not (removed from the cluster?)",
                    node=node.name,
                )


@azure_check(WSS_NOT_APPLIED, applies=_has_azure, needs=("azure",))
def wss_not_applied(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        azure = pair.azure
        if azure is None or not azure.wss_desired:
            continue
        for node in azure.nodes:
            reported = node.windows_server_subscription
            if reported and reported.casefold() != azure.wss_desired.casefold():
                yield _finding(
                    meta,
                    pair,
                    node.name.lower(),
                    f"windowsServerSubscription desired {azure.wss_desired}, {node.name} reports {reported}",
                    node=node.name,
                )


@azure_check(NODE_ARC_DISCONNECTED, applies=_has_azure, needs=("azure",))
def node_arc_disconnected(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        for machine in pair.node_machines:
            if machine.status and machine.status != "Connected":
                since = (
                    f" since {machine.last_status_change:%Y-%m-%d %H:%M} UTC"
                    if machine.last_status_change
                    else ""
                )
                cluster = pair.azure.status if pair.azure else None
                yield _finding(
                    meta,
                    pair,
                    machine.name.lower(),
                    f"Arc machine {machine.name} is {machine.status}{since} (cluster {cluster or 'status unknown'})",
                    node=machine.name,
                )


@azure_check(
    BRIDGE_DOWN,
    applies=lambda p: _has_azure(p) or (None if p.bridges else "no resource bridge serves it"),
    needs=("azure",),
)
def resource_bridge_not_running(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        for bridge in pair.bridges:
            if bridge.status != "Running":
                yield _finding(
                    meta,
                    pair,
                    bridge.name,
                    f"resource bridge {bridge.name} is {bridge.status or 'in no state'}",
                    bridge=bridge.name,
                    resource_group=bridge.resource_group,
                )


# --- VMs ------------------------------------------------------------------------------------------


def _vm_applies(pair: ClusterPair) -> str | None:
    missing = _has_azure(pair)
    if missing:
        return missing
    return (
        None
        if pair.arc_vm_management
        else "no Azure Local VM management (resource bridge) serves the cluster"
    )


def _elsewhere(view: AzureView, name: str, here: ClusterPair) -> str | None:
    key = name.casefold()
    for pair in view.clusters:
        if pair is not here and any(vm.name.casefold() == key for h in pair.hosts for vm in h.vms):
            return pair.name
    return None


@azure_check(ORPHANED, applies=_vm_applies, needs=("azure", "hosts"))
def arc_vm_orphaned(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        if not pair.hosts_complete:
            continue  # the VM may live on a node that did not answer
        for avm in pair.orphans:
            hyperv = avm.instance.hyperv_vm_id if avm.instance else None
            if hyperv:
                detail = f"Azure's VM instance names Hyper-V VM {hyperv}; no node of {pair.name} has it"
                if any(vm.name.casefold() == avm.name.casefold() for h in pair.hosts for vm in h.vms):
                    detail += f" (a VM named {avm.name} runs with another id: re-created outside Azure?)"
            else:
                detail = f"no node of {pair.name} has a VM named {avm.name}"
            other = _elsewhere(view, avm.name, pair)
            if other:
                detail += f"; a VM of that name runs on cluster {other}"
            yield _finding(
                meta, pair, avm.name, detail, vm=avm.name, resource_group=avm.machine.resource_group
            )


@azure_check(NOT_PROJECTED, applies=_vm_applies, needs=("azure",))
def vm_not_projected(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        for vm in pair.unprojected:
            yield _finding(
                meta,
                pair,
                vm.name,
                f"{vm.name} ({vm.state}, on {vm.node}) has no Arc VM in Azure",
                vm=vm.name,
                node=vm.node,
            )


@azure_check(POWER_DIFFERS, applies=_vm_applies, needs=("azure",))
def vm_power_state_differs(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        for vp in pair.vms:
            power = vp.azure.instance.power_state if vp.azure.instance else None
            agrees = POWER_AGREES.get(vp.vm.state)
            if power and agrees and power not in agrees:
                yield _finding(
                    meta,
                    pair,
                    vp.vm.name,
                    f"Azure says {power}, Hyper-V says {vp.vm.state}",
                    vm=vp.vm.name,
                    node=vp.host.node,
                )


@azure_check(HOST_DIFFERS, applies=_vm_applies, needs=("azure",))
def vm_host_node_differs(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        for vp in pair.vms:
            azure_host = vp.azure.instance.host_node_name if vp.azure.instance else None
            if not azure_host:
                continue
            owner = {first_label(vp.host.node), first_label(vp.host.computer_name or vp.host.node)}
            if first_label(azure_host) not in owner:
                yield _finding(
                    meta,
                    pair,
                    vp.vm.name,
                    f"Azure says it runs on {azure_host}, Hyper-V on {vp.host.node}",
                    vm=vp.vm.name,
                    node=vp.host.node,
                )


def _guest_license_text(status: int) -> str:
    return f"{license_status_name(status)} ({status})"


@azure_check(LICENSE_DIFFERS, applies=_vm_applies, needs=("azure",))
def vm_license_differs(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        for vp in pair.vms:
            arc = vp.azure.machine.license_status
            if arc is None or vp.guest_license is None:
                continue
            if (arc.casefold() == "licensed") != (vp.guest_license == LICENSED):
                yield _finding(
                    meta,
                    pair,
                    vp.vm.name,
                    f"Arc licenseProfile says {arc}; the guest says {_guest_license_text(vp.guest_license)}",
                    vm=vp.vm.name,
                )


def _lacks(vp: VMPair) -> str | None:
    """Why a session host's VM lacks Azure Benefits or activation, or None."""
    if vp.verdict in ("missing", "broken"):
        return f"its Azure Benefits are {vp.verdict} (hcibenefit status)"
    if vp.guest_license is not None and vp.guest_license != LICENSED:
        return f"the guest is not activated ({_guest_license_text(vp.guest_license)})"
    arc = vp.azure.machine.license_status
    if vp.guest_license is None and arc is not None and arc.casefold() != "licensed":
        return f"Arc licenseProfile says {arc}"
    return None


@azure_check(AVD_WITHOUT_BENEFITS, applies=_vm_applies, needs=("azure",))
def avd_host_without_benefits(meta: CheckMeta, view: AzureView) -> Iterator[Finding]:
    for pair in view.clusters:
        for vp in pair.vms:
            hosts = view.session_hosts_of(vp.azure)
            why = _lacks(vp) if hosts else None
            if why:
                pools = ", ".join(sorted({h.host_pool for h in hosts}))
                states = ", ".join(sorted({h.status or "unknown" for h in hosts}))
                yield _finding(
                    meta,
                    pair,
                    vp.vm.name,
                    f"AVD session host (host pool {pools}, {states}); {why}",
                    vm=vp.vm.name,
                )
