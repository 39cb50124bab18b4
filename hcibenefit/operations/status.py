"""`hcibenefit status`: per cluster, the nodes and VMs with a one-word verdict each.

What is reported, and what the exit code counts, is what was selected: every node and VM of the
selected clusters; with --vm or --verdict, those VMs and the nodes they run on (plus the nodes that
could not be reached, since a selected VM may live there). A VM on a node that could not be reached is
listed by name, verdict not-assessed, when another node of its cluster names it (checks.unassessed).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from hcibenefit.checks.verdicts import NOT_ASSESSED
from hcibenefit.inventory import CredentialResolver, Inventory
from hcibenefit.operations.gather import gather_clusters
from hcibenefit.operations.selection import Selection
from hcibenefit.remoting.runner import DEFAULT_WORKERS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hcibenefit.checks.assess import Assessment, NodeStatus, VMStatus
    from hcibenefit.checks.model import Finding, Severity
    from hcibenefit.checks.unassessed import UnassessedVM


@dataclass(frozen=True)
class StatusResult:
    assessment: Assessment
    selection: Selection = field(default_factory=Selection)
    selected: tuple[VMStatus, ...] = ()
    """The VMs the selection picked (before the verdict filter)."""
    excluded: tuple[tuple[VMStatus | UnassessedVM, str], ...] = ()
    not_assessed: tuple[Mapping[str, Any], ...] = ()
    unassessed: tuple[UnassessedVM, ...] = ()
    """The selected VMs on nodes that were not reached, named by another node of their cluster."""

    def vms(self) -> list[VMStatus]:
        return [v for v in self.selected if self.selection.keeps(v.verdict)]

    def unassessed_vms(self) -> list[UnassessedVM]:
        return list(self.unassessed) if self.selection.keeps(NOT_ASSESSED) else []

    def nodes(self) -> list[NodeStatus]:
        if not self.selection.narrows_vms:
            return list(self.assessment.nodes)
        owners = {(v.vm.cluster, v.vm.node.casefold()) for v in self.vms()}
        owners |= {(u.cluster, u.node.casefold()) for u in self.unassessed_vms()}
        return [
            n for n in self.assessment.nodes if (n.cluster, n.name.casefold()) in owners or n.facts is None
        ]

    def findings(self) -> list[Finding]:
        """Findings about what is shown: the selected VMs and the nodes reported with them."""
        targets = {(v.vm.cluster, v.vm.name.casefold()) for v in self.vms()}
        targets |= {(n.cluster, n.name.casefold()) for n in self.nodes()}
        return [f for f in self.assessment.findings if (f.cluster, f.target.casefold()) in targets]

    def failing(self, threshold: Severity | None) -> bool:
        return exit_findings(self.findings(), threshold)

    @property
    def incomplete(self) -> bool:
        return bool(self.not_assessed) or any(n.facts is None for n in self.nodes())


def _load_what_follows() -> None:
    """The modules that judge and report what the hosts answer, imported while they are busy rather
    than before the first request (about 20 ms of CPU, 2% of a one-cluster run's bound at 200 ms)."""
    import hcibenefit.operations.status_report  # noqa: F401  (imports the checks and the renderers)


def gather_status(
    inventory: Inventory,
    resolver: CredentialResolver,
    selection: Selection | None = None,
    *,
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
) -> StatusResult:
    selection = selection or Selection()
    clusters = selection.select_clusters(inventory)
    if selection.nodes:
        # --node: only those nodes are asked (and reported), with the VMs they own.
        wanted = {n.name for n in selection.select_nodes(clusters)}
        clusters = [replace(c, nodes=tuple(n for n in c.nodes if n.name in wanted)) for c in clusters]
        clusters = [c for c in clusters if c.nodes]
    gathered, _ = gather_clusters(
        inventory, clusters, resolver, workers=workers, cancel=cancel, when_idle=_load_what_follows
    )
    # Imported by now: gather_clusters loaded them while the hosts were busy.
    from hcibenefit.checks.assess import VMStatus, assess_cluster, merge
    from hcibenefit.checks.unassessed import UnassessedVM, vm_name, vms_named_on_unreachable_nodes

    when = now or dt.datetime.now(dt.timezone.utc)
    assessment = merge(
        [
            assess_cluster(facts, [n.name for n in cluster.nodes], inventory.policy, when)
            for facts, cluster in zip(gathered, clusters, strict=True)
        ]
    )
    named = vms_named_on_unreachable_nodes(gathered)
    candidates: list[VMStatus | UnassessedVM] = [*assessment.vms, *named]
    match = selection.match_vms(candidates, name_of=vm_name, exclusion=inventory.policy.exclusion)
    selected = [v for v in match.selected if isinstance(v, VMStatus)]
    unassessed = [v for v in match.selected if isinstance(v, UnassessedVM)]
    # Where a node of the cluster answered Get-ClusterGroup, the unreachable nodes' VM roles are named.
    roles_read = {c.name for c in gathered if any(h.cluster_groups is not None for h in c.hosts)}
    unreachable = [n for n in assessment.nodes if n.facts is None]
    not_assessed: list[dict[str, Any]] = [
        {
            "node": n.name,
            "cluster": n.cluster,
            "verdict": n.verdict,
            "reason": n.error,
            "vms": "its VM roles are listed under vms as not-assessed, as another node of the cluster names "
            "them; a VM that is not a cluster role could not be listed"
            if n.cluster in roles_read
            else "the VMs on this node could not be listed or assessed",
            "vm_names": [u.name for u in unassessed if (u.cluster, u.node) == (n.cluster, n.name)],
        }
        for n in unreachable
    ]
    if match.unmatched:
        if not unreachable:
            match.raise_unmatched(
                [vm_name(v) for v in candidates],
                where="on any node of " + ", ".join(c.name for c in clusters),
                nothing_done="nothing to report",
            )
        names = ", ".join(n.name for n in unreachable)
        not_assessed += [
            {"vm": name, "reason": f"not found on the nodes that answered; not assessed: {names}"}
            for name in match.unmatched
        ]
    return StatusResult(
        assessment, selection, tuple(selected), tuple(match.excluded), tuple(not_assessed), tuple(unassessed)
    )


def exit_findings(findings: Sequence[Finding], fail_on: Severity | None) -> bool:
    return fail_on is not None and any(f.severity >= fail_on for f in findings)


def select_clusters(inventory: Inventory, names: Sequence[str]) -> list[Any]:
    """The named clusters (all when none named): kept for callers that have only cluster names."""
    return Selection(clusters=tuple(names)).select_clusters(inventory)
