"""The sweep's Azure part: when the inventory has an `azure:` section, what Azure believes is read while the
nodes are asked (operations.azure_read), then reconciled with what they answered (operations.reconcile) and
judged by the azure checks (checks.azure_results), with the guests' own activation state where the sweep
asked them.

Azure is read, never changed. A login or subscription that fails is the ERROR of every check that needs it,
never an aborted sweep; a read still running at the deadline is left behind as not assessed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hcibenefit.checks.evaluate import ClusterEvidence, GuestEvidence
from hcibenefit.checks.results import Result, Status, Target
from hcibenefit.facts.guest import GuestProbe
from hcibenefit.inventory import Inventory
from hcibenefit.inventory.model import AzureSettings

if TYPE_CHECKING:
    from hcibenefit.operations.sweep.collect import Scope

log = logging.getLogger(__name__)


def wanted(inventory: Inventory) -> bool:
    """Whether the inventory says where its clusters are in Azure (an `azure:` section, or a cluster's)."""
    return inventory.azure != AzureSettings() or any(c.azure is not None for c in inventory.clusters)


def guest_licenses(clusters: Sequence[ClusterEvidence]) -> dict[str, int]:
    """LicenseStatus of every guest the sweep asked, for the Arc licenseStatus comparison."""
    found: dict[str, int] = {}
    for evidence in clusters:
        for key, guest in evidence.guests.items():
            answer = guest.answer
            if isinstance(answer, GuestProbe) and answer.license is not None:
                found[key] = answer.license.license_status
    return found


class AzurePart:
    """Reads Azure on its own thread once the hosts are busy; reconciles once they have answered.

    The thread waits for `begin()`, which the sweep calls the first time it waits on the network: the
    Azure SDK's imports and the Resource Graph query cost some 0.25 s of CPU, which would otherwise hold
    back every node's first request (one interpreter lock) instead of filling the round trips' idle time.
    """

    def __init__(self, inventory: Inventory, scope: Scope, *, all_clusters: bool, now: dt.datetime) -> None:
        self.inventory = inventory
        self.scope = scope
        self.all_clusters = all_clusters
        self.now = now
        self.notes: list[str] = []
        self._hosts: tuple[Sequence[ClusterEvidence], Mapping[str, int]] | None = None
        self._hosts_ready = threading.Event()
        self._go = threading.Event()
        self._abandoned = threading.Event()
        self._results: list[Result] | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hcibenefit-sweep-azure", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from hcibenefit.checks.azure_results import evaluate_azure
        from hcibenefit.operations.azure_read import open_azure, scope_of, stats_line
        from hcibenefit.operations.reconcile import authoritative_reads, host_sides, reconcile

        self._go.wait()
        if self._abandoned.is_set():
            return
        try:
            subscriptions = scope_of(self.inventory.azure, self.scope.clusters)
            with open_azure(self.inventory.azure, subscriptions) as source:
                self._hosts_ready.wait()
                if self._abandoned.is_set() or self._hosts is None:
                    return
                evidence, licenses = self._hosts
                sides = host_sides(
                    self.scope.clusters,
                    [_facts(e) for e in evidence],
                    self.inventory.policy,
                    self.now,
                    licenses,
                )
                read = source.read
                notes = list(read.notes)
                if source.session is not None:
                    read, more = authoritative_reads(source.session, read, sides, self.now)
                    notes += more
                result = reconcile(
                    sides,
                    read,
                    now=self.now,
                    expiry_warning_days=self.inventory.policy.expiry_warning_days,
                    all_clusters=self.all_clusters,
                    vm_globs=self.scope.selection.vms,
                    notes=notes,
                )
                self._results = evaluate_azure(result.view)
                self.notes = [f"Azure: {k}: {v}" for k, v in read.errors.items()]
                for note in notes:
                    log.info("Azure: %s", note)
                if source.session is not None:
                    log.info("%s", stats_line(read))
        except BaseException as exc:  # reported as the azure checks' ERROR, never a lost sweep
            log.debug("the Azure part failed", exc_info=True)
            self._failure = exc

    def begin(self) -> None:
        """Start reading Azure (idempotent)."""
        self._go.set()

    def hosts_answered(self, clusters: Sequence[ClusterEvidence]) -> None:
        self._hosts = (clusters, guest_licenses(clusters))
        self._hosts_ready.set()
        self.begin()  # had the host pass no idle moment

    def results(self, timeout: float | None) -> list[Result]:
        """The azure checks' results; ERRORs with why when Azure could not be read in time or at all."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandoned.set()
            return self._errors("not assessed: the run's deadline passed while Azure was being read")
        if self._failure is not None:
            text = (
                getattr(self._failure, "message", None) or f"{type(self._failure).__name__}: {self._failure}"
            )
            return self._errors(f"Azure could not be read: {text}")
        results = list(self._results or [])
        if self.scope.nodes:
            # --node narrows node results to those nodes, as it does for the host-side checks.
            wanted = {n.name.casefold() for n in self.scope.nodes}
            results = [r for r in results if r.target.node is None or r.target.node.casefold() in wanted]
        return results

    def forget_hosts(self) -> None:
        """Let go of the hosts' facts once the results are taken: the sweep judges them a cluster at a
        time and drops each after (operations.sweep.run)."""
        self._hosts = None

    def abandon(self) -> None:
        self._abandoned.set()
        self._hosts_ready.set()
        self._go.set()

    def _errors(self, why: str) -> list[Result]:
        from hcibenefit.checks.registry import azure_registrations

        return [
            Result(reg.meta, Target(c.name), Status.ERROR, why)
            for reg in azure_registrations()
            for c in self.scope.clusters
        ]


def _facts(evidence: ClusterEvidence) -> Any:
    from hcibenefit.checks.assess import ClusterFacts

    return ClusterFacts(evidence.name, evidence.hosts, evidence.unreachable)


__all__ = ["AzurePart", "GuestEvidence", "guest_licenses", "wanted"]
