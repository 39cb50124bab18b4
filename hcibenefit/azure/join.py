"""Azure's resources put beside the inventory's clusters and the hosts' VMs. Pure: no I/O, no SDK.

Clusters: an inventory cluster is its Azure resource when (first match wins) the inventory's
``clusters[].azure`` names it, the nodes report it (``Get-AzureStackHCI`` ``AzureResourceUri``), or
exactly one Azure cluster has its name (resource name or ``reportedProperties.clusterName``).

VMs to clusters: as Microsoft's LENS workbook does, VM instance → custom location → the resource
bridge it runs on → the cluster in that bridge's resource group; ``parentClusterResourceId`` of the
VM's Arc machine when that chain does not lead to exactly one cluster.

Azure VMs to Hyper-V VMs, within a cluster: ``hyperVVmId`` = ``Get-VM``'s ``Id`` when Azure has it,
else the name (case-insensitive, as Hyper-V compares names).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from hcibenefit.azure.ids import first_label, norm_id, resource_group_of, subscription_of
from hcibenefit.azure.records import (
    ArcMachine,
    AzureCluster,
    AzureInventory,
    ResourceBridge,
    SessionHost,
    VMInstance,
)
from hcibenefit.facts.host import HostFacts, VMFacts
from hcibenefit.inventory.model import Cluster


@dataclass(frozen=True)
class AzureVM:
    """An Azure Local VM as Azure has it: its Arc machine, its VM instance, and the cluster it maps to."""

    machine: ArcMachine
    instance: VMInstance | None
    cluster_id: str
    mapped_by: str
    """"custom location" or "parentClusterResourceId"; "" when it maps to no cluster."""

    @property
    def name(self) -> str:
        return self.machine.name


@dataclass(frozen=True)
class VMPair:
    """An Azure VM and the Hyper-V VM it is, with what the host-side assessment says of the VM."""

    azure: AzureVM
    vm: VMFacts
    host: HostFacts
    joined_by: str
    """"hyperVVmId" or "name"."""
    verdict: str | None = None
    """The VM's benefits verdict (status): ok, missing, broken, unknown, not-needed."""
    guest_license: int | None = None
    """SoftwareLicensingProduct.LicenseStatus from inside the guest, when it was asked."""


@dataclass(frozen=True)
class ClusterPair:
    """One inventory cluster: its hosts' facts beside what Azure has for it."""

    name: str
    inventory: Cluster
    hosts: tuple[HostFacts, ...]
    unreachable: Mapping[str, str]
    azure: AzureCluster | None
    matched_by: str
    """How the Azure resource was found (inventory, nodes, name), or why none was."""
    azure_known: bool
    """False when the subscription the cluster would be in could not be read: absence means nothing."""
    vms: tuple[VMPair, ...] = ()
    orphans: tuple[AzureVM, ...] = ()
    unprojected: tuple[VMFacts, ...] = ()
    arc_vm_management: bool = False
    """A custom location or resource bridge serves this cluster (Azure Local VM management is set up)."""
    bridges: tuple[ResourceBridge, ...] = ()
    node_machines: tuple[ArcMachine, ...] = ()
    reported_ids: tuple[str, ...] = ()
    """The Azure resource ids the nodes report for the cluster (normalised)."""
    unread: tuple[str, str | None] | None = None
    """When ``azure_known`` is false: what could not be read, and what would make it readable."""

    @property
    def hosts_complete(self) -> bool:
        """Every node answered, so what the hosts do not have, they do not have."""
        return not self.unreachable and bool(self.hosts)

    def cluster_nodes(self) -> tuple[str, ...] | None:
        """The failover cluster's members as Get-ClusterNode reports them (None: no host answered)."""
        for host in self.hosts:
            if host.cluster_nodes:
                return tuple(n.name for n in host.cluster_nodes)
        return None


@dataclass(frozen=True)
class AzureView:
    """Everything the azure checks judge."""

    now: dt.datetime
    expiry_warning_days: int
    clusters: tuple[ClusterPair, ...]
    unmanaged: tuple[AzureCluster, ...]
    """Azure clusters no inventory cluster matched (empty when only some clusters were selected)."""
    session_hosts: Mapping[str, tuple[SessionHost, ...]] = field(default_factory=dict)
    """Arc machine id → the AVD session hosts on it."""

    def session_hosts_of(self, vm: AzureVM) -> tuple[SessionHost, ...]:
        return self.session_hosts.get(vm.machine.id, ())


# --- clusters ---------------------------------------------------------------------------------


def _inventory_id(cluster: Cluster) -> str | None:
    az = cluster.azure
    if az is None or not az.subscription_id or not az.resource_group:
        return None
    return norm_id(
        f"/subscriptions/{az.subscription_id}/resourceGroups/{az.resource_group}"
        f"/providers/Microsoft.AzureStackHCI/clusters/{az.resource_name or cluster.name}"
    )


def reported_ids(hosts: Sequence[HostFacts]) -> tuple[str, ...]:
    found = [norm_id(h.registration.azure_resource_uri) for h in hosts if h.registration]
    return tuple(dict.fromkeys(i for i in found if i))


def match_cluster(
    cluster: Cluster, hosts: Sequence[HostFacts], azure: AzureInventory
) -> tuple[AzureCluster | None, str, str | None]:
    """(the Azure cluster, how it was matched, the id it should have had when known)."""
    by_id = {c.id: c for c in azure.clusters}
    wanted = _inventory_id(cluster)
    if wanted is not None:
        return by_id.get(wanted), "inventory (clusters[].azure)", wanted
    reported = reported_ids(hosts)
    for resource_id in reported:
        if resource_id in by_id:
            return by_id[resource_id], "nodes (Get-AzureStackHCI AzureResourceUri)", resource_id
    if reported:
        return None, "nodes (Get-AzureStackHCI AzureResourceUri)", reported[0]
    key = cluster.name.casefold()
    named = [c for c in azure.clusters if key in (c.name.casefold(), (c.cluster_name or "").casefold())]
    if len(named) == 1:
        return named[0], "name", named[0].id
    if len(named) > 1:
        return None, f"name (ambiguous: {len(named)} Azure clusters are called {cluster.name})", None
    return None, "name", None


# --- VMs to clusters ----------------------------------------------------------------------------


def map_vms(azure: AzureInventory) -> tuple[AzureVM, ...]:
    """Every Azure Local VM (Arc machine of kind HCI) with the cluster it belongs to."""
    locations = {c.id: c for c in azure.custom_locations}
    clusters_by_group: dict[tuple[str, str], list[AzureCluster]] = {}
    for c in azure.clusters:
        clusters_by_group.setdefault((c.subscription_id, c.resource_group), []).append(c)
    result = []
    for machine in azure.vm_machines():
        instance = azure.instance_of(machine.id)
        cluster_id, mapped_by = "", ""
        location = locations.get(instance.custom_location_id) if instance else None
        if location is not None and location.host_resource_id:
            bridge = location.host_resource_id
            candidates = clusters_by_group.get((subscription_of(bridge), resource_group_of(bridge)), [])
            if len(candidates) == 1:
                cluster_id, mapped_by = candidates[0].id, "custom location"
        if not cluster_id and machine.parent_cluster_id.startswith("/subscriptions/"):
            cluster_id, mapped_by = machine.parent_cluster_id, "parentClusterResourceId"
        result.append(AzureVM(machine, instance, cluster_id, mapped_by))
    return tuple(result)


def bridges_of(cluster: AzureCluster, azure: AzureInventory) -> tuple[ResourceBridge, ...]:
    """The resource bridges that serve a cluster: those in its resource group (the LENS rule)."""
    return tuple(
        b
        for b in azure.bridges
        if b.subscription_id == cluster.subscription_id and b.resource_group == cluster.resource_group
    )


def node_machines_of(cluster: AzureCluster, azure: AzureInventory) -> tuple[ArcMachine, ...]:
    names = {first_label(n.name) for n in cluster.nodes}
    return tuple(
        m
        for m in azure.node_machines()
        if m.parent_cluster_id == cluster.id
        or (
            not m.parent_cluster_id
            and m.resource_group == cluster.resource_group
            and first_label(m.name) in names
        )
    )


# --- VMs to Hyper-V VMs ---------------------------------------------------------------------------


def join_vms(
    azure_vms: Sequence[AzureVM],
    hosts: Sequence[HostFacts],
    *,
    verdicts: Mapping[str, str] | None = None,
    guest_license: Mapping[str, int] | None = None,
) -> tuple[tuple[VMPair, ...], tuple[AzureVM, ...], tuple[VMFacts, ...]]:
    """(pairs, Azure VMs with no Hyper-V VM, Hyper-V VMs with no Azure VM) for one cluster."""
    local = [(vm, host) for host in hosts for vm in host.vms]
    by_id = {vm.id.lower(): (vm, host) for vm, host in local if vm.id}
    by_name: dict[str, list[tuple[VMFacts, HostFacts]]] = {}
    for vm, host in local:
        by_name.setdefault(vm.name.casefold(), []).append((vm, host))
    verdicts = verdicts or {}
    guest_license = guest_license or {}
    pairs: list[VMPair] = []
    orphans: list[AzureVM] = []
    taken: set[str] = set()
    for avm in azure_vms:
        hyperv = avm.instance.hyperv_vm_id if avm.instance else None
        found, how = None, ""
        if hyperv:
            found, how = by_id.get(hyperv), "hyperVVmId"
        else:
            named = by_name.get(avm.name.casefold(), [])
            if len(named) == 1:
                found, how = named[0], "name"
        if found is None or found[0].id.lower() in taken:
            orphans.append(avm)
            continue
        vm, host = found
        taken.add(vm.id.lower())
        key = vm.name.casefold()
        pairs.append(VMPair(avm, vm, host, how, verdicts.get(key), guest_license.get(key)))
    unprojected = tuple(vm for vm, _ in local if vm.id.lower() not in taken)
    return tuple(pairs), tuple(orphans), unprojected


# --- the view -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostSide:
    """What the hosts of one inventory cluster reported (checks.assess.ClusterFacts has the same)."""

    cluster: Cluster
    hosts: tuple[HostFacts, ...]
    unreachable: Mapping[str, str]
    verdicts: Mapping[str, str] = field(default_factory=dict)
    """casefolded VM name → its benefits verdict."""
    guest_license: Mapping[str, int] = field(default_factory=dict)
    """casefolded VM name → LicenseStatus inside the guest, for the guests that were asked."""


def _unread(
    unread: Callable[[str | None], tuple[str, str | None] | None], subscription: str | None
) -> tuple[str, str | None]:
    found = unread(subscription)
    if found is not None:
        return found
    where = f"subscription {subscription}" if subscription else "the cluster's subscription"
    return f"{where} could not be read", None


def build_view(
    sides: Sequence[HostSide],
    azure: AzureInventory,
    *,
    covers: Callable[[str | None], bool] = lambda _subscription: True,
    unread: Callable[[str | None], tuple[str, str | None] | None] = lambda _subscription: None,
    all_clusters: bool = True,
    now: dt.datetime,
    expiry_warning_days: int = 7,
) -> AzureView:
    """Pairs every inventory cluster with its Azure resources and its VMs with theirs.

    ``covers(subscription)`` says whether a subscription was read (None: whether everything in
    scope was); a cluster with no Azure resource is ``azure_known`` only if the subscription it
    should be in was read; ``unread(subscription)`` says why one was not and what would fix it (kept
    on the pair for the checks' ERRORs). ``all_clusters`` is false when only some inventory clusters were selected:
    Azure clusters that match none of them are then not called unmanaged.
    """
    azure_vms = map_vms(azure)
    matched: set[str] = set()
    pairs = []
    for side in sides:
        found, how, expected = match_cluster(side.cluster, side.hosts, azure)
        # The nodes' own word that the cluster never registered needs no subscription to confirm it.
        unregistered = bool(side.hosts) and all(
            h.registration is not None and h.registration.registration_status == "NotYet" for h in side.hosts
        )
        subscription = subscription_of(expected) if expected else None
        known = found is not None or unregistered or covers(subscription)
        if found is None:
            pairs.append(
                ClusterPair(
                    side.cluster.name,
                    side.cluster,
                    side.hosts,
                    side.unreachable,
                    None,
                    how,
                    known,
                    reported_ids=reported_ids(side.hosts),
                    unread=None if known else _unread(unread, subscription),
                )
            )
            continue
        matched.add(found.id)
        mine = [v for v in azure_vms if v.cluster_id == found.id]
        vm_pairs, orphans, unprojected = join_vms(
            mine, side.hosts, verdicts=side.verdicts, guest_license=side.guest_license
        )
        bridges = bridges_of(found, azure)
        served = bool(bridges) or bool(mine)
        pairs.append(
            ClusterPair(
                name=side.cluster.name,
                inventory=side.cluster,
                hosts=side.hosts,
                unreachable=side.unreachable,
                azure=found,
                matched_by=how,
                azure_known=True,
                vms=vm_pairs,
                orphans=orphans,
                unprojected=unprojected if served else (),
                arc_vm_management=served,
                bridges=bridges,
                node_machines=node_machines_of(found, azure),
                reported_ids=reported_ids(side.hosts),
            )
        )
    unmanaged = tuple(c for c in azure.clusters if c.id not in matched) if all_clusters else ()
    hosts_by_machine: dict[str, list[SessionHost]] = {}
    for host in azure.session_hosts:
        hosts_by_machine.setdefault(host.vm_resource_id, []).append(host)
    return AzureView(
        now=now,
        expiry_warning_days=expiry_warning_days,
        clusters=tuple(pairs),
        unmanaged=unmanaged,
        session_hosts={k: tuple(v) for k, v in hosts_by_machine.items()},
    )
