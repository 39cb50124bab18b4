"""The fleet spec's Azure keys: what the lab's ARM and Resource Graph believe, and where they drift.

Additive to the host-side spec (``lab/spec.py``): a fleet-level ``azure:`` section, and an
``azure:`` mapping on a cluster and on a VM. Every key has a default under which Azure agrees with
the hosts (``auto`` = derived from the host-side model), so a fleet without ``azure:`` keys is a
clean fleet; each other value plants one discrepancy that reconciliation must find.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hcibenefit.yamlschema import (
    Bool,
    Choice,
    Ctx,
    DictOf,
    Guid,
    Int,
    ListOf,
    Loc,
    MapSpec,
    Number,
    Scalar,
    Section,
    Str,
    YNode,
)

LAB_SUBSCRIPTION = "00000000-0000-4000-8000-00000000c0de"
AUTO = "auto"
CLUSTER_STATUSES = (
    AUTO,
    "NotYetRegistered",
    "ConnectedRecently",
    "NotConnectedRecently",
    "Disconnected",
    "Error",
)
CONNECTIVITY = (
    AUTO,
    "NotYetRegistered",
    "Connected",
    "NotConnectedRecently",
    "PartiallyConnected",
    "Disconnected",
)
ENABLED_DISABLED = (AUTO, "Enabled", "Disabled")
BRIDGE_STATUSES = ("Running", "Offline", "WaitingForHeartbeat", "UpgradingKVAIO", "none")
ARC_STATUSES = ("Connected", "Disconnected", "Error", "Expired")
POWER_STATES = (
    AUTO,
    "Running",
    "Stopped",
    "Deallocated",
    "Paused",
    "Saved",
    "Starting",
    "Stopping",
    "Unknown",
)
LICENSE_STATUSES = (
    AUTO,
    "none",
    "Unlicensed",
    "Licensed",
    "OOBGrace",
    "OOTGrace",
    "NonGenuineGrace",
    "Notification",
    "ExtendedGrace",
)
SESSION_STATUSES = ("Available", "NeedsAssistance", "Unavailable", "Shutdown", "NoHeartbeat", "UpgradeFailed")
# The AVD service's session host health checks (azure-mgmt-desktopvirtualization 2.0.0 HealthCheckName).
HEALTH_CHECKS = (
    "DomainJoinedCheck",
    "DomainTrustCheck",
    "SxSStackListenerCheck",
    "MonitoringAgentCheck",
    "MetaDataServiceCheck",
    "AppAttachHealthCheck",
    "FSLogixHealthCheck",
    "UrlsAccessibleCheck",
    "DomainReachable",
    "WebRTCRedirectorCheck",
    "SupportedEncryptionCheck",
)
HYPERV_IDS = (AUTO, "stale", "absent")


@dataclass
class HostPoolSpec:
    """Session hosts of an AVD host pool that are not VMs of the fleet."""

    azure_vms: list[str] = field(default_factory=list)
    """Session hosts on Azure VMs (Microsoft.Compute): a pool mixing them with Azure Local VMs."""
    stale_hosts: list[str] = field(default_factory=list)
    """Session hosts whose Arc machine no longer exists in Azure (they cannot be mapped to a VM)."""


@dataclass
class AzureFleetSpec:
    subscription: str = LAB_SUBSCRIPTION
    page_size: int | None = None
    """Rows per Resource Graph page; None: 10, or 100 for fleets of more than 200 resources."""
    quota: int = 15
    """Resource Graph requests per quota window (Azure's documented example: 15 per 5 seconds)."""
    quota_window_s: float = 5.0
    graph_host_fields: bool = False
    """Whether Resource Graph's VM instance rows carry hyperVVmId/hostNodeName (unverified in Azure)."""
    denied_subscriptions: list[str] = field(default_factory=list)
    """Listed in the generated inventory, but the lab credential may not read them (403)."""
    unmanaged_clusters: list[str] = field(default_factory=list)
    """Clusters that exist in Azure only: the inventory does not list them."""
    refuse_union: bool = False
    """Resource Graph refuses the cross-table union (as its documented limits would), 400."""
    host_pools: dict[str, HostPoolSpec] = field(default_factory=dict)
    """AVD host pools by name: every pool a VM's host_pool names exists; these add members that are not
    VMs of the fleet."""


@dataclass
class AzureClusterSpec:
    registered: bool | None = None
    """None (auto): in Azure unless the cluster's registration is NotYet."""
    subscription: str | None = None
    """Default: the fleet's subscription."""
    resource_group: str | None = None
    """Default: rg-<cluster name>, with the cluster's resource bridge and custom location."""
    imds_attestation: str = AUTO
    sync_age_days: float | None = None
    """Days since lastSyncTimestamp; default 0.25, or 35 when the registration is OutOfPolicy."""
    status: str = AUTO
    connectivity: str = AUTO
    wss_desired: str = "Enabled"
    wss_not_applied: list[str] = field(default_factory=list)
    """Nodes whose reported windowsServerSubscription is not yet the desired value."""
    extra_nodes: list[str] = field(default_factory=list)
    """Names in ARM's node list that are not in the cluster (a removed node)."""
    missing_nodes: list[str] = field(default_factory=list)
    """Cluster nodes ARM's node list lacks (added since the last sync)."""
    arc_vms: bool | None = None
    """Arc VM management (resource bridge, custom location, projected VMs); None (auto): on 23H2."""
    resource_bridge: str = "Running"
    orphan_vms: list[str] = field(default_factory=list)
    """Arc VMs whose Hyper-V VM no longer exists."""
    node_arc: dict[str, str] = field(default_factory=dict)
    """Node Arc machine status overrides, e.g. {node1: Disconnected}."""


@dataclass
class AzureVMSpec:
    projected: bool | None = None
    """None (auto): an Arc VM exists when the cluster has Arc VM management."""
    power_state: str = AUTO
    host_node: str | None = None
    license_status: str = AUTO
    """auto: the guest's own activation (guest management runs in every projected VM); none: no agent."""
    hyperv_id: str = AUTO
    """stale: ARM's hyperVVmId names a VM that was deleted (the VM was re-created); absent: none."""
    host_pool: str | None = None
    """An AVD host pool this VM is a session host of."""
    session_status: str = "Available"
    failed_health_checks: list[str] = field(default_factory=list)
    """Session host health checks that fail; default: MetaDataServiceCheck when the status is not
    Available (IMDS out of reach is what makes a session host "Needs Assistance")."""


class AutoBool(Scalar):
    """true, false, or auto (stored as None: derived from the host-side model)."""

    expected = "true, false or auto"

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.casefold() == AUTO:
            return None
        return self.fail(node, loc, ctx)


_AUTO_BOOL = AutoBool()
_NAMES = ListOf(Str("a name"), expected="a list of names")

FLEET_AZURE = MapSpec(
    "a mapping of the lab's Azure settings",
    {
        "subscription": Guid(),
        "page_size": Int(1, 1000),
        "quota": Int(1, 1000),
        "quota_window_s": Number(),
        "graph_host_fields": Bool(),
        "denied_subscriptions": ListOf(Guid(), expected="a list of subscription GUIDs"),
        "unmanaged_clusters": _NAMES,
        "refuse_union": Bool(),
        "host_pools": DictOf(
            MapSpec(
                "a host pool's members that are not fleet VMs",
                {"azure_vms": _NAMES, "stale_hosts": _NAMES},
            ),
            expected="a mapping of host pool name to its members elsewhere",
        ),
    },
)
CLUSTER_AZURE = MapSpec(
    "a mapping of what Azure believes about the cluster",
    {
        "registered": _AUTO_BOOL,
        "subscription": Guid(),
        "resource_group": Str("a resource group name"),
        "imds_attestation": Choice(ENABLED_DISABLED),
        "sync_age_days": Number("days", allow_zero=True),
        "status": Choice(CLUSTER_STATUSES),
        "connectivity": Choice(CONNECTIVITY),
        "wss_desired": Choice(ENABLED_DISABLED[1:]),
        "wss_not_applied": _NAMES,
        "extra_nodes": _NAMES,
        "missing_nodes": _NAMES,
        "arc_vms": _AUTO_BOOL,
        "resource_bridge": Choice(BRIDGE_STATUSES),
        "orphan_vms": _NAMES,
        "node_arc": DictOf(Choice(ARC_STATUSES), expected="a mapping of node name to Arc status"),
    },
)
VM_AZURE = MapSpec(
    "a mapping of what Azure believes about the VM",
    {
        "projected": _AUTO_BOOL,
        "power_state": Choice(POWER_STATES),
        "host_node": Str("a node name"),
        "license_status": Choice(LICENSE_STATUSES),
        "hyperv_id": Choice(HYPERV_IDS),
        "host_pool": Str("an AVD host pool name"),
        "session_status": Choice(SESSION_STATUSES),
        "failed_health_checks": ListOf(Choice(HEALTH_CHECKS), expected="a list of health check names"),
    },
)


def _plain(section: Section | None) -> dict[str, Any]:
    if section is None:
        return {}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in section.values.items()}


def fleet_azure(section: Section | None) -> AzureFleetSpec:
    values = _plain(section)
    pools = values.pop("host_pools", None) or {}
    return AzureFleetSpec(
        **values,
        host_pools={
            name: HostPoolSpec(**_plain(pool if isinstance(pool, Section) else None))
            for name, pool in pools.items()
        },
    )


def cluster_azure(section: Section | None) -> AzureClusterSpec:
    return AzureClusterSpec(**_plain(section))


def vm_azure(section: Section | None) -> AzureVMSpec:
    return AzureVMSpec(**_plain(section))
