"""`hcibenefit sweep`: collect, judge, waive, remember, compare, and hand one document to the renderers.

Everything that can refuse the run (the waivers file, the history file, the trust material) is read before
the first connection, so a mistake there changes nothing and costs no remote session.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hcibenefit import __version__
from hcibenefit.checks.eligibility import requirement
from hcibenefit.checks.evaluate import ClusterEvidence, evaluate_cluster, guest_not_applicable
from hcibenefit.checks.guest_checks import GuestVerdict
from hcibenefit.checks.model import Severity
from hcibenefit.checks.registry import all_checks
from hcibenefit.checks.results import Result
from hcibenefit.checks.unassessed import UnassessedVM, vms_on_unreachable_nodes
from hcibenefit.errors import UsageError
from hcibenefit.exitcodes import ExitCode
from hcibenefit.facts.guest import GuestProbe
from hcibenefit.inventory import CredentialResolver, Inventory
from hcibenefit.operations.sweep.azure import AzurePart
from hcibenefit.operations.sweep.azure import wanted as azure_wanted
from hcibenefit.operations.sweep.collect import Progress, Scope, collect
from hcibenefit.publish.azure_monitor import Publication
from hcibenefit.sweep.history import History
from hcibenefit.sweep.model import RunDocument, compare, inventory_hash, scope_key
from hcibenefit.sweep.waivers import Waivers, load_waivers


@dataclass(frozen=True)
class SweepRequest:
    scope: Scope
    workers: int = 16
    deadline_s: float | None = None
    deadline_text: str | None = None
    fail_on: Severity | None = Severity.MEDIUM
    waivers_path: Path | None = None
    history_path: Path | None = None
    """None: no history (--no-history)."""
    from_dir: Path | None = None
    publish: tuple[str, ...] = ()
    """Destinations for the run's results: "azure-monitor" (the inventory's azure_monitor: section)."""


PUBLISH_TARGETS = ("azure-monitor",)


@dataclass
class SweepOutcome:
    document: dict[str, Any]
    exit_code: ExitCode
    run_id: int | None = None
    notes: list[str] = field(default_factory=list)
    publication: Publication | None = None


def check_publish(inventory: Inventory, request: SweepRequest) -> None:
    """Refuse a publication that could not be kept, before anything is sent."""
    for target in request.publish:
        if target not in PUBLISH_TARGETS:
            raise UsageError(
                f"--publish {target}: unknown destination", hint=f"one of: {', '.join(PUBLISH_TARGETS)}"
            )
    if not request.publish:
        return
    if request.history_path is None:
        raise UsageError(
            "--publish needs the history: a run that cannot be sent waits there for the next run",
            hint="drop --no-history",
        )
    if inventory.azure_monitor is None:
        raise UsageError(
            f"--publish azure-monitor: the inventory {inventory.source} has no azure_monitor: section",
            hint="add azure_monitor: {endpoint: <data collection endpoint>, rule_id: dcr-..., stream: "
            "Custom-HcibenefitSweep} (docs/azure-monitor.md)",
        )


def fleet_hash(inventory: Inventory) -> str:
    return inventory_hash((c.name, [n.name for n in c.nodes]) for c in inventory.clusters)


def selection_key(request: SweepRequest, inventory: Inventory) -> str:
    scope = request.scope
    all_clusters = len(scope.clusters) == len(inventory.clusters)
    return scope_key(
        {
            "clusters": [] if all_clusters else [c.name for c in scope.clusters],
            "nodes": [n.name for n in scope.nodes],
            "vms": list(scope.selection.vms),
        }
    )


def run_sweep(
    inventory: Inventory,
    resolver: CredentialResolver,
    request: SweepRequest,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> SweepOutcome:
    clock = now or (lambda: dt.datetime.now(dt.timezone.utc))
    known = [m.id for m in all_checks()]
    waivers_path = request.waivers_path or inventory.policy.waivers
    waivers = load_waivers(waivers_path, known) if waivers_path else Waivers()
    check_publish(inventory, request)
    history = History(request.history_path) if request.history_path else None
    try:
        started = clock()
        azure_results: list[Result] = []
        notes: list[str] = []
        if request.from_dir is not None:
            from hcibenefit.operations.sweep.offline import collect_from_dir

            collected = collect_from_dir(inventory, request.from_dir, request.scope, now=clock)
            if azure_wanted(inventory):
                notes.append("Azure was not read: --from-dir judges what was collected on the nodes only")
        else:
            azure = _start_azure(inventory, request, started)
            try:
                collected = collect(
                    inventory,
                    resolver,
                    request.scope,
                    workers=request.workers,
                    deadline_s=request.deadline_s,
                    progress=progress,
                    cancel=cancel,
                    now=clock,
                    # Azure starts once the nodes' first requests are out, not before them.
                    when_idle=azure.begin if azure is not None else None,
                )
            except BaseException:
                if azure is not None:
                    azure.abandon()
                raise
            if azure is not None:
                azure.hosts_answered(collected.clusters)
                left = None
                if request.deadline_s is not None:
                    left = max(0.0, request.deadline_s - (clock() - started).total_seconds())
                azure_results = azure.results(left)
                notes += azure.notes
                azure.forget_hosts()
        finished = clock()
        # _conclude lets go of each cluster's facts once it is judged, so nothing here may keep them: the
        # facts of 10,000 VMs and their guests (~30 MB) make room for the ~140,000 results.
        clusters, deadline_reached = list(collected.clusters), collected.deadline_reached
        del collected
        outcome = _conclude(
            inventory, request, clusters, deadline_reached, waivers, history, started, finished, azure_results
        )
        outcome.notes[:0] = notes
        if history is not None and inventory.azure_monitor is not None and "azure-monitor" in request.publish:
            _publish(outcome, history, inventory)
        return outcome
    finally:
        if history is not None:
            history.close()


def _publish(outcome: SweepOutcome, history: History, inventory: Inventory) -> None:
    """Send this run and every earlier one still pending; a failure keeps them pending and makes the run
    incomplete (exit 4), since what was asked for was not all done."""
    from hcibenefit.publish.azure_monitor import publish_pending

    assert inventory.azure_monitor is not None
    publication = publish_pending(history, inventory.azure_monitor, inventory.azure)
    outcome.publication = publication
    outcome.notes += publication.notes()
    if not publication.complete:
        outcome.exit_code = ExitCode.combine(
            findings=outcome.exit_code in (ExitCode.FINDINGS, ExitCode.FINDINGS_AND_INCOMPLETE),
            incomplete=True,
        )


def _start_azure(inventory: Inventory, request: SweepRequest, started: dt.datetime) -> AzurePart | None:
    if not azure_wanted(inventory):
        return None
    scope = request.scope
    whole = len(scope.clusters) == len(inventory.clusters) and not scope.nodes
    return AzurePart(inventory, scope, all_clusters=whole, now=started)


def _conclude(
    inventory: Inventory,
    request: SweepRequest,
    clusters: list[ClusterEvidence],
    deadline_reached: bool,
    waivers: Waivers,
    history: History | None,
    started: dt.datetime,
    finished: dt.datetime,
    azure_results: Sequence[Result] = (),
) -> SweepOutcome:
    """Judge `clusters` (emptied on the way: each cluster's facts go once its results exist), waive,
    remember and compare, and build the document."""
    selected = _selected_vms(request.scope, clusters)
    # What the run document says about the targets is read from the facts before they go; the horizon's
    # verdicts are filled in once every cluster is judged (a name's last verdict, as always).
    targets = {
        **_targets(inventory, selected, clusters),
        "excluded": _excluded(request.scope, clusters),
    }
    horizon = _horizon(inventory, selected, clusters)
    results: list[Result] = list(azure_results)
    verdicts: dict[str, GuestVerdict] = {}
    clusters.reverse()
    while clusters:
        evidence = clusters.pop()
        evaluation = evaluate_cluster(
            evidence, inventory.policy, finished, vm_selected=_member_of(selected[evidence.name])
        )
        del evidence
        results += evaluation.results
        verdicts.update(evaluation.guest_verdicts)
        del evaluation
    _add_verdicts(horizon, verdicts)
    results, uses = waivers.apply(results, finished)
    threshold = request.fail_on
    findings = any(r.counts_as_failure and threshold is not None and r.severity >= threshold for r in results)
    incomplete = deadline_reached or any(r.counts_as_unassessed for r in results)
    code = ExitCode.combine(findings=findings, incomplete=incomplete)
    # Records that read from their results, not dicts: ~140,000 at 10,000 VMs (checks.results).
    records = [r.record() for r in results]
    del results  # the records hold the results; the list of them need not stay too
    fleet, scope = fleet_hash(inventory), selection_key(request, inventory)
    run: dict[str, Any] = {
        "id": None,
        "uid": str(uuid.uuid4()),
        "collector": socket.gethostname(),
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "duration_s": round((finished - started).total_seconds(), 3),
        "hcibenefit_version": __version__,
        "inventory": str(inventory.source),
        "inventory_hash": fleet,
        "selection": {
            "clusters": [c.name for c in request.scope.clusters],
            "nodes": [n.name for n in request.scope.nodes],
            "vms": list(request.scope.selection.vms),
        },
        "source": f"from-dir:{request.from_dir}" if request.from_dir else _transports(request.scope),
        "deadline": request.deadline_text,
        "deadline_reached": deadline_reached,
        "fail_on": threshold.label if threshold is not None else "none",
        "exit_code": int(code),
        "waivers_file": str(waivers.source) if waivers.source else None,
        "targets": targets,
        "sites": {c.name: c.site for c in request.scope.clusters},
        "horizon": horizon,
    }
    notes = [n for u in uses if (n := u.note())]
    outcome = SweepOutcome({}, code, notes=notes)
    document = RunDocument(run, records, waivers=[u.to_dict() for u in uses])
    if history is not None:
        previous = history.previous(inventory_hash=fleet, scope=scope)
        run_id = history.record(
            run,
            records,
            inventory_hash=fleet,
            scope=scope,
            waivers=document.waivers,
            publish_to=_destinations(inventory, request),
        )
        run["id"] = run_id
        outcome.run_id = run_id
        before = history.problems(previous.id) if previous else []
        changes = compare(before, records)
        document.changes = changes.to_dict(
            {"id": previous.id, "started": previous.started} if previous else None
        )
        document.trend = [p.to_dict() for p in history.trend(inventory_hash=fleet, scope=scope)]
    outcome.document = document.to_dict()
    return outcome


def _transports(scope: Scope) -> str:
    """How the nodes were reached: winrm, arc, or arc+winrm for a run over both."""
    used = {n.transport for c in scope.clusters for n in scope.nodes_of(c)}
    return "+".join(sorted(used)) or "winrm"


def _destinations(inventory: Inventory, request: SweepRequest) -> list[str]:
    from hcibenefit.publish.azure_monitor import target_key

    if "azure-monitor" in request.publish and inventory.azure_monitor is not None:
        return [target_key(inventory.azure_monitor)]
    return []


def _horizon(
    inventory: Inventory, selected: dict[str, set[str]], clusters: Sequence[ClusterEvidence]
) -> list[dict[str, Any]]:
    """Every selected VM that needs Azure Benefits, with the day its benefits lapse if its host stops
    renewing: the host's IMDS attestation expiry (renewed by the host's sync with Azure). The verdicts
    come later (`_add_verdicts`)."""
    horizon = []
    for evidence in clusters:
        for host in evidence.hosts:
            expires = host.attestation.expiration if host.attestation else None
            for vm in host.vms:
                if vm.name.casefold() not in selected[evidence.name]:
                    continue
                if requirement(vm, host, inventory.policy).needed is not True:
                    continue
                horizon.append(
                    {
                        "cluster": evidence.name,
                        "node": host.node,
                        "vm": vm.name,
                        "benefits_expire": expires.isoformat() if expires else None,
                        "verdict": None,
                    }
                )
    return horizon


def _add_verdicts(horizon: list[dict[str, Any]], verdicts: Mapping[str, GuestVerdict]) -> None:
    """Each horizon entry's guest verdict, by VM name (casefolded) as the evaluation gave them."""
    for entry in horizon:
        verdict = verdicts.get(entry["vm"].casefold())
        entry["verdict"] = str(verdict.verdict) if verdict is not None else None


def _member_of(names: set[str]) -> Callable[[str], bool]:
    return lambda name: name.casefold() in names


def _unassessed(evidence: ClusterEvidence) -> list[UnassessedVM]:
    return vms_on_unreachable_nodes(evidence.name, evidence.hosts, evidence.unreachable)


def _selected_vms(scope: Scope, clusters: Sequence[ClusterEvidence]) -> dict[str, set[str]]:
    """Per cluster, the casefolded names of the VMs the selection takes, among those the nodes reported and
    those another node names on a node that did not answer. A --vm name that matches no VM anywhere is a
    usage error, unless a node that did not answer may hold it."""
    selected: dict[str, set[str]] = {}
    everything = [vm for c in clusters for h in c.hosts for vm in h.vms]
    for evidence in clusters:
        names = [vm.name for h in evidence.hosts for vm in h.vms] + [u.name for u in _unassessed(evidence)]
        picked = scope.selection.match_vms(names, name_of=lambda name: name, exclusion=scope.exclusion)
        selected[evidence.name] = {name.casefold() for name in picked.selected}
    if scope.selection.vms and not any(c.unreachable for c in clusters):
        match = scope.selection.match_vms(everything, name_of=lambda v: v.name, exclusion=scope.exclusion)
        match.raise_unmatched(
            [v.name for v in everything], where="on the selected nodes", nothing_done="no run was recorded"
        )
    return selected


def _excluded(scope: Scope, clusters: Sequence[ClusterEvidence]) -> list[dict[str, Any]]:
    """VMs policy.exclude_globs keeps out of the sweep, with the rule: never silently dropped."""
    out = []
    for evidence in clusters:
        for host in evidence.hosts:
            match = scope.selection.match_vms(host.vms, name_of=lambda v: v.name, exclusion=scope.exclusion)
            out += [
                {"cluster": evidence.name, "node": host.node, "vm": vm.name, "rule": rule}
                for vm, rule in match.excluded
            ]
        named = scope.selection.match_vms(
            _unassessed(evidence), name_of=lambda v: v.name, exclusion=scope.exclusion
        )
        out += [
            {"cluster": evidence.name, "node": vm.node, "vm": vm.name, "rule": rule}
            for vm, rule in named.excluded
        ]
    return out


def _targets(
    inventory: Inventory, selected: dict[str, set[str]], clusters: Sequence[ClusterEvidence]
) -> dict[str, Any]:
    nodes_ok = vms = guests_ok = guests_na = 0
    not_assessed: list[dict[str, Any]] = []
    for evidence in clusters:
        for name, why in evidence.unreachable.items():
            not_assessed.append({"cluster": evidence.name, "node": name, "vm": None, "reason": why})
        for named in _unassessed(evidence):
            if named.name.casefold() in selected[evidence.name]:
                not_assessed.append(
                    {"cluster": evidence.name, "node": named.node, "vm": named.name, "reason": named.reason}
                )
        for host in evidence.hosts:
            nodes_ok += 1
            for vm in host.vms:
                if vm.name.casefold() not in selected[evidence.name]:
                    continue
                vms += 1
                if guest_not_applicable(vm, requirement(vm, host, inventory.policy)) is not None:
                    guests_na += 1
                    continue
                found = evidence.guests.get(vm.name.casefold())
                if found is not None and isinstance(found.answer, GuestProbe):
                    guests_ok += 1
                else:
                    why = _not_probed_reason(found.answer if found else None)
                    not_assessed.append(
                        {"cluster": evidence.name, "node": host.node, "vm": vm.name, "reason": why}
                    )
    return {
        "assessed": {"nodes": nodes_ok, "vms": vms, "guests": guests_ok},
        "guests_not_applicable": guests_na,
        "not_assessed": not_assessed,
    }


def _not_probed_reason(answer: Any) -> str:
    from hcibenefit.checks.guest_checks import REASONS, classify_failure

    if answer is None:
        return "the guest was not asked"
    if isinstance(answer, tuple):
        _, code = classify_failure(answer[0])
        detail = "; ".join(f"{e.message} [{e.error_id}]" if e.error_id else e.message for e in answer)
        return f"{REASONS[code].title}: {detail}"
    reason = REASONS.get(answer.reason)
    return f"{reason.title if reason else answer.reason}: {answer.detail}"


def stored_document(
    history: History, run_ref: str | int, *, inventory_hash: str | None = None
) -> dict[str, Any]:
    """A run from history as the sweep rendered it: its results, the changes since the run before it of the
    same fleet and selection, and the trend up to it."""
    info = history.run(run_ref, inventory_hash=inventory_hash)
    run = {**info.meta.get("run", {}), "id": info.id}
    records = history.records(info.id)
    document = RunDocument(run, records, waivers=list(info.meta.get("waivers", [])))
    previous = history.previous(inventory_hash=info.inventory_hash, scope=info.scope, before_id=info.id)
    before = history.problems(previous.id) if previous else []
    document.changes = compare(before, records).to_dict(
        {"id": previous.id, "started": previous.started} if previous else None
    )
    document.trend = [
        p.to_dict()
        for p in history.trend(inventory_hash=info.inventory_hash, scope=info.scope, until_id=info.id)
    ]
    return document.to_dict()
