"""`hcibenefit reconcile`: what Azure believes beside what the hosts report, as findings.

``reconcile`` is the pure part (facts in, findings out) that any command can call over data it has
already collected, e.g. the sweep: ``host_sides`` from its cluster facts, an ``AzureRead`` from
``operations.azure_read``. ``run_reconcile`` is the command: host facts (one call per node) and the
Resource Graph query at the same time, then ARM reads only where Resource Graph lacks a field a
check needs or names a VM that looks orphaned, then the checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import functools
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcibenefit.azure.join import AzureView, HostSide, build_view, map_vms, match_cluster
from hcibenefit.azure.parse import ParsedRow, parse_early, parse_resource
from hcibenefit.azure.records import AzureInventory, VMInstance
from hcibenefit.checks.assess import ClusterFacts, assess_cluster
from hcibenefit.checks.azure_checks import VM_CHECKS
from hcibenefit.checks.model import Finding, Severity
from hcibenefit.checks.registry import azure_findings
from hcibenefit.checks.results import Result, Status
from hcibenefit.inventory import Cluster, CredentialResolver, Inventory
from hcibenefit.inventory.model import Policy
from hcibenefit.report import Report, Table, columns
from hcibenefit.report.model import Column

if TYPE_CHECKING:
    from hcibenefit.azure.session import AzureRead, AzureSession

log = logging.getLogger(__name__)

VM_INSTANCE_API = "2025-06-01-preview"
"""The first VM instance API with hyperVVmId and hostNodeName (azure-mgmt-azurestackhcivm 1.0.0b1)."""


@dataclass(frozen=True)
class Reconciliation:
    view: AzureView
    findings: tuple[Finding, ...]
    read: AzureRead
    unreachable: Mapping[str, str]
    notes: tuple[str, ...] = ()
    not_assessed: tuple[Result, ...] = ()
    """The checks that could not judge a cluster (ERROR), with what could not be read and the fix: a
    subscription that could not be read leaves every check about its clusters untold, never passed."""

    @property
    def incomplete(self) -> bool:
        return bool(self.unreachable) or bool(self.read.errors)

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)


def host_sides(
    clusters: Sequence[Cluster],
    gathered: Sequence[ClusterFacts],
    policy: Policy,
    now: dt.datetime,
    guest_license: Mapping[str, int] | None = None,
) -> list[HostSide]:
    """Each cluster's host facts with its VMs' benefits verdicts (checks.assess), ready to reconcile."""
    sides = []
    for cluster, facts in zip(clusters, gathered, strict=True):
        assessment = assess_cluster(facts, [n.name for n in cluster.nodes], policy, now)
        verdicts = {v.vm.name.casefold(): v.verdict for v in assessment.vms}
        licenses = {k: v for k, v in (guest_license or {}).items() if k in verdicts}
        sides.append(HostSide(cluster, facts.hosts, facts.unreachable, verdicts, licenses))
    return sides


def reconcile(
    sides: Sequence[HostSide],
    read: AzureRead,
    *,
    now: dt.datetime,
    expiry_warning_days: int = 7,
    all_clusters: bool = True,
    vm_globs: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> Reconciliation:
    """The azure checks over collected facts. Pure: nothing is sent anywhere."""
    from hcibenefit.checks.azure_results import evaluate_azure

    view = build_view(
        sides,
        read.inventory,
        covers=read.covers,
        unread=read.unread,
        all_clusters=all_clusters,
        now=now,
        expiry_warning_days=expiry_warning_days,
    )
    findings = [f for f in azure_findings(view) if _selected(f, vm_globs)]
    unreachable = {node: why for side in sides for node, why in side.unreachable.items()}
    not_assessed = tuple(r for r in evaluate_azure(view) if r.status is Status.ERROR)
    return Reconciliation(view, tuple(findings), read, unreachable, tuple(notes), not_assessed)


def _selected(finding: Finding, globs: Sequence[str]) -> bool:
    if not globs or finding.check.id not in VM_CHECKS:
        return True
    name = finding.target.casefold()
    return any(fnmatch.fnmatchcase(name, g.casefold()) for g in globs)


# --- authoritative reads --------------------------------------------------------------------------


def _matched_cluster_ids(sides: Sequence[HostSide], inventory: AzureInventory) -> set[str]:
    found = (match_cluster(s.cluster, s.hosts, inventory)[0] for s in sides)
    return {c.id for c in found if c is not None}


def _replace(inventory: AzureInventory, read_back: Mapping[str, Any]) -> tuple[AzureInventory, list[str]]:
    """Swap instances for what ARM returned; drop those ARM no longer has (and their machines)."""
    instances: dict[str, VMInstance] = {}
    gone: set[str] = set()
    failures = []
    for resource_id, body in read_back.items():
        if body is None:
            gone.add(resource_id)
        elif isinstance(body, str):
            failures.append(f"ARM read of {resource_id}: {body}")
        else:
            parsed = (
                body.resource
                if isinstance(body, ParsedRow)
                else parse_resource(body, f"ARM read of {resource_id}", authoritative=True)
            )
            if isinstance(parsed, VMInstance):
                instances[resource_id] = parsed
    updated = inventory.replace_instances(instances)
    if gone:
        machines = {i.machine_id for i in updated.instances if i.id in gone}
        updated = dataclasses.replace(
            updated,
            instances=tuple(i for i in updated.instances if i.id not in gone),
            machines=tuple(m for m in updated.machines if m.id not in machines),
        )
        failures.append(
            f"{len(gone)} VM instance(s) Resource Graph still lists no longer exist in ARM (its index lags); left out"
        )
    return updated, failures


def _read_instances(session: AzureSession, resource_ids: Sequence[str]) -> dict[str, Any]:
    """Each VM instance from ARM, parsed as it arrives (a 10,000-VM fleet's bodies held until the last read
    were some 50 MB)."""
    return session.read_resources(
        resource_ids, VM_INSTANCE_API, each_body=functools.partial(parse_early, authoritative=True)
    )


def authoritative_reads(
    session: AzureSession, read: AzureRead, sides: Sequence[HostSide], now: dt.datetime
) -> tuple[AzureRead, list[str]]:
    """Read from ARM what Resource Graph lacks for the selected clusters' VMs, then confirm orphans.

    1. VM instances whose row has no hyperVVmId or hostNodeName (an index of an older API version);
    2. VM instances that still look orphaned after that, unless they were just read: Resource Graph
       can list a VM deleted minutes ago, and an orphan finding invites a clean-up.
    """
    clusters = _matched_cluster_ids(sides, read.inventory)
    mine = [v for v in map_vms(read.inventory) if v.cluster_id in clusters and v.instance is not None]
    lacking = [
        v.instance.id
        for v in mine
        if v.instance is not None and not (v.instance.hyperv_vm_id and v.instance.host_node_name)
    ]
    notes: list[str] = []
    inventory, problems = _replace(read.inventory, _read_instances(session, lacking))
    notes += problems
    view = build_view(sides, inventory, covers=read.covers, unread=read.unread, all_clusters=False, now=now)
    unconfirmed = [
        o.instance.id
        for pair in view.clusters
        for o in pair.orphans
        if o.instance is not None and not o.instance.authoritative
    ]
    if unconfirmed:
        inventory, problems = _replace(inventory, _read_instances(session, unconfirmed))
        notes += problems
    if lacking or unconfirmed:
        notes.append(
            f"{len(lacking) + len(unconfirmed)} ARM read(s) at api-version {VM_INSTANCE_API} for what Resource "
            "Graph lacked or to confirm an orphan"
        )
    return dataclasses.replace(read, inventory=inventory), notes


# --- the command ------------------------------------------------------------------------------------


def _guest_licenses(
    inventory: Inventory,
    resolver: CredentialResolver,
    clusters: Sequence[Cluster],
    gathered: Sequence[ClusterFacts],
    view: AzureView,
    workers: int,
    cancel: threading.Event | None,
) -> dict[str, int]:
    """LicenseStatus from inside the guests Azure has a licenseStatus or a session host for."""
    from hcibenefit.checks.eligibility import requirement
    from hcibenefit.operations.guests.check import probe_targets
    from hcibenefit.operations.guests.targets import GuestTarget

    wanted = {
        vp.vm.name.casefold()
        for pair in view.clusters
        for vp in pair.vms
        if vp.vm.running and (vp.azure.machine.license_status is not None or view.session_hosts_of(vp.azure))
    }
    by_name = {c.name: c for c in clusters}
    targets = [
        GuestTarget(
            vm.name,
            by_name[facts.name],
            inventory.node(host.node),
            vm,
            host,
            requirement(vm, host, inventory.policy),
            by_name[facts.name].guests.vm(vm.name),
        )
        for facts in gathered
        for host in facts.hosts
        for vm in host.vms
        if vm.name.casefold() in wanted
    ]
    if not targets:
        return {}
    records = probe_targets(inventory, resolver, targets, workers=workers, cancel=cancel)
    found = {}
    for record in records:
        license_info = record.evidence.get("license")
        if license_info and isinstance(license_info.get("status"), int):
            found[record.target.name.casefold()] = int(license_info["status"])
    return found


class _AzureReader:
    """Reads Azure on its own thread while the hosts are asked on the caller's, then waits for the hosts'
    facts to make the ARM reads that depend on them. Azure is only read: abandoning the thread (Ctrl-C)
    leaves nothing open on any host."""

    def __init__(
        self, inventory: Inventory, clusters: Sequence[Cluster], snapshots: Sequence[Path], now: dt.datetime
    ):
        self.inventory, self.clusters, self.snapshots, self.now = inventory, clusters, snapshots, now
        self.read: AzureRead | None = None
        self.notes: list[str] = []
        self.failure: BaseException | None = None
        self._sides: Sequence[HostSide] | None = None
        self._hosts_ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hcibenefit-reconcile-azure", daemon=True)

    def start(self) -> None:
        if self.snapshots:
            # A snapshot is read here, before any node is asked: a bad file is exit 2 with nothing sent.
            self._run_snapshot()

    def begin(self) -> None:
        """Start reading Azure (idempotent; nothing to do for a snapshot). Called the first time the host
        pass waits on the network: the Azure SDK's imports and the Resource Graph query take the
        interpreter for some 0.25 s, which would otherwise hold back every node's first request."""
        if not self.snapshots and self._thread.ident is None:
            self._thread.start()

    def _run_snapshot(self) -> None:
        from hcibenefit.operations.azure_read import open_azure

        with open_azure(self.inventory.azure, [], snapshots=self.snapshots) as source:
            self.read = source.read

    def _run(self) -> None:
        from hcibenefit.operations.azure_read import open_azure, scope_of

        try:
            subscriptions = scope_of(self.inventory.azure, self.clusters)
            with open_azure(self.inventory.azure, subscriptions) as source:
                self._hosts_ready.wait()
                read = source.read
                if source.session is not None and self._sides is not None:
                    read, self.notes = authoritative_reads(source.session, read, self._sides, self.now)
                self.read = read
        except BaseException as exc:  # re-raised on the caller's thread
            self.failure = exc

    def abandon(self) -> None:
        """The hosts' side failed or was interrupted: let the thread close its session and end, unwaited."""
        self._hosts_ready.set()

    def finish(self, sides: Sequence[HostSide]) -> AzureRead:
        """Hand over the hosts' facts and wait for the read (and the ARM reads they call for)."""
        self._sides = sides
        self._hosts_ready.set()
        self.begin()  # had the host pass no idle moment
        if self._thread.ident is not None:
            self._thread.join()
        if self.failure is not None:
            raise self.failure
        assert self.read is not None
        return self.read


def run_reconcile(
    inventory: Inventory,
    resolver: CredentialResolver,
    *,
    clusters: Sequence[Cluster],
    all_clusters: bool,
    vm_globs: Sequence[str] = (),
    snapshots: Sequence[Path] = (),
    guests: bool = False,
    workers: int = 16,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
) -> Reconciliation:
    from hcibenefit.operations.gather import gather_clusters

    when = now or dt.datetime.now(dt.timezone.utc)
    azure = _AzureReader(inventory, clusters, snapshots, when)
    azure.start()
    try:
        gathered = gather_clusters(
            inventory, clusters, resolver, workers=workers, cancel=cancel, when_idle=azure.begin
        )[0]
    except BaseException:
        azure.abandon()
        raise
    sides = host_sides(clusters, gathered, inventory.policy, when)
    read = azure.finish(sides)
    notes = list(azure.notes)
    if guests:
        view = build_view(
            sides, read.inventory, covers=read.covers, unread=read.unread, all_clusters=False, now=when
        )
        licenses = _guest_licenses(inventory, resolver, clusters, gathered, view, workers, cancel)
        sides = host_sides(clusters, gathered, inventory.policy, when, licenses)
        notes.append(f"{len(licenses)} guest(s) asked for their activation")
    return reconcile(
        sides,
        read,
        now=when,
        expiry_warning_days=inventory.policy.expiry_warning_days,
        all_clusters=all_clusters,
        vm_globs=vm_globs,
        notes=[*read.notes, *notes],
    )


# --- the report -----------------------------------------------------------------------------------


def _days(when: dt.datetime | None, now: dt.datetime) -> str | None:
    return None if when is None else f"{(now - when).total_seconds() / 86400:.1f}"


def cluster_record(pair: Any, now: dt.datetime) -> dict[str, Any]:
    azure = pair.azure
    members = pair.cluster_nodes()
    return {
        "name": pair.name,
        "azure_id": azure.id if azure else None,
        "matched_by": pair.matched_by,
        "azure_known": pair.azure_known,
        "status": azure.status if azure else None,
        "connectivity": azure.connectivity_status if azure else None,
        "last_sync": azure.last_sync.isoformat() if azure and azure.last_sync else None,
        "days_since_sync": _days(azure.last_sync if azure else None, now),
        "imds_attestation": azure.imds_attestation if azure else None,
        "cluster_version": azure.cluster_version if azure else None,
        "nodes_on_hosts": len(members) if members is not None else None,
        "nodes_in_azure": len(azure.nodes) if azure else None,
        "arc_vm_management": pair.arc_vm_management,
        "arc_vms": len(pair.vms) + len(pair.orphans),
        "joined": {
            "hyperVVmId": sum(1 for v in pair.vms if v.joined_by == "hyperVVmId"),
            "name": sum(1 for v in pair.vms if v.joined_by == "name"),
        },
        "orphaned": [o.name for o in pair.orphans] if pair.hosts_complete else None,
        "not_projected": [v.name for v in pair.unprojected],
        "unreachable": dict(pair.unreachable),
    }


NOT_ASSESSED_FIELDS = (
    "id",
    "check",
    "title",
    "status",
    "severity",
    "cluster",
    "node",
    "vm",
    "message",
    "remediation",
)


def _not_assessed_record(result: Result) -> dict[str, Any]:
    record = result.to_dict()
    return {key: record[key] for key in NOT_ASSESSED_FIELDS}


def _not_assessed_rows(results: Sequence[Result]) -> list[dict[str, Any]]:
    """One row per cluster and reason: a subscription that could not be read leaves every check untold."""
    grouped: dict[tuple[str, str, str], list[Result]] = {}
    for r in results:
        grouped.setdefault((r.target.cluster, r.message, r.remediation or ""), []).append(r)
    return [
        {"cluster": cluster, "checks": len(mine), "why": why, "fix": fix or "-"}
        for (cluster, why, fix), mine in grouped.items()
    ]


def reconcile_report(result: Reconciliation, run_info: Mapping[str, Any] | None = None) -> Report:
    from hcibenefit.operations.status_report import findings_details

    now = result.view.now
    clusters = [cluster_record(p, now) for p in result.view.clusters]
    ordered = sorted(result.findings, key=lambda f: (-f.severity, f.cluster.casefold(), f.check.id, f.target))
    read = result.read
    worst = result.worst()
    data = {
        **(run_info or {}),
        "clusters": clusters,
        "unmanaged": [{"name": c.name, "id": c.id} for c in result.view.unmanaged],
        "findings": [{**f.to_dict(), "doc_url": f.check.doc_url or None} for f in ordered],
        "azure": {
            "source": read.source,
            "scope": list(read.scope) if read.scope is not None else None,
            "errors": [{"subscription": k, "error": v} for k, v in read.errors.items()],
            "requests": read.stats.to_dict(),
            "notes": list(result.notes),
        },
        "unreachable": dict(result.unreachable),
        "not_assessed": [_not_assessed_record(r) for r in result.not_assessed],
        "summary": {
            "findings": len(ordered),
            "worst_severity": worst.label if worst is not None else None,
            "incomplete": result.incomplete,
            "not_assessed": len(result.not_assessed),
        },
    }
    cluster_rows = [
        {
            **c,
            "azure": c["azure_id"].rsplit("/", 1)[-1]
            if c["azure_id"]
            else ("-" if c["azure_known"] else "unknown"),
            "nodes": f"{c['nodes_on_hosts'] if c['nodes_on_hosts'] is not None else '?'}/"
            f"{c['nodes_in_azure'] if c['nodes_in_azure'] is not None else '-'}",
            "vms": f"{c['joined']['hyperVVmId'] + c['joined']['name']}/{c['arc_vms']}"
            if c["arc_vm_management"]
            else "n/a",
            "orphans": len(c["orphaned"]) if c["orphaned"] is not None else "?",
            "unprojected": len(c["not_projected"]) if c["arc_vm_management"] else "n/a",
        }
        for c in clusters
    ]
    finding_rows = [
        {
            "severity": f.severity.label,
            "check": f.check.id,
            "cluster": f.cluster,
            "target": f.target,
            "title": f.check.title,
        }
        for f in ordered
    ]
    tables = [
        Table(
            "Clusters",
            columns(
                ("name", "CLUSTER"),
                ("azure", "AZURE RESOURCE"),
                Column("matched_by", "MATCHED BY", wide=True),
                ("status", "STATUS"),
                ("days_since_sync", "DAYS SINCE SYNC"),
                ("imds_attestation", "IMDS ATTESTATION"),
                ("nodes", "NODES HOST/AZURE"),
                ("vms", "ARC VMS JOINED/ALL"),
                ("orphans", "ORPHANED"),
                ("unprojected", "NOT PROJECTED"),
            ),
            cluster_rows,
        ),
        Table(
            "Findings",
            columns(
                ("severity", "SEVERITY"),
                ("check", "CHECK"),
                ("cluster", "CLUSTER"),
                ("target", "TARGET"),
                Column("title", "WHAT", wrap=True),
            ),
            finding_rows,
            empty="(none: Azure and the hosts agree)",
        ),
    ]
    if result.not_assessed:
        tables.append(
            Table(
                "Not assessed",
                columns(
                    ("cluster", "CLUSTER"),
                    ("checks", "CHECKS"),
                    Column("why", "WHY", wrap=True),
                    Column("fix", "FIX", wrap=True),
                ),
                _not_assessed_rows(result.not_assessed),
            )
        )
    notes = [f"azure: {read.source}", *result.notes]
    notes += [f"! {scope}: {why}" for scope, why in read.errors.items()]
    if read.hint:
        notes.append(f"hint: {read.hint}")
    notes += [f"! {node}: {why}" for node, why in result.unreachable.items()]
    return Report(
        data=data, tables=tables, notes=notes, details=[findings_details(ordered)] if ordered else []
    )
