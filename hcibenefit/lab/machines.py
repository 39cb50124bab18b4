"""The computer a lab runspace runs on: a cluster node or a guest VM, both views of the FleetState."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hcibenefit.lab.state import VM, Cluster, FleetState, LabClock, Node, SkewedClock


@dataclass
class NodeMachine:
    state: FleetState
    node: Node
    secrets: Any = None
    """The engine: what guests sign attested documents with and the password they accept."""

    kind = "node"

    @property
    def name(self) -> str:
        return self.node.name.upper()

    @property
    def clock(self) -> LabClock:
        return self.state.clock

    @property
    def cluster(self) -> Cluster:
        return self.state.clusters[self.node.cluster]

    def vms(self) -> list[VM]:
        return self.state.vms_on(self.node.name)


@dataclass
class GuestMachine:
    state: FleetState
    vm: VM
    secrets: Any = None

    kind = "guest"

    @property
    def name(self) -> str:
        # The guest's computer name: the VM name, cut to NetBIOS length (Assumption: guests are named so).
        return self.vm.name.upper()[:15]

    @property
    def clock(self) -> LabClock:
        skew = self.vm.guest.clock_skew_s
        return SkewedClock(self.state.clock, skew) if skew else self.state.clock


def is_node(machine: object) -> bool:
    return isinstance(machine, NodeMachine)


def is_guest(machine: object) -> bool:
    return isinstance(machine, GuestMachine)
