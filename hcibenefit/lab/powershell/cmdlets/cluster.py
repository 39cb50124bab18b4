"""FailoverClusters: Get-ClusterNode.

Source: cmdlets.md 3.1 (Learn, Windows Server 2022; property types from
dsccommunity/FailoverClusterDsc's generated stubs).
"""

from __future__ import annotations

from hcibenefit.lab.machines import NodeMachine, is_node
from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.values import EnumType, PSObject

NODE_STATE = EnumType(
    "Microsoft.FailoverClusters.PowerShell.ClusterNodeState",
    {"Unknown": -1, "Up": 0, "Down": 1, "Paused": 2, "Joining": 3},
)


@cmdlet(
    "Get-ClusterNode",
    module="FailoverClusters",
    source="https://learn.microsoft.com/powershell/module/failoverclusters/get-clusternode?view=windowsserver2022-ps",
    type_name="Microsoft.FailoverClusters.PowerShell.GetNodeCommand",
    available=is_node,
    params=[P("Name", "string[]", 0)],
)
def get_cluster_node(call: Call) -> None:
    machine = call.machine
    assert isinstance(machine, NodeMachine)
    names = call.params["Name"]
    with call.state.lock:
        cluster = machine.cluster
        for index, name in enumerate(cluster.nodes, start=1):
            node = machine.state.node(name)
            if names is not None and not any(cv.wildcard_match(n, node.name) for n in names):
                continue
            state = "Down" if node.faults.down else node.state
            call.emit(
                PSObject(
                    "Microsoft.FailoverClusters.PowerShell.ClusterNode",
                    {
                        "Name": node.name.upper(),
                        "State": NODE_STATE(state),
                        "Id": str(index),
                        "NodeName": node.name.upper(),
                        "BuildNumber": int(cluster.build),
                        "Cluster": cluster.name,
                    },
                    string=node.name.upper(),
                )
            )
