"""What our host scripts would print on a real node, computed from the lab's FleetState.

One handler per script id. Each mirrors its .ps1 file: the same JSON shape, and the same effects and
error texts as the cmdlets it calls (docs/platform.md). Where the public record does not say what a cmdlet
prints, the text here is marked as an assumption.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hcibenefit.lab.arm.model import cluster_resource_id
from hcibenefit.lab.binding import Param
from hcibenefit.lab.state import (
    ATTESTATION_VALIDITY,
    BUILD_BY_VERSION,
    FIREWALL_RULES,
    GUEST_NIC,
    HOST_IMDS_ADDRESS,
    HOST_SWITCH,
    SWITCH_NOTES,
    VM,
    FleetState,
    Nic,
    Node,
    Switch,
    now,
    stable_id,
)
from hcibenefit.lab.wsman.executor import PipelineOutput

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
NOT_RECOGNIZED = (
    "The term '{0}' is not recognized as the name of a cmdlet, function, script file, or operable program. "
    "Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
)
# Messages quoted from Az.StackHCI's source (docs/platform.md §3).
NOT_REGISTERED = "The cluster is not registered with Azure. Register the cluster using Register-AzStackHCI and then try again."
NODES_OFFLINE = (
    "One or more servers in your cluster are offline. Check that all your servers are up and then try again."
)
IMDS_NOT_ACTIVE = (
    "The IMDS Service on {0} needs to be activated. This is required before guests can be configured. "
    "Run Enable-AzStackHCIAttestation cmdlet."
)
LEGACY_OFF = (
    "The command {0} is required only for Attestation with Legacy OS Support (V1). "
    "Legacy OS Support for IMDS Attestation needs to be enabled."
)


@dataclass
class Invocation:
    state: FleetState
    node: Node
    params: dict[str, Any]
    out: PipelineOutput


Handler = Callable[[Invocation], None]


@dataclass(frozen=True)
class Emulation:
    signature: tuple[Param, ...]
    handler: Handler


class CmdletError(Exception):
    """An error record a cmdlet inside our script would raise; the script's try/catch records it."""

    def __init__(self, message: str, error_id: str, category: str = "NotSpecified") -> None:
        super().__init__(message)
        self.message = message
        self.error_id = error_id
        self.category = category

    def record(self) -> dict[str, str]:
        return {"message": self.message, "error_id": self.error_id, "category": self.category}


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def _emit(out: PipelineOutput, document: dict[str, Any]) -> None:
    # ConvertTo-Json -Compress: one string on the output stream.
    out.write_output(json.dumps(document, separators=(",", ":")))


def _require_module(inv: Invocation, cmdlet: str) -> None:
    if inv.node.module is None:
        raise CmdletError(NOT_RECOGNIZED.format(cmdlet), "CommandNotFoundException", "ObjectNotFound")


def _find_vm(inv: Invocation, name: str, cmdlet: str) -> VM:
    vm = inv.state.vm(name)
    if vm is None or vm.node.lower() != inv.node.name.lower():
        # Hyper-V's Get-VM text; a VM owned by another node is invisible here, as on a real host.
        raise CmdletError(
            f'Hyper-V was unable to find a virtual machine with name "{name}".',
            f"InvalidParameter,Microsoft.HyperV.PowerShell.Commands.{cmdlet}",
            "InvalidArgument",
        )
    return vm


# --- host-facts --------------------------------------------------------------------------------------


def _switch_record(switch: Switch | None) -> dict[str, Any] | None:
    if switch is None:
        return None
    return {"name": switch.name, "id": switch.id, "switch_type": switch.switch_type, "notes": switch.notes}


_EDITION_IDS = {"ServerRdsh": "175", "Enterprise": "4", "Professional": "48", "ServerDatacenter": "8"}


def _vm_record(inv: Invocation, vm: VM, include_guest_os: bool) -> dict[str, Any]:
    running = vm.state == "Running"
    nics = [
        {
            "name": nic.name,
            "switch_name": nic.switch_name,
            "connected": nic.connected,
            "mac_address": nic.mac,
            "ip_addresses": _guest_addresses(vm, nic) if running and vm.kvp else [],
        }
        for nic in vm.nics
    ]
    services = [
        {
            "name": name,
            "enabled": enabled,
            "primary_status": ("OK" if running else "No Contact") if enabled else "",
        }
        for name, enabled in (
            ("Guest Service Interface", vm.gsi),
            ("Heartbeat", True),
            ("Key-Value Pair Exchange", vm.kvp),
            ("Shutdown", True),
            ("Time Synchronization", True),
            ("VSS", True),
        )
    ]
    kvp: dict[str, str] | None = None
    if include_guest_os:
        kvp = {}
        if running and vm.kvp:
            kvp = {
                "OSName": vm.os,
                "OSVersion": "10.0.22631" if "11" in vm.os else "10.0.20348",
                "OSBuildNumber": "22631" if "11" in vm.os else "20348",
                # Numeric product type; only 175 (PRODUCT_SERVERRDSH) is documented (docs/platform.md).
                "OSEditionId": _EDITION_IDS.get(vm.edition, "0"),
                "ProductType": "3" if vm.edition.startswith("Server") and vm.edition != "ServerRdsh" else "1",
                "FullyQualifiedDomainName": f"{vm.name}.lab.test",
            }
    attestation = None
    if inv.node.module is not None:
        status = inv.state.attestation_status(vm)
        if status is not None:
            attestation = {
                "status": status[0],
                "supported_versions": status[1],
                "attestation_host": inv.node.name.upper(),
            }
    return {
        "id": vm.id,
        "name": vm.name,
        "generation": vm.generation,
        "state": vm.state,
        "is_clustered": True,
        "network_adapters": nics,
        "integration_services": services,
        "kvp": kvp,
        "attestation": attestation,
    }


def _guest_addresses(vm: VM, nic: Nic) -> list[str]:
    octets = vm.id.replace("-", "")
    third, fourth = int(octets[:2], 16) % 250 + 1, int(octets[2:4], 16) % 250 + 1
    if nic.name == GUEST_NIC:
        # No DHCP on the IMDS switch: the guest gives itself an APIPA address (docs/platform.md, inference).
        return [f"169.254.{third}.{fourth}"] if nic.connected else []
    return [f"10.20.{third}.{fourth}"]


def host_facts(inv: Invocation) -> None:
    state, node = inv.state, inv.node
    cluster = state.clusters[node.cluster]
    registered = cluster.registration == "Registered"
    any_enabled = any(state.node(n).attestation_switch_id != EMPTY_GUID for n in cluster.nodes)
    facts: dict[str, Any] = {
        "schema": "host-facts/1",
        "computer_name": node.name.upper(),
        "collected_at": _iso(now()),
        "os": {
            "caption": "Microsoft Azure Stack HCI",
            "build": BUILD_BY_VERSION[cluster.version],
            "version": f"10.0.{BUILD_BY_VERSION[cluster.version]}",
        },
        "module": {"name": "Az.StackHCI", "version": node.module} if node.module else None,
        "registration": {
            "cluster_status": "Clustered",
            "registration_status": cluster.registration,
            "connection_status": "Connected" if registered else "NotYet",
            # Empty when the cluster is not registered (docs/platform.md §2).
            "imds_attestation": ("Enabled" if any_enabled else "Disabled") if registered else "",
            "last_connected": _iso(cluster.last_sync),
            "next_sync": _iso(cluster.last_sync + dt.timedelta(hours=12)) if cluster.last_sync else None,
            "azure_resource_name": cluster.name if registered else "",
            # The id the lab's ARM serves; Get-AzureStackHCI spells it with a capital S.
            "azure_resource_uri": "/S" + cluster_resource_id(state, cluster.name)[2:] if registered else "",
        },
        "attestation": {
            "status": node.attestation,
            "expiration": _iso(node.expiration),
            "switch_id": node.attestation_switch_id,
            "legacy_os_support": ("Enabled" if node.legacy_os_support else "Disabled")
            if cluster.version != "22H2"
            else None,
        },
        "switch": _switch_record(node.switch if node.switch and node.switch.name == HOST_SWITCH else None),
        "attestation_switch": _switch_record(
            node.switch if node.switch and node.switch.id == node.attestation_switch_id else None
        ),
        "host_vnic": {
            "name": HOST_SWITCH,
            "addresses": [{"address": node.host_vnic_address, "prefix_length": 16}]
            if node.host_vnic_address
            else [],
        }
        if node.switch is not None and node.switch.name == HOST_SWITCH
        else None,
        "firewall": [
            {
                "name": rule,
                "enabled": node.firewall_enabled[rule],
                "direction": "Outbound" if rule.endswith("-Out") else "Inbound",
                "action": "Allow" if "Allow" in rule else "Block",
            }
            for rule in FIREWALL_RULES
            if node.switch is not None
        ],
        "cluster": {
            "nodes": [
                {"name": n.upper(), "state": "Down" if state.node(n).faults.down else state.node(n).state}
                for n in cluster.nodes
            ],
        },
        "vms": [_vm_record(inv, vm, bool(inv.params["IncludeGuestOs"])) for vm in state.vms_on(node.name)],
        "problems": [],
    }
    _emit(inv.out, facts)


# --- VM benefits ------------------------------------------------------------------------------------


def _add_guest_nic(inv: Invocation, name: str) -> None:
    _require_module(inv, "Add-AzStackHCIVMAttestation")
    vm = _find_vm(inv, name, "GetVM")
    node, cluster = inv.node, inv.state.clusters[inv.node.cluster]
    if node.attestation != "Active":
        raise CmdletError(IMDS_NOT_ACTIVE.format(node.name.upper()), "Exception,Add-AzStackHCIVMAttestation")
    if cluster.version != "22H2" and not node.legacy_os_support:
        # Az.StackHCI only says so on the verbose stream and changes nothing (docs/platform.md §3).
        inv.out.write_verbose(LEGACY_OFF.format("Add-AzStackHCIVMAttestation"))
        return
    if node.switch is None or node.switch.name != HOST_SWITCH:
        # Assumption: the exact text is not public; PSSRC names the failure "Missing host adapter."
        raise CmdletError(
            "Unable to configure IMDS Service on VM. Missing host adapter.",
            "Exception,Add-AzStackHCIVMAttestation",
        )
    if vm.imds_nic() is not None:
        return
    if vm.generation == 1 and vm.state != "Off":
        # Hyper-V cannot hot-add a synthetic NIC to a Generation 1 VM (docs/platform.md §4).
        raise CmdletError(
            "Unable to configure IMDS Service on VM. Failed to add device 'Synthetic Ethernet Port'. "
            "The operation cannot be performed while the virtual machine is in its current state.",
            "Exception,Add-AzStackHCIVMAttestation",
            "InvalidOperation",
        )
    vm.nics.append(Nic(GUEST_NIC, HOST_SWITCH, f"00155D{vm.id[:4].upper()}01"))


def _connect_guest_nic(inv: Invocation, name: str) -> None:
    vm = _find_vm(inv, name, "ConnectVMNetworkAdapter")
    nic = vm.imds_nic()
    if nic is None:
        raise CmdletError(
            f"Hyper-V was unable to find a network adapter named '{GUEST_NIC}' on virtual machine '{name}'.",
            "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.ConnectVMNetworkAdapter",
            "InvalidArgument",
        )
    if inv.node.switch is None or inv.node.switch.name != HOST_SWITCH:
        raise CmdletError(
            f'Hyper-V was unable to find a virtual switch with name "{HOST_SWITCH}".',
            "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.ConnectVMNetworkAdapter",
            "InvalidArgument",
        )
    nic.switch_name = HOST_SWITCH


def _set_gsi(inv: Invocation, name: str, enabled: bool) -> None:
    vm = _find_vm(inv, name, "EnableVMIntegrationService" if enabled else "DisableVMIntegrationService")
    vm.gsi = enabled


def _remove_guest_nic(inv: Invocation, name: str) -> None:
    _require_module(inv, "Remove-AzStackHCIVMAttestation")
    vm = _find_vm(inv, name, "GetVM")
    nic = vm.imds_nic()
    if nic is not None and vm.generation == 1 and vm.state != "Off":
        raise CmdletError(
            "Unable to configure IMDS Service on VM. Failed to remove device 'Synthetic Ethernet Port'. "
            "The operation cannot be performed while the virtual machine is in its current state.",
            "Exception,Remove-AzStackHCIVMAttestation",
            "InvalidOperation",
        )
    if nic is not None:
        vm.nics.remove(nic)


def _run_actions(
    inv: Invocation, schema: str, actions: list[tuple[str, str, Callable[[Invocation, str], None]]]
) -> None:
    results = []
    with inv.state.lock:
        for param, action, effect in actions:
            for name in inv.params[param] or []:
                try:
                    effect(inv, name)
                    results.append({"vm": name, "action": action, "ok": True, "error": None})
                except CmdletError as exc:
                    results.append({"vm": name, "action": action, "ok": False, "error": exc.record()})
    _emit(inv.out, {"schema": schema, "computer_name": inv.node.name.upper(), "results": results})


def vm_benefits_enable(inv: Invocation) -> None:
    _run_actions(
        inv,
        "vm-benefits-enable/1",
        [
            ("NicVMName", "add-guest-nic", _add_guest_nic),
            ("ReconnectVMName", "connect-guest-nic", _connect_guest_nic),
            ("GsiVMName", "enable-guest-service-interface", lambda i, n: _set_gsi(i, n, True)),
        ],
    )


def vm_benefits_disable(inv: Invocation) -> None:
    _run_actions(
        inv,
        "vm-benefits-disable/1",
        [
            ("NicVMName", "remove-guest-nic", _remove_guest_nic),
            ("GsiVMName", "disable-guest-service-interface", lambda i, n: _set_gsi(i, n, False)),
        ],
    )


# --- node attestation ------------------------------------------------------------------------------


def _attestation_status(node: Node) -> dict[str, Any]:
    return {
        "status": node.attestation,
        "expiration": _iso(node.expiration),
        "switch_id": node.attestation_switch_id,
    }


def _enable_node(inv: Invocation) -> None:
    _require_module(inv, "Enable-AzStackHCIAttestation")
    state, node = inv.state, inv.node
    cluster = state.clusters[node.cluster]
    if cluster.registration != "Registered":
        raise CmdletError(NOT_REGISTERED, "Exception,Enable-AzStackHCIAttestation")
    if any(state.node(n).state != "Up" or state.node(n).faults.down for n in cluster.nodes):
        raise CmdletError(NODES_OFFLINE, "Exception,Enable-AzStackHCIAttestation")
    if node.switch is not None and (node.switch.name != HOST_SWITCH or node.switch.switch_type != "Internal"):
        # Assumption: Az.StackHCI validates the switch it finds by id and refuses an altered one.
        raise CmdletError(
            f"Unable to configure IMDS Service on host. The virtual switch {node.switch.name!r} "
            f"({node.switch.switch_type}) does not match the IMDS attestation template.",
            "Exception,Enable-AzStackHCIAttestation",
        )
    if node.switch is None:
        node.switch = Switch(
            HOST_SWITCH, stable_id(cluster.name, node.name, "imds-switch"), "Internal", SWITCH_NOTES
        )
    node.attestation_switch_id = node.switch.id
    node.host_vnic_address = HOST_IMDS_ADDRESS
    node.firewall_enabled = dict.fromkeys(FIREWALL_RULES, True)
    node.attestation = "Active"
    node.expiration = now() + ATTESTATION_VALIDITY
    cluster.last_sync = now()  # Enable ends with Sync-AzureStackHCI


def _sync_node(inv: Invocation) -> None:
    state, node = inv.state, inv.node
    cluster = state.clusters[node.cluster]
    if cluster.registration != "Registered":
        raise CmdletError(NOT_REGISTERED, "Exception,Sync-AzureStackHCI")
    cluster.last_sync = now()
    if node.attestation in ("Active", "Expired") and node.attestation_switch_id != EMPTY_GUID:
        node.attestation = "Active"
        node.expiration = now() + ATTESTATION_VALIDITY


def _node_operation(inv: Invocation, schema: str, effect: Callable[[Invocation], None]) -> None:
    outcome: dict[str, Any] = {
        "schema": schema,
        "computer_name": inv.node.name.upper(),
        "ok": True,
        "error": None,
    }
    with inv.state.lock:
        try:
            effect(inv)
        except CmdletError as exc:
            outcome["ok"] = False
            outcome["error"] = exc.record()
        outcome["status"] = _attestation_status(inv.node)
    _emit(inv.out, outcome)


def host_attestation_enable(inv: Invocation) -> None:
    _node_operation(inv, "host-attestation-enable/1", _enable_node)


def host_sync(inv: Invocation) -> None:
    _node_operation(inv, "host-sync/1", _sync_node)


_VM_LISTS = (
    Param("NicVMName", "string[]", default=[]),
    Param("ReconnectVMName", "string[]", default=[]),
    Param("GsiVMName", "string[]", default=[]),
)

EMULATIONS: dict[str, Emulation] = {
    "host-facts/1": Emulation((Param("IncludeGuestOs", "bool", default=True),), host_facts),
    "vm-benefits-enable/1": Emulation(_VM_LISTS, vm_benefits_enable),
    "vm-benefits-disable/1": Emulation((_VM_LISTS[0], _VM_LISTS[2]), vm_benefits_disable),
    "host-attestation-enable/1": Emulation((), host_attestation_enable),
    "host-sync/1": Emulation((), host_sync),
}
