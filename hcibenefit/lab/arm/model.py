"""What the lab's Azure believes: ARM resources derived from the live fleet state and the spec.

Built on every request from ``FleetState`` (under its lock), so what the hosts change shows in
Azure the way a sync would carry it: ``host enable``/``host sync`` move a cluster's
lastSyncTimestamp, a kicked guest's activation shows in its Arc machine's licenseProfile. The
spec's Azure keys (``lab/arm/spec.py``) plant what Azure gets wrong.

Shapes follow Microsoft's example payloads for the same API versions (clusters 2026-05-01,
machines 2025-01-13, VM instances 2024-01-01 plus the 2025-06-01-preview fields, session hosts
2025-10-10) with their known defects mended: ids carry ``/providers/`` where ARM puts it, Azure
Local VMs have ``kind: HCI``, builds are real (20349 = 22H2, 25398 = 23H2).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hcibenefit.facts.guest import license_status_name
from hcibenefit.lab.arm.spec import AUTO, AzureClusterSpec, AzureVMSpec
from hcibenefit.lab.state import Cluster, FleetState, stable_id

LOCATION = "westeurope"
AVD_RESOURCE_GROUP = "rg-avd"
BUILDS = {"22H2": ("10.0.20349", "20349.2655"), "23H2": ("10.0.25398", "25398.1189")}
# VM instance fields that exist only from this API version on (azure-mgmt-azurestackhcivm 1.0.0b1).
HOST_FIELDS_API = "2025-06-01-preview"
HOST_FIELDS = ("hyperVVmId", "hostNodeName", "hostNodeIpAddress", "createFromLocal")
# Hyper-V's VM state → what the VM instance's status.powerState says after a sync.
POWER_STATE = {"Running": "Running", "Off": "Stopped", "Saved": "Saved", "Paused": "Paused"}

TABLE_RESOURCES = "resources"
TABLE_EXTENSIBILITY = "extensibilityresources"
TABLE_DESKTOP = "desktopvirtualizationresources"


@dataclass(frozen=True)
class ArmResource:
    """One resource as ARM returns it (type in the provider's casing), and its Resource Graph table."""

    body: dict[str, Any]
    table: str
    subscription: str
    resource_group: str

    @property
    def id(self) -> str:
        return str(self.body["id"]).lower()


@dataclass(frozen=True)
class ProjectedVM:
    """What an Arc VM's resources are made of: a live Hyper-V VM, or one deleted since (an orphan)."""

    name: str
    hyperv_id: str
    cluster: str
    node: str
    state: str
    os: str
    guest_license: int | None


@dataclass
class AzureWorld:
    resources: dict[str, ArmResource] = field(default_factory=dict)

    def add(self, resource: ArmResource) -> None:
        self.resources[resource.id] = resource


def subscription_of(state: FleetState, spec: AzureClusterSpec | None = None) -> str:
    """A cluster's subscription (its own, else the fleet's), lower case as Resource Graph has it."""
    chosen = spec.subscription if spec is not None and spec.subscription else state.spec.azure.subscription
    return chosen.lower()


def subscriptions(state: FleetState) -> set[str]:
    """Every subscription the lab's Azure has (the denied ones included)."""
    found = {subscription_of(state, c.azure) for c in state.spec.clusters}
    found.add(subscription_of(state))
    found.update(s.lower() for s in state.spec.azure.denied_subscriptions)
    return found


def resource_group(cluster: str, spec: AzureClusterSpec) -> str:
    return spec.resource_group or f"rg-{cluster}"


def cluster_resource_id(state: FleetState, cluster: str) -> str:
    """The cluster's ARM id; the host emulation reports the same in Get-AzureStackHCI."""
    spec = next(c for c in state.spec.clusters if c.name == cluster).azure
    return (
        f"/subscriptions/{subscription_of(state, spec)}/resourceGroups/{resource_group(cluster, spec)}"
        f"/providers/Microsoft.AzureStackHCI/clusters/{cluster}"
    )


def iso(value: dt.datetime | None) -> str | None:
    # ARM's round-trip format: seven fractional digits and Z.
    return None if value is None else value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _in_azure(cluster: Cluster, spec: AzureClusterSpec) -> bool:
    return spec.registered if spec.registered is not None else cluster.registration != "NotYet"


def _arc_vms(cluster: Cluster, spec: AzureClusterSpec) -> bool:
    return spec.arc_vms if spec.arc_vms is not None else cluster.version != "22H2"


class WorldBuilder:
    """Builds the AzureWorld for one request. ``reset_at`` is when the lab last (re)started."""

    def __init__(self, state: FleetState, reset_at: dt.datetime, now: dt.datetime) -> None:
        self.state = state
        self.reset_at = reset_at
        self.now = now
        self.subscription = subscription_of(state)
        self.world = AzureWorld()

    def build(self) -> AzureWorld:
        with self.state.lock:
            for cluster_spec in self.state.spec.clusters:
                cluster = self.state.clusters[cluster_spec.name]
                if not _in_azure(cluster, cluster_spec.azure):
                    continue
                vm_specs = {v.name.lower(): v.azure for v in cluster_spec.vms}
                self.subscription = subscription_of(self.state, cluster_spec.azure)
                self._cluster(cluster, cluster_spec.azure, vm_specs)
            self.subscription = subscription_of(self.state)
            for name in self.state.spec.azure.unmanaged_clusters:
                self._unmanaged(name)
            self._host_pools()
        return self.world

    # --- helpers -------------------------------------------------------------------------------

    def _rid(self, group: str, provider_path: str) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{group}/providers/{provider_path}"

    def _add(self, body: dict[str, Any], table: str, group: str) -> None:
        self.world.add(ArmResource(body, table, self.subscription, group))

    def _system_data(self) -> dict[str, Any]:
        created = iso(self.reset_at - dt.timedelta(days=90))
        return {
            "createdBy": "labadmin@lab.test",
            "createdByType": "User",
            "createdAt": created,
            "lastModifiedBy": "labadmin@lab.test",
            "lastModifiedByType": "User",
            "lastModifiedAt": created,
        }

    def _last_sync(self, cluster: Cluster, spec: AzureClusterSpec) -> dt.datetime | None:
        age = spec.sync_age_days
        if age is None and cluster.registration == "OutOfPolicy":
            age = 35.0
        live = cluster.last_sync
        if age is None:
            return live
        planted = self.reset_at - dt.timedelta(days=age)
        # A sync through the lab (host enable, host sync) after the reset reaches Azure. The lab's
        # clock has whole seconds, so a sync in the reset's own second counts too.
        return live if live is not None and live >= self.reset_at else planted

    # --- clusters ------------------------------------------------------------------------------

    def _cluster(self, cluster: Cluster, spec: AzureClusterSpec, vm_specs: dict[str, AzureVMSpec]) -> None:
        group = resource_group(cluster.name, spec)
        cluster_id = self._rid(group, f"Microsoft.AzureStackHCI/clusters/{cluster.name}")
        registered = cluster.registration != "NotYet"
        last_sync = self._last_sync(cluster, spec) if registered else None
        age = (self.now - last_sync).total_seconds() / 86400 if last_sync else None
        recent = age is not None and age <= 1
        status = (
            spec.status
            if spec.status != AUTO
            else (
                "NotYetRegistered"
                if not registered
                else "ConnectedRecently"
                if recent
                else "NotConnectedRecently"
            )
        )
        connectivity = (
            spec.connectivity
            if spec.connectivity != AUTO
            else ("NotYetRegistered" if not registered else "Connected" if recent else "NotConnectedRecently")
        )
        enabled = any(
            self.state.node(n).attestation_switch_id != "00000000-0000-0000-0000-000000000000"
            for n in cluster.nodes
        )
        imds = (
            spec.imds_attestation if spec.imds_attestation != AUTO else ("Enabled" if enabled else "Disabled")
        )
        version, os_version = BUILDS.get(cluster.version, BUILDS["23H2"])
        missing = {n.lower() for n in spec.missing_nodes}
        node_names = [n for n in cluster.nodes if n.lower() not in missing] + list(spec.extra_nodes)
        wrong_wss = {n.lower() for n in spec.wss_not_applied}
        flipped = {"Enabled": "Disabled", "Disabled": "Enabled"}
        nodes = [
            {
                "name": name.upper(),
                "id": index + 1,
                "coreCount": 32,
                "memoryInGiB": 512,
                "manufacturer": "hcibenefit lab",
                "model": "Simulated node",
                "nodeType": "FirstParty",
                "oemActivation": "Disabled",
                "osName": "Azure Stack HCI",
                "osVersion": f"10.0.{os_version}",
                "osDisplayVersion": cluster.version,
                "serialNumber": stable_id(cluster.name, name, "serial")[:8].upper(),
                "windowsServerSubscription": flipped[spec.wss_desired]
                if name.lower() in wrong_wss
                else spec.wss_desired,
                "lastLicensingTimestamp": iso(last_sync),
            }
            for index, name in enumerate(node_names)
        ]
        reported: dict[str, Any] = (
            {
                "clusterName": cluster.name,
                "clusterId": stable_id(cluster.name, "cluster-id"),
                "clusterVersion": version,
                "clusterType": "FirstParty",
                "diagnosticLevel": "Basic",
                "imdsAttestation": imds,
                "lastUpdated": iso(last_sync),
                "manufacturer": "hcibenefit lab",
                "nodes": nodes,
                "oemActivation": "Disabled",
                "supportedCapabilities": ["ManagedIdentity", "CloudManagement"]
                if cluster.version != "22H2"
                else [],
                "msiExpirationTimeStamp": iso(self.reset_at + dt.timedelta(days=80)),
            }
            if registered
            else {}
        )
        body = {
            "id": cluster_id,
            "name": cluster.name,
            "type": "Microsoft.AzureStackHCI/clusters",
            "kind": "AzureLocal" if cluster.version != "22H2" else "",
            "location": LOCATION,
            "tags": {},
            "systemData": self._system_data(),
            "properties": {
                "provisioningState": "Succeeded",
                "status": status,
                "connectivityStatus": connectivity,
                "cloudId": stable_id(cluster.name, "cloud-id"),
                "aadTenantId": stable_id("tenant"),
                "aadClientId": stable_id(cluster.name, "aad-client"),
                "billingModel": "Trial",
                "registrationTimestamp": iso(self.reset_at - dt.timedelta(days=90)) if registered else None,
                "lastSyncTimestamp": iso(last_sync),
                "lastBillingTimestamp": iso(last_sync),
                "desiredProperties": {
                    "windowsServerSubscription": spec.wss_desired,
                    "diagnosticLevel": "Basic",
                },
                "reportedProperties": reported,
                "softwareAssuranceProperties": {
                    "softwareAssuranceStatus": "Enabled",
                    "softwareAssuranceIntent": "Enable",
                    "lastUpdated": iso(last_sync),
                },
                "trialDaysRemaining": 0,
            },
        }
        self._add(body, TABLE_RESOURCES, group)
        for node in cluster.nodes:
            self._node_machine(cluster, node, group, cluster_id, spec)
        if not _arc_vms(cluster, spec):
            return
        location_id = self._arc_vm_management(cluster.name, group, spec)
        for vm in self.state.vms.values():
            if vm.cluster != cluster.name:
                continue
            vm_spec = vm_specs.get(vm.name.lower(), AzureVMSpec())
            if vm_spec.projected is not False:
                live = ProjectedVM(
                    vm.name, vm.id, vm.cluster, vm.node, vm.state, vm.os, vm.guest.license_status
                )
                self._arc_vm(live, vm_spec, group, cluster_id, location_id)
            if vm_spec.host_pool:
                machine_id = self._rid(group, f"Microsoft.HybridCompute/machines/{vm.name}")
                failed = vm_spec.failed_health_checks or (
                    [] if vm_spec.session_status == "Available" else ["MetaDataServiceCheck"]
                )
                self._session_host(vm.name, vm_spec.host_pool, machine_id, vm_spec.session_status, failed)
        for name in spec.orphan_vms:
            # Deleted on the host (Hyper-V Manager, or Azure's delete that left it running elsewhere).
            gone = ProjectedVM(
                name,
                stable_id(cluster.name, name, "deleted"),
                cluster.name,
                cluster.nodes[0],
                "Running",
                "Windows 11 Enterprise multi-session",
                None,
            )
            self._arc_vm(gone, AzureVMSpec(license_status="none"), group, cluster_id, location_id)

    def _node_machine(
        self, cluster: Cluster, node: str, group: str, cluster_id: str, spec: AzureClusterSpec
    ) -> None:
        overrides = {k.lower(): v for k, v in spec.node_arc.items()}
        body = {
            "id": self._rid(group, f"Microsoft.HybridCompute/machines/{node}"),
            "name": node,
            "type": "Microsoft.HybridCompute/machines",
            "kind": "",
            "location": LOCATION,
            "tags": {},
            "identity": {"type": "SystemAssigned", "principalId": stable_id(node, "principal")},
            "properties": {
                "provisioningState": "Succeeded",
                "status": overrides.get(node.lower(), "Connected"),
                "lastStatusChange": iso(self.reset_at - dt.timedelta(hours=2)),
                "agentVersion": "1.45.02664.1814",
                "osName": "windows",
                "osType": "windows",
                "osSku": "Azure Stack HCI",
                "osVersion": f"10.0.{BUILDS.get(cluster.version, BUILDS['23H2'])[1]}",
                "vmUuid": stable_id(cluster.name, node, "smbios"),
                "vmId": stable_id(cluster.name, node, "arc-vmid"),
                "cloudMetadata": {"provider": "AzSHCI"},
                "parentClusterResourceId": cluster_id,
                "detectedProperties": {"manufacturer": "hcibenefit lab", "model": "Simulated node"},
            },
        }
        self._add(body, TABLE_RESOURCES, group)

    def _arc_vm_management(self, cluster: str, group: str, spec: AzureClusterSpec) -> str:
        """The resource bridge and the custom location it serves; returns the custom location's id."""
        bridge_id = self._rid(group, f"Microsoft.ResourceConnector/appliances/{cluster}-arcbridge")
        location_id = self._rid(group, f"Microsoft.ExtendedLocation/customLocations/{cluster}-cl")
        if spec.resource_bridge != "none":
            self._add(
                {
                    "id": bridge_id,
                    "name": f"{cluster}-arcbridge",
                    "type": "Microsoft.ResourceConnector/appliances",
                    "location": LOCATION,
                    "tags": {},
                    "properties": {
                        "distro": "AKSEdge",
                        "infrastructureConfig": {"provider": "HCI"},
                        "provisioningState": "Succeeded",
                        "status": spec.resource_bridge,
                        "version": "1.4.1",
                    },
                },
                TABLE_RESOURCES,
                group,
            )
        self._add(
            {
                "id": location_id,
                "name": f"{cluster}-cl",
                "type": "Microsoft.ExtendedLocation/customLocations",
                "location": LOCATION,
                "tags": {},
                "properties": {
                    "hostResourceId": bridge_id,
                    "hostType": "Kubernetes",
                    "namespace": "azure-local",
                    "displayName": f"{cluster}-cl",
                    "provisioningState": "Succeeded",
                    "clusterExtensionIds": [
                        f"{bridge_id}/providers/Microsoft.KubernetesConfiguration/extensions/vmss-hci"
                    ],
                },
            },
            TABLE_RESOURCES,
            group,
        )
        return location_id

    def _arc_vm(
        self, vm: ProjectedVM, spec: AzureVMSpec, group: str, cluster_id: str, location_id: str
    ) -> None:
        machine_id = self._rid(group, f"Microsoft.HybridCompute/machines/{vm.name}")
        licensed = spec.license_status
        if licensed == AUTO:
            licensed = license_status_name(vm.guest_license) if vm.guest_license is not None else "none"
        agent = licensed != "none"
        properties: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "status": "Connected" if agent and vm.state == "Running" else "Disconnected",
            "lastStatusChange": iso(self.reset_at - dt.timedelta(hours=1)),
            "agentVersion": "1.45.02664.1814" if agent else None,
            "osName": "windows",
            "osType": "windows",
            "osSku": vm.os,
            "vmUuid": stable_id(vm.cluster, vm.name, "smbios"),
            "vmId": stable_id(vm.cluster, vm.name, "arc-vmid"),
            "parentClusterResourceId": cluster_id,
            "detectedProperties": {"manufacturer": "Microsoft Corporation", "model": "Virtual Machine"},
        }
        if agent:
            properties["licenseProfile"] = {
                "licenseStatus": licensed,
                "licenseChannel": "Volume:GVLK",
                "softwareAssurance": {"softwareAssuranceCustomer": False},
            }
        self._add(
            {
                "id": machine_id,
                "name": vm.name,
                "type": "Microsoft.HybridCompute/machines",
                "kind": "HCI",
                "location": LOCATION,
                "tags": {},
                "identity": {"type": "SystemAssigned", "principalId": stable_id(vm.name, "principal")},
                "properties": properties,
            },
            TABLE_RESOURCES,
            group,
        )
        power = spec.power_state if spec.power_state != AUTO else POWER_STATE.get(vm.state, "Unknown")
        hyperv_id = {AUTO: vm.hyperv_id, "stale": stable_id(vm.cluster, vm.name, "previous"), "absent": None}[
            spec.hyperv_id
        ]
        instance: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "hardwareProfile": {"vmSize": "Custom", "processors": 4, "memoryMB": 8192},
            "osProfile": {
                "computerName": vm.name,
                "adminUsername": "labadmin",
                "windowsConfiguration": {"provisionVMAgent": True, "provisionVMConfigAgent": agent},
            },
            "securityProfile": {"enableTPM": True, "uefiSettings": {"secureBootEnabled": True}},
            "storageProfile": {
                "imageReference": {
                    "id": self._rid(
                        f"rg-{vm.cluster}", "Microsoft.AzureStackHCI/marketplaceGalleryImages/win11-23h2-avd"
                    )
                },
                "osDisk": {"osType": "Windows"},
            },
            "networkProfile": {
                "networkInterfaces": [
                    {"id": self._rid(group, f"Microsoft.AzureStackHCI/networkInterfaces/{vm.name}-nic")}
                ]
            },
            "status": {"powerState": power, "provisioningStatus": {"status": "Succeeded"}},
            "guestAgentInstallStatus": {
                "status": "Succeeded" if agent else "Failed",
                "vmUuid": stable_id(vm.cluster, vm.name, "smbios"),
            },
            "vmId": stable_id(vm.cluster, vm.name, "arc-vmid"),
            "resourceUid": stable_id(vm.cluster, vm.name, "resource-uid"),
            "hostNodeName": (spec.host_node or vm.node).upper(),
            "hostNodeIpAddress": "10.77.0."
            + str(1 + sum(map(ord, (spec.host_node or vm.node).lower())) % 250),
            "createFromLocal": False,
        }
        if hyperv_id is not None:
            instance["hyperVVmId"] = hyperv_id
        self._add(
            {
                "id": f"{machine_id}/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default",
                "name": "default",
                "type": "Microsoft.AzureStackHCI/virtualMachineInstances",
                "extendedLocation": {"name": location_id, "type": "CustomLocation"},
                "systemData": self._system_data(),
                "properties": instance,
            },
            TABLE_EXTENSIBILITY,
            group,
        )

    def _session_host(self, vm_name: str, pool: str, machine_id: str, status: str, failed: list[str]) -> None:
        name = f"{vm_name}.lab.test"
        failing = {c.casefold() for c in failed}
        # The checks the service runs (the enum's "currently enabled" ones), in its order.
        names = ["DomainJoinedCheck", "SxSStackListenerCheck", "MetaDataServiceCheck", "MonitoringAgentCheck"]
        names += [c for c in failed if c not in names]
        messages = {
            "metadataservicecheck": "metadata service is not accessible",
            "domainjoinedcheck": "the session host is not joined to a domain",
        }
        self._add(
            {
                "id": self._rid(
                    AVD_RESOURCE_GROUP,
                    f"Microsoft.DesktopVirtualization/hostPools/{pool}/sessionHosts/{name}",
                ),
                "name": f"{pool}/{name}",
                "type": "Microsoft.DesktopVirtualization/hostPools/sessionhosts",
                "location": LOCATION,
                "tags": {},
                "properties": {
                    "objectId": stable_id(vm_name, "session-object"),
                    "resourceId": machine_id,
                    "virtualMachineId": stable_id(vm_name, "session-vm"),
                    "status": status,
                    "statusTimestamp": iso(self.now),
                    "lastHeartBeat": iso(self.now - dt.timedelta(minutes=1)),
                    "agentVersion": "1.0.10004.100",
                    "sxSStackVersion": "rdp-sxs250130001",
                    "osVersion": "10.0.22631.4890",
                    "allowNewSession": True,
                    "sessions": 0,
                    "updateState": "Succeeded",
                    "updateErrorMessage": "",
                    "friendlyName": vm_name,
                    "sessionHostHealthCheckResults": [
                        {
                            "healthCheckName": check,
                            "healthCheckResult": "HealthCheckFailed"
                            if check.casefold() in failing
                            else "HealthCheckSucceeded",
                            "additionalFailureDetails": {
                                "message": messages.get(check.casefold(), f"{check} failed")
                                if check.casefold() in failing
                                else "",
                                "errorCode": -2147467259 if check.casefold() in failing else 0,
                                "lastHealthCheckDateTime": iso(self.now),
                            },
                        }
                        for check in names
                    ],
                },
            },
            TABLE_DESKTOP,
            AVD_RESOURCE_GROUP,
        )

    def _host_pools(self) -> None:
        """Every host pool a VM names or the fleet's azure.host_pools lists, with its members that are not
        fleet VMs (Azure VMs, session hosts whose Arc machine is gone). Host pools live in the fleet's
        subscription, in one AVD resource group."""
        azure = self.state.spec.azure
        names = {v.azure.host_pool for c in self.state.spec.clusters for v in c.vms if v.azure.host_pool}
        names.update(azure.host_pools)
        for pool in sorted(names):
            self._add(
                {
                    "id": self._rid(AVD_RESOURCE_GROUP, f"Microsoft.DesktopVirtualization/hostPools/{pool}"),
                    "name": pool,
                    "type": "Microsoft.DesktopVirtualization/hostPools",
                    "location": LOCATION,
                    "tags": {},
                    "systemData": self._system_data(),
                    "properties": {
                        "hostPoolType": "Pooled",
                        "loadBalancerType": "BreadthFirst",
                        "maxSessionLimit": 16,
                        "preferredAppGroupType": "Desktop",
                        "validationEnvironment": False,
                        "friendlyName": pool,
                    },
                },
                TABLE_RESOURCES,
                AVD_RESOURCE_GROUP,
            )
            members = azure.host_pools.get(pool)
            if members is None:
                continue
            for name in members.azure_vms:
                vm_id = self._rid(AVD_RESOURCE_GROUP, f"Microsoft.Compute/virtualMachines/{name}")
                self._session_host(name, pool, vm_id, "Available", [])
            for name in members.stale_hosts:
                gone = self._rid(AVD_RESOURCE_GROUP, f"Microsoft.HybridCompute/machines/{name}")
                self._session_host(name, pool, gone, "Unavailable", ["MetaDataServiceCheck"])

    def _unmanaged(self, name: str) -> None:
        """A cluster registered in Azure that no inventory lists: only its Azure resource exists."""
        group = resource_group(name, AzureClusterSpec())
        body_nodes = [f"{name}-n1", f"{name}-n2"]
        self._add(
            {
                "id": self._rid(group, f"Microsoft.AzureStackHCI/clusters/{name}"),
                "name": name,
                "type": "Microsoft.AzureStackHCI/clusters",
                "kind": "AzureLocal",
                "location": LOCATION,
                "tags": {},
                "properties": {
                    "provisioningState": "Succeeded",
                    "status": "ConnectedRecently",
                    "connectivityStatus": "Connected",
                    "registrationTimestamp": iso(self.reset_at - dt.timedelta(days=40)),
                    "lastSyncTimestamp": iso(self.reset_at - dt.timedelta(hours=3)),
                    "desiredProperties": {"windowsServerSubscription": "Enabled", "diagnosticLevel": "Basic"},
                    "reportedProperties": {
                        "clusterName": name,
                        "clusterVersion": BUILDS["23H2"][0],
                        "imdsAttestation": "Enabled",
                        "nodes": [
                            {
                                "name": n.upper(),
                                "id": i + 1,
                                "osVersion": f"10.0.{BUILDS['23H2'][1]}",
                                "windowsServerSubscription": "Enabled",
                            }
                            for i, n in enumerate(body_nodes)
                        ],
                    },
                },
            },
            TABLE_RESOURCES,
            group,
        )


def cluster_world_key(state: FleetState, name: str) -> tuple[Any, ...]:
    """All the Azure view takes from one cluster's live state: the world is rebuilt when this changes, and a
    lab served by several processes copies a cluster for its Azure view only then (lab/shards.py)."""
    with state.lock:
        cluster = state.clusters[name]
        return (
            (cluster.name, cluster.last_sync, cluster.registration),
            tuple((state.node(n).name, state.node(n).attestation_switch_id) for n in cluster.nodes),
            tuple((v.name, v.node, v.state, v.guest.license_status) for v in state.vms_of_cluster(name)),
        )


def build_world(state: FleetState, reset_at: dt.datetime, now: dt.datetime) -> AzureWorld:
    return WorldBuilder(state, reset_at, now).build()


def graph_row(resource: ArmResource, host_fields: bool) -> dict[str, Any]:
    """The resource as a Resource Graph row: lower-case type, subscriptionId/resourceGroup columns.

    Without ``host_fields`` a VM instance row lacks the 2025-06-01-preview fields, as an index of
    API 2024-01-01 would (whether Azure's index carries them is unverified).
    """
    body = resource.body
    properties = dict(body.get("properties") or {})
    if body["type"].lower().endswith("/virtualmachineinstances") and not host_fields:
        for key in HOST_FIELDS:
            properties.pop(key, None)
    return {
        "id": body["id"],
        "name": body["name"],
        "type": body["type"].lower(),
        "kind": body.get("kind") or "",
        "location": body.get("location") or "",
        "subscriptionId": resource.subscription,
        "resourceGroup": resource.resource_group,
        "tags": body.get("tags") or {},
        "properties": properties,
        "extendedLocation": body.get("extendedLocation"),
    }


def selected_by_query(resource: ArmResource) -> bool:
    """Whether hcibenefit's inventory query (azure/query.py) selects the resource: the lab evaluates no KQL,
    so its where clauses are restated here. Host pools, Azure VMs and their session hosts are in Azure
    but not in the query's answer."""
    body = resource.body
    kind = body["type"].lower()
    props = body.get("properties") or {}
    if kind == "microsoft.hybridcompute/machines":
        provider = str((props.get("cloudMetadata") or {}).get("provider") or "")
        return str(body.get("kind") or "").lower() == "hci" or provider.lower() == "azshci"
    if kind.endswith("/sessionhosts"):
        return "/providers/microsoft.hybridcompute/machines/" in str(props.get("resourceId") or "").lower()
    return kind in (
        "microsoft.azurestackhci/clusters",
        "microsoft.extendedlocation/customlocations",
        "microsoft.resourceconnector/appliances",
        "microsoft.azurestackhci/virtualmachineinstances",
    )


def arm_body(resource: ArmResource, api_version: str) -> dict[str, Any]:
    """The resource as ``GET {id}?api-version=`` returns it for that version."""
    body = dict(resource.body)
    # Compare the dates: a later stable "2025-09-01" carries the fields, "2024-01-01" does not.
    if body["type"].lower().endswith("/virtualmachineinstances") and api_version[:10] < HOST_FIELDS_API[:10]:
        body["properties"] = {k: v for k, v in body["properties"].items() if k not in HOST_FIELDS}
    return body
