"""`hcibenefit checklist avd`: the sweep's collector and checks over the session hosts, judged as go/no-go items.

One run: (with --host-pool, first the pool and its session hosts from ARM, mapped through their Arc machines
to the clusters that hold them), then the sweep's collector over those clusters (host facts from every node,
the guest probe for the selected VMs, one session per node), the catalogue's checks (checks.evaluate) and,
when the inventory has an azure: section, the Azure side (Resource Graph, reconciliation, azure checks and
the host pools' members from ARM). checklist.items turns what came back into items per VM.

Nothing is changed anywhere: --fix lives in operations.checklist.fix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import getpass
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hcibenefit import __version__
from hcibenefit.azure.ids import norm_id
from hcibenefit.azure.join import AzureView, ClusterPair, VMPair, map_vms, match_cluster
from hcibenefit.azure.records import AzureInventory, SessionHost
from hcibenefit.checklist.context import AzureSide, PoolMembers, VMEvidence
from hcibenefit.checklist.items import checklist_for
from hcibenefit.checklist.judge import AVD_ADMIN, AZURE_ADMIN
from hcibenefit.checklist.model import Checklist, Item, ItemStatus, VMChecklist
from hcibenefit.checks.eligibility import requirement
from hcibenefit.checks.evaluate import evaluate_cluster
from hcibenefit.checks.results import Result
from hcibenefit.errors import UsageError
from hcibenefit.facts.host import HostFacts, VMFacts
from hcibenefit.inventory import Cluster, CredentialResolver, Inventory
from hcibenefit.operations.selection import Selection
from hcibenefit.operations.sweep.azure import guest_licenses
from hcibenefit.operations.sweep.azure import wanted as azure_wanted
from hcibenefit.operations.sweep.collect import Collected, Progress, Scope, collect

if TYPE_CHECKING:
    from hcibenefit.operations.azure_read import AzureSource

log = logging.getLogger(__name__)

NOTHING = "nothing was checked"
DEFAULT_WINDOW_DAYS = 14
"""The rollout window: what must not expire or fall out of policy before the pool goes live and settles."""
HOST_POOL_PROVIDER = "/providers/microsoft.desktopvirtualization/hostpools/"


@dataclass(frozen=True)
class ChecklistRequest:
    vms: tuple[str, ...] = ()
    """--vm names and globs, and the lines of --vm-file."""
    host_pool: str | None = None
    clusters: tuple[str, ...] = ()
    window_days: int = DEFAULT_WINDOW_DAYS
    strict: bool = False
    workers: int = 16
    vm_file: str | None = None
    """Where --vm-file names came from (for the report)."""


@dataclass(frozen=True)
class Unmapped:
    """A session host of the pool that is not a VM of the inventory, and why."""

    name: str
    resource_id: str
    why: str
    owner: str = AVD_ADMIN

    def as_checklist(self) -> VMChecklist:
        item = Item(
            "session-host-mapped",
            "Session host maps to an Azure Local VM of the inventory",
            "C15",
            ItemStatus.FAIL,
            f"{self.why} (resourceId {self.resource_id or 'none'})",
            "check the session host in the Azure portal; add its cluster to the inventory if it is one of yours, "
            "or remove the session host from the pool",
            self.owner,
            assessed=False,
        )
        return VMChecklist(self.name, None, None, (item,), (self.name,))


@dataclass
class PoolMapping:
    pool_id: str
    members: tuple[SessionHost, ...]
    machine_ids: dict[str, str] = field(default_factory=dict)
    """Arc machine id → the session host's name, for the members that map to an Azure Local VM."""
    names: list[str] = field(default_factory=list)
    """The Azure Local VMs' names (Arc machine names), for the collector's selection."""
    unmapped: list[Unmapped] = field(default_factory=list)


def operator() -> str:
    """Who ran the checklist, as the change ticket records it: user@host."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname() or 'unknown'}"


def _host_pool_id(text: str) -> str:
    pool_id = norm_id(text)
    if (
        not pool_id.startswith("/subscriptions/")
        or HOST_POOL_PROVIDER not in pool_id
        or pool_id.count("/") != 8
    ):
        raise UsageError(
            f"--host-pool {text!r} is not a host pool's resource id",
            hint="/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.DesktopVirtualization/hostPools/NAME "
            "(az desktopvirtualization hostpool show -n NAME -g RG --query id -o tsv)",
        )
    return pool_id


def run_checklist(
    inventory: Inventory,
    resolver: CredentialResolver,
    request: ChecklistRequest,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> Checklist:
    clock = now or (lambda: dt.datetime.now(dt.timezone.utc))
    started = clock()
    if not request.vms and not request.host_pool:
        raise UsageError(
            f"say which session hosts: --vm NAME|GLOB, --vm-file FILE or --host-pool ARM_ID; {NOTHING}"
        )
    if request.vms and request.host_pool:
        raise UsageError(
            f"--host-pool takes the VMs from the pool: give it without --vm/--vm-file; {NOTHING}"
        )
    pool_id = _host_pool_id(request.host_pool) if request.host_pool else None
    use_azure = azure_wanted(inventory)
    if pool_id and not use_azure:
        raise UsageError(
            f"--host-pool reads the pool from Azure, and the inventory has no azure: section; {NOTHING}",
            hint="add azure: (subscriptions, credential) to the inventory, or name the VMs with --vm",
        )
    clusters = Selection(clusters=request.clusters).select_clusters(inventory, nothing_done=NOTHING)
    policy = dataclasses.replace(inventory.policy, expiry_warning_days=request.window_days)
    notes: list[str] = []
    with _azure(inventory, clusters, use_azure) as source:
        mapping = None
        selection = Selection(vms=request.vms, clusters=request.clusters)
        if pool_id is not None:
            assert source is not None
            mapping = _map_pool(source, pool_id)
            clusters = _clusters_for(mapping, source.read.inventory, clusters)
            selection = Selection(vms=tuple(mapping.names))
        scope = Scope(tuple(clusters), (), selection, inventory.policy.exclusion, probe_every_guest=True)
        if clusters and (selection.vms or mapping is None):
            collected = collect(
                inventory,
                resolver,
                scope,
                workers=request.workers,
                progress=progress,
                cancel=cancel,
                now=clock,
            )
        else:
            collected = Collected((), False)
        checked_at = clock()
        chosen = _chosen_vms(scope, collected, strict_names=mapping is None)
        results: list[Result] = []
        for evidence in collected.clusters:
            keys = {vm.name.casefold() for _, vm in chosen if vm.cluster == evidence.name}
            evaluation = evaluate_cluster(evidence, policy, checked_at, vm_selected=_member_of(keys))
            results += evaluation.results
        view: AzureView | None = None
        azure_results: list[Result] = []
        azure_notes: list[str] = []
        unreadable: dict[str, str] = {}
        if source is not None:
            view, azure_results, azure_notes, unreadable = _azure_side(
                source, clusters, collected, policy, checked_at, request.window_days
            )
        notes += azure_notes
        results += azure_results
        if mapping is not None:
            # Names select for the collector; the pool's own machines decide (two clusters may share a name).
            chosen = [
                (host, vm)
                for host, vm in chosen
                if (vp := _pair_of(view, vm, host)[1]) is not None
                and vp.azure.machine.id in mapping.machine_ids
            ]
        pools = _pools(source, view, chosen, mapping)
    vms = []
    for host, vm in chosen:
        evidence = next(e for e in collected.clusters if e.name == vm.cluster)
        azure = None
        if source is not None:
            machines = frozenset(m.id for m in source.read.inventory.machines)
            azure = _azure_of(view, vm, host, pools, unreadable.get(vm.cluster), machines)
        context = VMEvidence(
            vm=vm,
            host=host,
            cluster=vm.cluster,
            hosts=evidence.hosts,
            node_order=evidence.node_order,
            unreachable=evidence.unreachable,
            requirement=requirement(vm, host, inventory.policy),
            guest=evidence.guests.get(vm.name.casefold()),
            results=tuple(r for r in results if _about(r, vm)),
            azure=azure,
            now=checked_at,
            window_days=request.window_days,
        )
        sessions = tuple(h.name for h in (azure.session_hosts if azure else ()))
        vms.append(VMChecklist(vm.name, vm.cluster, host.node, checklist_for(context), sessions))
    if mapping is not None:
        vms += _unmapped_after(mapping, view, chosen, collected)
    for evidence in collected.clusters:
        for node, why in evidence.unreachable.items():
            notes.append(f"{node} ({evidence.name}) did not answer: {why}")
    run = _run_info(inventory, request, started, clock(), source, pool_id)
    return Checklist(tuple(vms), request.strict, request.window_days, run, tuple(dict.fromkeys(notes)))


def _member_of(keys: set[str]) -> Callable[[str], bool]:
    return lambda name: name.casefold() in keys


def _about(result: Result, vm: VMFacts) -> bool:
    target = result.target
    if target.cluster.casefold() != vm.cluster.casefold():
        return False
    return target.vm is None or target.vm.casefold() == vm.name.casefold()


@contextlib.contextmanager
def _azure(inventory: Inventory, clusters: Sequence[Cluster], wanted: bool) -> Iterator[AzureSource | None]:
    if not wanted:
        yield None
        return
    from hcibenefit.operations.azure_read import open_azure, scope_of

    with open_azure(inventory.azure, scope_of(inventory.azure, clusters)) as source:
        for key, why in source.read.errors.items():
            log.warning("Azure: %s: %s", key, why)
        yield source


# --- host pools -------------------------------------------------------------------------------------


def _map_pool(source: AzureSource, pool_id: str) -> PoolMapping:
    """The pool's session hosts, each mapped through its Arc machine to an Azure Local VM, or why not."""
    session = source.session
    if session is None:
        why = "; ".join(f"{k}: {v}" for k, v in source.read.errors.items()) or "no Azure session"
        from hcibenefit.azure.session import AzureReadError

        raise AzureReadError(f"the host pool cannot be read: {why}", hint=source.read.hint)
    found = session.read_host_pool(pool_id)
    if found is None:
        raise UsageError(
            f"no host pool {pool_id} in Azure (or the credential may not read it); {NOTHING}",
            hint="az desktopvirtualization hostpool list -o table lists the pools you can read",
        )
    _, members = found
    azure = source.read.inventory
    mapping = PoolMapping(pool_id, tuple(members))
    machines = {m.id: m for m in azure.machines}
    mapped = {v.machine.id: v for v in map_vms(azure)}
    for member in members:
        name = member.name.split("/", 1)[-1]
        if member.on_azure_vm:
            mapping.unmapped.append(
                Unmapped(
                    name, member.vm_resource_id, "an Azure VM (Microsoft.Compute), not an Azure Local VM"
                )
            )
            continue
        machine = machines.get(member.vm_resource_id) if member.on_arc_machine else None
        if machine is None:
            why = (
                "its Arc machine is not in Azure's index (deleted, or in a subscription not read)"
                if member.on_arc_machine
                else "its resourceId is neither an Arc machine nor an Azure VM"
            )
            mapping.unmapped.append(Unmapped(name, member.vm_resource_id, why, AZURE_ADMIN))
            continue
        if not machine.is_hci_vm:
            mapping.unmapped.append(
                Unmapped(
                    name,
                    member.vm_resource_id,
                    f"Arc machine {machine.name} is not an Azure Local VM (kind {machine.kind or 'none'})",
                )
            )
            continue
        avm = mapped.get(machine.id)
        if avm is None or not avm.cluster_id:
            mapping.unmapped.append(
                Unmapped(
                    name,
                    member.vm_resource_id,
                    f"Azure Local VM {machine.name} maps to no cluster (no custom location or resource bridge, no "
                    "parentClusterResourceId)",
                    AZURE_ADMIN,
                )
            )
            continue
        mapping.machine_ids[machine.id] = name
        mapping.names.append(machine.name)
    return mapping


def _clusters_for(mapping: PoolMapping, azure: AzureInventory, selected: Sequence[Cluster]) -> list[Cluster]:
    """The inventory clusters that hold the pool's VMs: matched by the inventory's azure: or by name; when
    a VM's cluster matches none that way, every selected cluster is asked (the nodes report their id)."""
    vm_clusters = {v.cluster_id for v in map_vms(azure) if v.machine.id in mapping.machine_ids}
    matched: dict[str, Cluster] = {}
    for cluster in selected:
        found, _, _ = match_cluster(cluster, (), azure)
        if found is not None and found.id in vm_clusters:
            matched[found.id] = cluster
    if vm_clusters - set(matched):
        return list(selected)
    return [c for c in selected if c in matched.values()]


def _unmapped_after(
    mapping: PoolMapping,
    view: AzureView | None,
    chosen: Sequence[tuple[HostFacts, VMFacts]],
    collected: Collected,
) -> list[VMChecklist]:
    """The pool's members that are no VM of the inventory: never mapped, or with no Hyper-V VM found."""
    out = [u.as_checklist() for u in mapping.unmapped]
    found = {
        vp.azure.machine.id
        for pair in (view.clusters if view else ())
        for vp in pair.vms
        if any(vp.vm is vm for _, vm in chosen)
    }
    unreachable = sorted({n for e in collected.clusters for n in e.unreachable})
    for machine_id, name in mapping.machine_ids.items():
        if machine_id in found:
            continue
        why = (
            "no Hyper-V VM of the inventory's clusters is its Azure Local VM (cluster not in the inventory, "
        )
        why += "or not selected with --cluster; or the VM is gone)"
        if unreachable:
            why += f"; not every node answered: {', '.join(unreachable)}"
        out.append(Unmapped(name, machine_id, why, AZURE_ADMIN).as_checklist())
    return out


# --- which VMs ----------------------------------------------------------------------------------------


def _chosen_vms(scope: Scope, collected: Collected, *, strict_names: bool) -> list[tuple[HostFacts, VMFacts]]:
    """The selected VMs with their owner nodes, in the order the names were given. A --vm name that
    matches no VM anywhere is a usage error, unless a node that did not answer may hold it."""
    everything = [(h, vm) for c in collected.clusters for h in c.hosts for vm in h.vms]
    match = scope.selection.match_vms(
        everything, name_of=lambda pair: pair[1].name, exclusion=scope.exclusion
    )
    unreachable = any(c.unreachable for c in collected.clusters)
    if strict_names and match.unmatched and not unreachable:
        match.raise_unmatched(
            [vm.name for _, vm in everything], where="on the selected clusters' nodes", nothing_done=NOTHING
        )
    if strict_names and match.unmatched:
        log.warning(
            "%s not found on the nodes that answered (some did not)",
            ", ".join(repr(n) for n in match.unmatched),
        )
    return list(match.selected)


# --- Azure ----------------------------------------------------------------------------------------------


def _azure_side(
    source: AzureSource,
    clusters: Sequence[Cluster],
    collected: Collected,
    policy: Any,
    now: dt.datetime,
    window_days: int,
) -> tuple[AzureView, list[Result], list[str], dict[str, str]]:
    from hcibenefit.checks.assess import ClusterFacts
    from hcibenefit.checks.azure_results import evaluate_azure
    from hcibenefit.operations.reconcile import authoritative_reads, host_sides, reconcile

    by_name = {e.name: e for e in collected.clusters}
    asked = [c for c in clusters if c.name in by_name]
    facts = [ClusterFacts(c.name, by_name[c.name].hosts, by_name[c.name].unreachable) for c in asked]
    sides = host_sides(asked, facts, policy, now, guest_licenses(collected.clusters))
    read = source.read
    notes = list(read.notes)
    if source.session is not None:
        read, more = authoritative_reads(source.session, read, sides, now)
        notes += more
    result = reconcile(sides, read, now=now, expiry_warning_days=window_days, all_clusters=False, notes=notes)
    errors = "; ".join(f"{k}: {v}" for k, v in read.errors.items())
    unreadable = {
        pair.name: pair.unread[0]
        if pair.unread
        else f"Azure could not be read ({errors or 'the subscription was not read'})"
        for pair in result.view.clusters
        if pair.azure is None and not pair.azure_known
    }
    return result.view, evaluate_azure(result.view), [f"Azure: {n}" for n in notes], unreadable


def _pair_of(
    view: AzureView | None, vm: VMFacts, host: HostFacts
) -> tuple[ClusterPair | None, VMPair | None]:
    if view is None:
        return None, None
    pair = next((p for p in view.clusters if p.name == vm.cluster), None)
    if pair is None:
        return None, None
    vp = next((v for v in pair.vms if v.vm.id == vm.id and v.host.node == host.node), None)
    return pair, vp


def _pools(
    source: AzureSource | None,
    view: AzureView | None,
    chosen: Sequence[tuple[HostFacts, VMFacts]],
    mapping: PoolMapping | None,
) -> tuple[dict[str, PoolMembers], dict[str, str]]:
    """Every host pool the chosen VMs are session hosts of, with all its members (from ARM)."""
    found: dict[str, PoolMembers] = {}
    errors: dict[str, str] = {}
    if source is None or view is None:
        return found, errors
    wanted: set[str] = set()
    for host, vm in chosen:
        _, vp = _pair_of(view, vm, host)
        if vp is not None:
            wanted.update(h.host_pool_id for h in view.session_hosts_of(vp.azure) if h.host_pool_id)
    if mapping is not None:
        wanted.add(mapping.pool_id)
    session = source.session
    for pool_id in sorted(wanted):
        if session is None:
            errors[pool_id] = "Azure could not be read"
            continue
        from hcibenefit.azure.session import AzureReadError

        try:
            read = session.read_host_pool(pool_id)
        except AzureReadError as exc:
            errors[pool_id] = exc.message
            continue
        if read is None:
            errors[pool_id] = "ARM has no such host pool (its session hosts name it)"
            continue
        found[pool_id] = PoolMembers(read[0], tuple(read[1]))
    return found, errors


def _azure_of(
    view: AzureView | None,
    vm: VMFacts,
    host: HostFacts,
    pools: tuple[Mapping[str, PoolMembers], Mapping[str, str]],
    unreadable: str | None,
    machines: frozenset[str],
) -> AzureSide:
    pair, vp = _pair_of(view, vm, host)
    hosts: tuple[SessionHost, ...] = ()
    if view is not None and vp is not None:
        hosts = view.session_hosts_of(vp.azure)
        # What ARM listed for a pool is fresher than Resource Graph's index: prefer it.
        listed = {m.id: m for p in pools[0].values() for m in p.members}
        hosts = tuple(listed.get(h.id, h) for h in hosts)
        known = {h.id for h in hosts}
        hosts += tuple(
            m for m in listed.values() if m.vm_resource_id == vp.azure.machine.id and m.id not in known
        )
    return AzureSide(pair, vp, hosts, pools[0], pools[1], unreadable, machines)


# --- the run ------------------------------------------------------------------------------------------


def _run_info(
    inventory: Inventory,
    request: ChecklistRequest,
    started: dt.datetime,
    finished: dt.datetime,
    source: AzureSource | None,
    pool_id: str | None,
) -> dict[str, Any]:
    from hcibenefit.operations.sweep.run import fleet_hash

    return {
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "operator": operator(),
        "hcibenefit_version": __version__,
        "inventory": str(inventory.source),
        "inventory_hash": fleet_hash(inventory),
        "selection": {
            "vms": list(request.vms),
            "vm_file": request.vm_file,
            "host_pool": pool_id,
            "clusters": list(request.clusters),
        },
        "azure": source.read.source if source is not None else None,
    }


__all__ = ["DEFAULT_WINDOW_DAYS", "ChecklistRequest", "run_checklist"]
