"""The in-box AzureStackHCI module (closed source; no Learn reference pages exist).

Source: cmdlets.md 9.0-9.4, built from Learn articles (azure-verification,
azure-benefits, manage-azure-registration), Az.StackHCI's source and Windows Admin Center's module.
Property names and enum names are documented there; enum numbers, output type names and error texts
are not (each marked Assumption where used).
"""

from __future__ import annotations

from typing import Any

from hcibenefit.lab.arm.model import cluster_resource_id
from hcibenefit.lab.machines import NodeMachine, is_node
from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.values import EMPTY_GUID, EnumType, PSDateTime, PSGuid, PSObject
from hcibenefit.lab.state import ATTESTATION_VALIDITY, Node
from hcibenefit.lab.state import EMPTY_GUID as EMPTY_ID

SOURCE = "cmdlets.md 9.{} (Learn articles azure-verification / azure-benefits; no reference page)"
NS = "Microsoft.AzureStack.HCI"
# Assumption: enum numbering (WAC reads RegistrationStatus.value__ 0 as Registered).
REGISTRATION_STATUS = EnumType(f"{NS}.RegistrationStatus", {"Registered": 0, "NotYet": 1, "OutOfPolicy": 2})
CLUSTER_STATUS = EnumType(f"{NS}.ClusterStatus", {"NotYet": 0, "Clustered": 1, "OutOfPolicy": 2})
CONNECTION_STATUS = EnumType(f"{NS}.ConnectionStatus", {"NotYet": 0, "Connected": 1, "Disconnected": 2})
ON_OFF = EnumType(f"{NS}.ImdsAttestationStatus", {"Disabled": 0, "Enabled": 1})
NODE_STATUS = EnumType(
    f"{NS}.ImdsAttestationNodeStatus", {"Inactive": 0, "Active": 1, "Expired": 2, "Error": 3}
)
LEGACY = EnumType(f"{NS}.AttestationLegacyOsSupport", {"Disabled": 0, "Enabled": 1})
DIAGNOSTIC_LEVEL = EnumType(f"{NS}.DiagnosticLevel", {"Off": 0, "Basic": 1, "Enhanced": 2})
NOT_REGISTERED = "The cluster is not registered with Azure. Register the cluster using Register-AzStackHCI and then try again."


def _node(call: Call) -> NodeMachine:
    machine = call.machine
    assert isinstance(machine, NodeMachine)
    return machine


def _date(value: Any) -> PSDateTime | None:
    return None if value is None else PSDateTime(value, "Local")


def registration_object(call: Call) -> PSObject:
    machine = _node(call)
    state, cluster = machine.state, machine.cluster
    registered = cluster.registration == "Registered"
    any_enabled = any(state.node(n).attestation_switch_id != EMPTY_ID for n in cluster.nodes)
    # The id the lab's ARM serves; Get-AzureStackHCI spells it with a capital S.
    uri = "/S" + cluster_resource_id(state, cluster.name)[2:]
    last = cluster.last_sync
    return PSObject(
        f"{NS}.Billing.Management.PowerShell.HciRegistrationInfo",  # Assumption: type name
        {
            "ClusterStatus": CLUSTER_STATUS("Clustered"),
            "RegistrationStatus": REGISTRATION_STATUS(cluster.registration),
            "RegistrationDate": _date(last) if registered else None,
            "AzureResourceName": cluster.name if registered else "",
            "AzureResourceUri": uri if registered else "",
            "ConnectionStatus": CONNECTION_STATUS("Connected" if registered else "NotYet"),
            "LastConnected": _date(last),
            "NextSync": _date(last + cv_hours(12)) if last is not None else None,
            # Empty when the cluster is not registered (cmdlets.md 9.1).
            "IMDSAttestation": (ON_OFF("Enabled" if any_enabled else "Disabled")) if registered else None,
            "DiagnosticLevel": DIAGNOSTIC_LEVEL("Basic"),
            "Region": "westeurope",
        },
    )


def cv_hours(hours: int) -> Any:
    import datetime as dt

    return dt.timedelta(hours=hours)


def attestation_object(call: Call, node: Node) -> PSObject:
    cluster = call.state.clusters[node.cluster]
    props: dict[str, Any] = {
        "ComputerName": node.name.upper(),
        "Status": NODE_STATUS(node.attestation),
        "Expiration": _date(node.expiration),
        "AttestationSwitchId": PSGuid(node.attestation_switch_id),
    }
    if cluster.supports_v2:
        # Present only on V2-capable (23H2+) hosts; Az.StackHCI uses its presence to detect them (9.2).
        props["LegacyOsSupport"] = LEGACY("Enabled" if node.legacy_os_support else "Disabled")
    return PSObject(f"{NS}.Billing.Management.PowerShell.HciAttestationInfo", props)  # Assumption: type name


@cmdlet(
    "Get-AzureStackHCI",
    module="AzureStackHCI",
    source=SOURCE.format("1"),
    type_name=f"{NS}.Billing.Management.PowerShell.GetAzureStackHCICommand",  # Assumption
    available=is_node,
)
def get_azure_stack_hci(call: Call) -> None:
    with call.state.lock:
        call.emit(registration_object(call))


@cmdlet(
    "Get-AzureStackHCIAttestation",
    module="AzureStackHCI",
    source=SOURCE.format("2"),
    type_name=f"{NS}.Billing.Management.PowerShell.GetAzureStackHCIAttestationCommand",  # Assumption
    available=is_node,
    params=[P("ComputerName", "string", 0)],
)
def get_azure_stack_hci_attestation(call: Call) -> None:
    machine = _node(call)
    target = call.params["ComputerName"]
    with call.state.lock:
        node = machine.node
        if target is not None and target.casefold() not in (node.name.casefold(), "localhost", "."):
            from hcibenefit.lab.powershell.errors import NotEmulated

            raise NotEmulated("Get-AzureStackHCIAttestation -ComputerName for another node")
        call.emit(attestation_object(call, node))


def renew(call: Call, node: Node) -> None:
    now = call.machine.clock.now()
    node.attestation = "Active"
    node.expiration = now + ATTESTATION_VALIDITY


@cmdlet(
    "Sync-AzureStackHCI",
    module="AzureStackHCI",
    source=SOURCE.format("3"),
    type_name=f"{NS}.Billing.Management.PowerShell.SyncAzureStackHCICommand",  # Assumption
    available=is_node,
)
def sync_azure_stack_hci(call: Call) -> None:
    machine = _node(call)
    with call.state.lock:
        cluster = machine.cluster
        if cluster.registration != "Registered":
            # Assumption: the in-box cmdlet refuses like Az.StackHCI does (text from cmdlets.md 9.8 E1).
            call.fail(
                NOT_REGISTERED,
                "NotRegistered",
                "InvalidOperation",
                exception_type="System.InvalidOperationException",
            )
        cluster.last_sync = call.machine.clock.now()
        # The certificate behind IMDS attestation is renewed at every sync (Learn azure-verification);
        # Assumption: only on nodes whose attestation was set up (a switch id), Expired becomes Active.
        for name in cluster.nodes:
            node = call.state.node(name)
            if (
                node.attestation in ("Active", "Expired")
                and node.attestation_switch_id != EMPTY_ID
                and not node.faults.down
            ):
                renew(call, node)


@cmdlet(
    "Set-AzureStackHCIAttestation",
    module="AzureStackHCI",
    source=SOURCE.format("4"),
    type_name=f"{NS}.Billing.Management.PowerShell.SetAzureStackHCIAttestationCommand",  # Assumption
    available=is_node,
    params=[P("SwitchId", "guid", mandatory=("*",))],
)
def set_azure_stack_hci_attestation(call: Call) -> None:
    node = _node(call).node
    switch_id: PSGuid = call.params["SwitchId"]
    with call.state.lock:
        node.attestation_switch_id = switch_id.text
        if switch_id == EMPTY_GUID:
            node.attestation = "Inactive"
            node.expiration = None
        elif _node(call).cluster.registration == "Registered":
            renew(call, node)


def is_registered(call: Call) -> bool:
    return _node(call).cluster.registration == "Registered"


__all__ = ["NOT_REGISTERED", "attestation_object", "cv", "is_node", "registration_object", "renew"]
