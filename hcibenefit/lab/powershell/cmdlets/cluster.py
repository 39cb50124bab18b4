"""FailoverClusters: Get-ClusterNode, Get-ClusterNetwork, Get-ClusterNetworkInterface, Get-ClusterGroup.

Sources: cmdlets.md 3.1-3.3 (Learn, Windows Server 2022 pages); property and enum types from
dsccommunity/FailoverClusterDsc's generated stubs (tests/Unit/Stubs/FailoverClusters.stubs.psm1, from
FailoverClusters 2.0.0.0); what a Partitioned network and its interfaces look like from Azure Local's
supportability TSG "Cluster network shows as 'Partitioned' after OS upgrade from 22H2 to 23H2"
(Azure/AzureLocal-Supportability, TSG/Upgrade).

The cluster is the node's own: every node of a lab cluster sees the same networks and groups. `-Name`,
`-Node` and `-Network` take wildcards, as FailoverClusters' StringCollections do in practice (Learn's
Get-ClusterResource example 7).
"""

from __future__ import annotations

from typing import Any

from hcibenefit.lab.machines import NodeMachine, is_node
from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.cmdlets.net import interfaces
from hcibenefit.lab.powershell.values import EnumType, PSObject
from hcibenefit.lab.state import VM, Cluster, FleetState, Node, stable_id

FC = "Microsoft.FailoverClusters.PowerShell"
LEARN = "https://learn.microsoft.com/powershell/module/failoverclusters/{}?view=windowsserver2022-ps"
NODE_STATE = EnumType(
    f"{FC}.ClusterNodeState", {"Unknown": -1, "Up": 0, "Down": 1, "Paused": 2, "Joining": 3}
)
NETWORK_ROLE = EnumType(
    f"{FC}.ClusterNetworkRole", {"None": 0, "Cluster": 1, "Client": 2, "ClusterAndClient": 3}
)
NETWORK_STATE = EnumType(
    f"{FC}.ClusterNetworkState", {"Unknown": -1, "Unavailable": 0, "Down": 1, "Partitioned": 2, "Up": 3}
)
INTERFACE_STATE = EnumType(
    f"{FC}.ClusterNetworkInterfaceState",
    {"Unknown": -1, "Unavailable": 0, "Failed": 1, "Unreachable": 2, "Up": 3},
)
GROUP_STATE = EnumType(
    f"{FC}.ClusterGroupState",
    {"Unknown": -1, "Online": 0, "Offline": 1, "Failed": 2, "PartialOnline": 3, "Pending": 4},
)
GROUP_TYPE = EnumType(
    f"{FC}.GroupType",
    {"Cluster": 1, "AvailableStorage": 2, "VirtualMachine": 111, "Unknown": 9999},
)
MANAGEMENT_NETWORK = "Cluster Network 1"
IMDS_NETWORK = "Cluster Network 2"
MANAGEMENT_ALIAS = "vEthernet (ConvergedSwitch(management))"


def _node_machine(call: Call) -> NodeMachine:
    machine = call.machine
    assert isinstance(machine, NodeMachine)
    return machine


def _wanted(patterns: list[str] | None, name: str) -> bool:
    return patterns is None or any(cv.wildcard_match(p, name) for p in patterns)


def _node_state(node: Node) -> str:
    return "Down" if node.faults.down else node.state


def cluster_node_object(state: FleetState, cluster: Cluster, node: Node) -> PSObject:
    index = cluster.nodes.index(node.name) + 1
    return PSObject(
        f"{FC}.ClusterNode",
        {
            "Name": node.name.upper(),
            "State": NODE_STATE(_node_state(node)),
            "Id": str(index),
            "NodeName": node.name.upper(),
            "BuildNumber": int(cluster.build),
            "Cluster": cluster.name,
        },
        string=node.name.upper(),
    )


@cmdlet(
    "Get-ClusterNode",
    module="FailoverClusters",
    source=LEARN.format("get-clusternode"),
    type_name=f"{FC}.GetNodeCommand",
    available=is_node,
    params=[P("Name", "string[]", 0)],
)
def get_cluster_node(call: Call) -> None:
    machine = _node_machine(call)
    names = call.params["Name"]
    with call.state.lock:
        cluster = machine.cluster
        for name in cluster.nodes:
            node = machine.state.node(name)
            if _wanted(names, node.name):
                call.emit(cluster_node_object(machine.state, cluster, node))


# --- networks ------------------------------------------------------------------------------------


def _has_imds_adapter(node: Node) -> bool:
    return node.switch is not None and node.host_vnic_address is not None


def _networks(state: FleetState, cluster: Cluster) -> list[PSObject]:
    """The management network every lab node shares and, where planted, the one the host IMDS adapters form.

    Assumption: a cluster network over 169.254.169.253/16 reports Address 169.254.0.0 and mask 255.255.0.0
    (the TSG's example network had IPv6 only; the IMDS adapter has IPv4 only, Az.StackHCI unbinds the rest).
    """
    found = [
        PSObject(
            f"{FC}.ClusterNetwork",
            {
                "Name": MANAGEMENT_NETWORK,
                "Role": NETWORK_ROLE("ClusterAndClient"),
                "State": NETWORK_STATE("Up"),
                "Address": "10.0.0.0",
                "AddressMask": "255.255.255.0",
                "Id": stable_id(cluster.name, "network", "management"),
                "Metric": 70240,
                "AutoMetric": True,
                "Cluster": cluster.name,
            },
            string=MANAGEMENT_NETWORK,
        )
    ]
    if cluster.imds_network != "excluded" and any(_has_imds_adapter(state.node(n)) for n in cluster.nodes):
        partitioned = cluster.imds_network == "partitioned"
        found.append(
            PSObject(
                f"{FC}.ClusterNetwork",
                {
                    "Name": IMDS_NETWORK,
                    # TSG: after the upgrade the adapter's network is a Cluster network, Partitioned (each
                    # node's IMDS switch is Internal: no node reaches another's). Role None is what
                    # Az.StackHCI's Add-HostDevicesForImds sets (cmdlets.md 9); Assumption: such a network
                    # reports Up, the cluster not monitoring it.
                    "Role": NETWORK_ROLE("Cluster" if partitioned else "None"),
                    "State": NETWORK_STATE("Partitioned" if partitioned else "Up"),
                    "Address": "169.254.0.0",
                    "AddressMask": "255.255.0.0",
                    "Id": stable_id(cluster.name, "network", "imds"),
                    "Metric": 40000,
                    "AutoMetric": True,
                    "Cluster": cluster.name,
                },
                string=IMDS_NETWORK,
            )
        )
    return found


@cmdlet(
    "Get-ClusterNetwork",
    module="FailoverClusters",
    source=LEARN.format("get-clusternetwork"),
    type_name=f"{FC}.GetClusterNetworkCommand",
    available=is_node,
    params=[P("Name", "string[]", 0)],
)
def get_cluster_network(call: Call) -> None:
    machine = _node_machine(call)
    names = call.params["Name"]
    with call.state.lock:
        for network in _networks(machine.state, machine.cluster):
            if _wanted(names, cv.to_string(network.get("Name"))):
                call.emit(network)


@cmdlet(
    "Get-ClusterNetworkInterface",
    module="FailoverClusters",
    source=LEARN.format("get-clusternetworkinterface"),
    type_name=f"{FC}.GetClusterNetworkInterfaceCommand",
    available=is_node,
    params=[P("Name", "string[]", 0), P("Node", "string[]"), P("Network", "string[]")],
)
def get_cluster_network_interface(call: Call) -> None:
    machine = _node_machine(call)
    names, nodes, networks = call.params["Name"], call.params["Node"], call.params["Network"]
    with call.state.lock:
        cluster = machine.cluster
        by_name = {cv.to_string(n.get("Name")): n for n in _networks(machine.state, cluster)}
        for node_name in cluster.nodes:
            node = machine.state.node(node_name)
            if not _wanted(nodes, node.name):
                continue
            for interface in interfaces(NodeMachine(machine.state, node)):
                if interface.hidden:
                    continue
                if interface.alias == MANAGEMENT_ALIAS:
                    network = by_name[MANAGEMENT_NETWORK]
                elif IMDS_NETWORK in by_name and interface.mac == node.host_vnic_mac:
                    network = by_name[IMDS_NETWORK]
                else:
                    continue  # excluded from the cluster (ExcludeAdaptersByFriendlyName/-Description)
                # TSG: the interface's Name is "<node> - <adapter name>", Adapter its InterfaceDescription;
                # on a Partitioned network the interfaces are Unreachable.
                name = f"{node.name.upper()} - {interface.alias}"
                if not (_wanted(names, name) and _wanted(networks, cv.to_string(network.get("Name")))):
                    continue
                partitioned = cv.to_string(network.get("State")) == "Partitioned"
                address = interface.addresses[0][0] if interface.addresses else ""
                call.emit(
                    PSObject(
                        f"{FC}.ClusterNetworkInterface",
                        {
                            "Name": name,
                            "Node": node.name.upper(),
                            "Network": network,
                            "Adapter": interface.description,
                            "AdapterId": stable_id(node.name, "adapter", interface.mac).upper(),
                            "Address": address,
                            "State": INTERFACE_STATE("Unreachable" if partitioned else "Up"),
                            "Cluster": cluster.name,
                        },
                        string=name,
                    )
                )


# --- groups --------------------------------------------------------------------------------------


def _vm_group_state(vm: VM, owner: Node) -> str:
    """Assumption (no page maps them): a running or paused VM's role is Online, an off or saved one Offline.
    A real cluster fails a Down node's roles over within seconds; the lab does not move VMs, so their roles
    stay on the Down owner as Failed."""
    if owner.faults.down:
        return "Failed"
    return "Online" if vm.state in ("Running", "Paused") else "Offline"


def _group(cluster: Cluster, name: str, kind: str, owner: PSObject, state: str) -> PSObject:
    return PSObject(
        f"{FC}.ClusterGroup",
        {
            "Name": name,
            "GroupType": GROUP_TYPE(kind),
            "OwnerNode": owner,
            "State": GROUP_STATE(state),
            "Id": stable_id(cluster.name, "group", name),
            "IsCoreGroup": kind != "VirtualMachine",
            "Cluster": cluster.name,
        },
        string=name,
    )


@cmdlet(
    "Get-ClusterGroup",
    module="FailoverClusters",
    source=LEARN.format("get-clustergroup"),
    type_name=f"{FC}.GetClusterGroupCommand",
    available=is_node,
    params=[P("Name", "string[]", 0)],
)
def get_cluster_group(call: Call) -> None:
    machine = _node_machine(call)
    names = call.params["Name"]
    state = machine.state
    with call.state.lock:
        cluster = machine.cluster
        members = [state.node(n) for n in cluster.nodes]
        core_owner = next((n for n in members if _node_state(n) == "Up"), members[0])
        groups: list[Any] = [
            _group(
                cluster, "Cluster Group", "Cluster", cluster_node_object(state, cluster, core_owner), "Online"
            ),
            _group(
                cluster,
                "Available Storage",
                "AvailableStorage",
                cluster_node_object(state, cluster, core_owner),
                "Offline",
            ),
        ]
        # Every VM of the lab is a clustered role named after the VM (Get-VM reports IsClustered), as
        # Windows Admin Center, Failover Cluster Manager and Arc VM management name the roles they create.
        for vm in sorted(state.vms_of_cluster(cluster.name), key=lambda v: v.name.casefold()):
            owner = state.node(vm.node)
            groups.append(
                _group(
                    cluster,
                    vm.name,
                    "VirtualMachine",
                    cluster_node_object(state, cluster, owner),
                    _vm_group_state(vm, owner),
                )
            )
        for group in groups:
            if _wanted(names, cv.to_string(group.get("Name"))):
                call.emit(group)
