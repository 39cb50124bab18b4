"""What Azure believes, as frozen records: one class per resource kind the reconciliation reads.

Field names are ours (snake case); the REST path each comes from is in the parser. Values stay as
Azure spells them (``ConnectedRecently``, ``Enabled``): an enum value we have never seen is kept as
text, so a new API version degrades a report instead of breaking it. Ids are normalised (lower case,
see ``ids.norm_id``) so joins are plain comparisons; names keep their case for display.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

# First builds of the releases that serve V2 (VMBus) by default and turn IMDS attestation on.
BUILD_23H2 = 25398

# Resource types as Resource Graph spells them (lower case); ARM itself may use any case.
TYPE_CLUSTER = "microsoft.azurestackhci/clusters"
TYPE_MACHINE = "microsoft.hybridcompute/machines"
TYPE_VM_INSTANCE = "microsoft.azurestackhci/virtualmachineinstances"
TYPE_CUSTOM_LOCATION = "microsoft.extendedlocation/customlocations"
TYPE_BRIDGE = "microsoft.resourceconnector/appliances"
TYPE_SESSION_HOST = "microsoft.desktopvirtualization/hostpools/sessionhosts"
TYPE_HOST_POOL = "microsoft.desktopvirtualization/hostpools"
TYPE_AZURE_VM = "microsoft.compute/virtualmachines"


def build_of(version: str | None) -> int | None:
    """The OS build in a version string: ``10.0.25398`` → 25398, ``10.0.26100.4061`` → 26100."""
    if not version:
        return None
    parts = version.strip().split(".")
    if len(parts) >= 3 and parts[2].isdigit():
        return int(parts[2])
    return None


@dataclass(frozen=True, slots=True)
class Resource:
    """What every ARM resource has."""

    id: str
    name: str
    type: str
    subscription_id: str
    resource_group: str
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One entry of ``reportedProperties.nodes[]``: what the cluster last told Azure about a node."""

    name: str
    windows_server_subscription: str | None
    os_version: str | None
    os_display_version: str | None
    last_licensing: dt.datetime | None
    node_type: str | None


@dataclass(frozen=True, slots=True)
class AzureCluster(Resource):
    """``Microsoft.AzureStackHCI/clusters``."""

    kind: str | None = None
    status: str | None = None
    connectivity_status: str | None = None
    registration_time: dt.datetime | None = None
    last_sync: dt.datetime | None = None
    imds_attestation: str | None = None
    cluster_name: str | None = None
    """``reportedProperties.clusterName``: the failover cluster's own name."""
    cluster_version: str | None = None
    supported_capabilities: tuple[str, ...] = ()
    nodes: tuple[ClusterNode, ...] = ()
    wss_desired: str | None = None
    software_assurance_status: str | None = None
    msi_expiration: dt.datetime | None = None

    @property
    def build(self) -> int | None:
        """The OS build Azure last heard of: the cluster version, else the newest node's."""
        builds = [build_of(self.cluster_version)] + [build_of(n.os_version) for n in self.nodes]
        known = [b for b in builds if b is not None]
        return max(known) if known else None

    @property
    def is_23h2_or_later(self) -> bool | None:
        build = self.build
        return None if build is None else build >= BUILD_23H2

    @property
    def registered(self) -> bool:
        return (self.status or "") != "NotYetRegistered"


@dataclass(frozen=True, slots=True)
class ArcMachine(Resource):
    """``Microsoft.HybridCompute/machines``: a cluster node (provider AzSHCI) or an Azure Local VM (kind HCI)."""

    kind: str | None = None
    status: str | None = None
    last_status_change: dt.datetime | None = None
    agent_version: str | None = None
    provider: str | None = None
    """``cloudMetadata.provider``: AzSHCI for the physical nodes of an Azure Local cluster."""
    parent_cluster_id: str = ""
    license_status: str | None = None
    """``licenseProfile.licenseStatus``: the guest's own activation, when the agent runs inside it."""
    os_name: str | None = None
    os_sku: str | None = None
    vm_uuid: str | None = None

    @property
    def is_hci_vm(self) -> bool:
        return (self.kind or "").casefold() == "hci"

    @property
    def is_hci_node(self) -> bool:
        return (self.provider or "").casefold() == "azshci" and not self.is_hci_vm


@dataclass(frozen=True, slots=True)
class VMInstance(Resource):
    """``Microsoft.AzureStackHCI/virtualMachineInstances/default``, the extension of an Arc VM's machine."""

    machine_id: str = ""
    custom_location_id: str = ""
    power_state: str | None = None
    hyperv_vm_id: str | None = None
    """The Hyper-V VM's ``Id`` (``Get-VM``), from API 2025-06-01-preview on; lower case."""
    host_node_name: str | None = None
    vm_id: str | None = None
    create_from_local: bool | None = None
    guest_agent_status: str | None = None
    provisioning_state: str | None = None
    authoritative: bool = False
    """True when read from ARM itself rather than from Resource Graph's index."""


@dataclass(frozen=True, slots=True)
class CustomLocation(Resource):
    """``Microsoft.ExtendedLocation/customLocations``: points at the resource bridge that serves it."""

    host_resource_id: str = ""
    provisioning_state: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceBridge(Resource):
    """``Microsoft.ResourceConnector/appliances``: the Arc resource bridge; ``Running`` when online."""

    status: str | None = None
    version: str | None = None
    provisioning_state: str | None = None


@dataclass(frozen=True, slots=True)
class HealthCheck:
    name: str
    result: str
    message: str | None = None
    """``additionalFailureDetails.message``: why it failed, as the AVD service says."""

    @property
    def succeeded(self) -> bool:
        return self.result == "HealthCheckSucceeded"


@dataclass(frozen=True, slots=True)
class SessionHost(Resource):
    """``Microsoft.DesktopVirtualization/hostPools/sessionHosts``."""

    host_pool: str = ""
    vm_resource_id: str = ""
    """``properties.resourceId``: the machine (Arc VM on Azure Local) behind the session host."""
    status: str | None = None
    last_heartbeat: dt.datetime | None = None
    allow_new_session: bool | None = None
    health_checks: tuple[HealthCheck, ...] = ()
    agent_version: str | None = None
    update_state: str | None = None

    @property
    def host_pool_id(self) -> str:
        """The host pool's id: this session host's id without ``/sessionhosts/<name>``."""
        index = self.id.rfind("/sessionhosts/")
        return self.id[:index] if index > 0 else ""

    @property
    def on_azure_vm(self) -> bool:
        """The session host is an Azure VM (Microsoft.Compute), not an Azure Local VM."""
        return f"/providers/{TYPE_AZURE_VM}/" in self.vm_resource_id

    @property
    def on_arc_machine(self) -> bool:
        return f"/providers/{TYPE_MACHINE}/" in self.vm_resource_id

    def health_check(self, name: str) -> HealthCheck | None:
        return next((c for c in self.health_checks if c.name.casefold() == name.casefold()), None)


@dataclass(frozen=True, slots=True)
class HostPool(Resource):
    """``Microsoft.DesktopVirtualization/hostPools``: read from ARM only (the inventory query has none)."""

    host_pool_type: str | None = None
    load_balancer_type: str | None = None


@dataclass(frozen=True, slots=True)
class AzureInventory:
    """Everything one run read from Azure (or a snapshot), with look-ups by normalised id."""

    clusters: tuple[AzureCluster, ...] = ()
    machines: tuple[ArcMachine, ...] = ()
    instances: tuple[VMInstance, ...] = ()
    custom_locations: tuple[CustomLocation, ...] = ()
    bridges: tuple[ResourceBridge, ...] = ()
    session_hosts: tuple[SessionHost, ...] = ()
    other_rows: int = 0
    """Rows of a type this tool does not read (an unrelated query's output, an ARM list payload)."""

    def __len__(self) -> int:
        return sum(len(group) for group in self.groups())

    def groups(self) -> Iterator[tuple[Resource, ...]]:
        yield self.clusters
        yield self.machines
        yield self.instances
        yield self.custom_locations
        yield self.bridges
        yield self.session_hosts

    def by_id(self) -> dict[str, Resource]:
        return {r.id: r for group in self.groups() for r in group}

    @property
    def subscriptions(self) -> frozenset[str]:
        return frozenset(r.subscription_id for group in self.groups() for r in group if r.subscription_id)

    def vm_machines(self) -> tuple[ArcMachine, ...]:
        return tuple(m for m in self.machines if m.is_hci_vm)

    def node_machines(self) -> tuple[ArcMachine, ...]:
        return tuple(m for m in self.machines if m.is_hci_node)

    def instance_of(self, machine_id: str) -> VMInstance | None:
        return next((i for i in self.instances if i.machine_id == machine_id), None)

    def replace_instances(self, instances: Mapping[str, VMInstance]) -> AzureInventory:
        """The same inventory with some VM instances swapped for authoritative reads (by id)."""
        from dataclasses import replace

        return replace(self, instances=tuple(instances.get(i.id, i) for i in self.instances))
