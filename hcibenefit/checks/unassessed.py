"""VMs that could not be assessed because their node did not answer, named by a node of the same cluster
that did (issue 10: they must not vanish from a report).

The host-facts script of every node lists the VM roles the other nodes own (Get-ClusterGroup, GroupType
VirtualMachine). For a node that was not reached, what its peers say it owns is all that is known: the name,
the owner and the role's state. Nothing else is inferred. A VM that is not a cluster role, or a node whose
whole cluster was not reached, stays reported per node.

Assumption: a VM role is named after its VM, as Failover Cluster Manager, Windows Admin Center and Arc VM
management name the roles they create; a role renamed by hand is listed under its role name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hcibenefit.checks.verdicts import NOT_ASSESSED
from hcibenefit.facts.host import HostFacts

if TYPE_CHECKING:
    from hcibenefit.checks.assess import ClusterFacts, VMStatus

VERDICT = NOT_ASSESSED  # one word for it: checks/verdicts.py


@dataclass(frozen=True)
class UnassessedVM:
    name: str
    cluster: str
    node: str
    """The inventory's name of the owner node that was not reached."""
    node_error: str
    """Why that node was not reached (as the node's own line says)."""
    role_state: str
    """The VM role's state as the cluster reports it (Online, Offline, Failed, ...)."""
    named_by: str
    """The node whose Get-ClusterGroup named it."""

    @property
    def reason(self) -> str:
        return (
            f"not assessed: its node {self.node} was not reached ({self.node_error}); "
            f"{self.named_by} names it as a VM role of {self.node} ({self.role_state})"
        )

    def to_dict(self) -> dict[str, Any]:
        """What is known of it, for a command's JSON (`not_assessed_vms` of enable and disable)."""
        return {
            "name": self.name,
            "cluster": self.cluster,
            "node": self.node,
            "reason": self.reason,
            "role_state": self.role_state,
            "named_by": self.named_by,
        }

    @property
    def short_reason(self) -> str:
        """For a table whose node line already says why the node was not reached."""
        return f"not assessed: its node {self.node} was not reached; cluster role {self.role_state}"


def _short(name: str) -> str:
    """A node name as the cluster names it: the host part, case-insensitive (the inventory may hold FQDNs)."""
    return name.split(".", 1)[0].casefold()


def vms_on_unreachable_nodes(
    cluster: str, hosts: Iterable[HostFacts], unreachable: Mapping[str, str]
) -> list[UnassessedVM]:
    """Each VM role owned by a node in `unreachable`, once, as the first answering node that lists it says;
    never a VM an answering node reported itself."""
    hosts = list(hosts)
    owners = {_short(node): (node, why) for node, why in unreachable.items()}
    seen = {vm.name.casefold() for h in hosts for vm in h.vms}
    found: list[UnassessedVM] = []
    for host in hosts:
        for group in host.cluster_groups or ():
            owner = owners.get(_short(group.owner_node))
            if owner is None or group.name.casefold() in seen:
                continue
            seen.add(group.name.casefold())
            found.append(UnassessedVM(group.name, cluster, owner[0], owner[1], group.state, host.node))
    return sorted(found, key=lambda v: (v.node.casefold(), v.name.casefold()))


def vms_named_on_unreachable_nodes(gathered: Iterable[ClusterFacts]) -> list[UnassessedVM]:
    """Every cluster's VMs on its unreachable nodes, as its answering nodes name them: the candidates every
    command adds to the VMs it selects from, so that a name or glob picks them in every command alike."""
    return [vm for c in gathered for vm in vms_on_unreachable_nodes(c.name, c.hosts, c.unreachable)]


def vm_name(item: VMStatus | UnassessedVM) -> str:
    """The name a selection matches, of an assessed VM or of one named on a node that was not reached."""
    return item.name if isinstance(item, UnassessedVM) else item.vm.name
