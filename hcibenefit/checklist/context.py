"""What the checklist knows about one VM when it judges it: the catalogue's results about the VM, its node and
its cluster, the facts they came from, and Azure's side (or why there is none). Built by
operations.checklist from what the sweep's collector and the Azure side read; read by checklist.items."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from hcibenefit.azure.join import ClusterPair, VMPair
from hcibenefit.azure.records import HostPool, SessionHost
from hcibenefit.checks.eligibility import Requirement
from hcibenefit.checks.evaluate import GuestEvidence
from hcibenefit.checks.results import Result
from hcibenefit.facts.guest import GuestProbe
from hcibenefit.facts.host import HostFacts, VMFacts


@dataclass(frozen=True)
class PoolMembers:
    """A host pool as ARM lists it: every session host, whatever it runs on."""

    pool: HostPool
    members: tuple[SessionHost, ...]


@dataclass(frozen=True)
class AzureSide:
    """Azure's view of one VM. `unreadable` says why Azure could not be read (login, subscription)."""

    pair: ClusterPair | None
    vm: VMPair | None
    session_hosts: tuple[SessionHost, ...] = ()
    pools: Mapping[str, PoolMembers] = field(default_factory=dict)
    """Host pool id (normalised) → its members, for the pools this VM's session hosts are in."""
    pool_errors: Mapping[str, str] = field(default_factory=dict)
    """Host pool id → why its members could not be listed."""
    unreadable: str | None = None
    machines: frozenset[str] = frozenset()
    """Every Arc machine id Azure has (a pool member on another one is stale)."""


@dataclass(frozen=True)
class VMEvidence:
    vm: VMFacts
    host: HostFacts
    """The VM's owner node."""
    cluster: str
    hosts: tuple[HostFacts, ...]
    """Every node of the cluster that answered."""
    node_order: tuple[str, ...]
    unreachable: Mapping[str, str]
    requirement: Requirement
    guest: GuestEvidence | None
    """What the guest probe brought back (or why nothing), None when the guest was not asked."""
    results: tuple[Result, ...]
    """Every catalogue result about this VM, the nodes of its cluster and the cluster."""
    azure: AzureSide | None
    """None: the inventory has no azure: section."""
    now: dt.datetime
    window_days: int

    def results_of(self, check: str) -> list[Result]:
        return [r for r in self.results if r.check.id == check]

    @property
    def probe(self) -> GuestProbe | None:
        answer = self.guest.answer if self.guest is not None else None
        return answer if isinstance(answer, GuestProbe) else None

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(days=self.window_days)

    @property
    def uses_v1(self) -> bool:
        """The VM reaches IMDS over the guest NIC (V1): needed by its OS or platform, or configured so."""
        if self.vm.imds_nic is not None and not (self.host.supports_v2 and self.vm.gsi_enabled):
            return True
        return self.requirement.transport == "V1"
