"""From collected facts to a result for every registered check and every target it is about. Pure.

For each check (checks.registry) and each target of its scope:
  FAIL   the check reported a finding for the target;
  ERROR  the target could not be assessed: its node did not answer, the guest could not be asked, or a
         fact the check needs could not be read (the message says which and why);
  N/A    the check is not about this target (`applies` says why);
  PASS   otherwise.
A check that raises is an ERROR for that check and target, never an aborted run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from hcibenefit.checks.activation_checks import GuestCheckContext
from hcibenefit.checks.eligibility import Requirement, requirement
from hcibenefit.checks.guest_checks import (
    DocumentCheck,
    GuestContext,
    GuestVerdict,
    NotProbed,
    assess_failure,
    assess_not_probed,
    assess_probe,
)
from hcibenefit.checks.model import CheckMeta, ClusterView, Finding
from hcibenefit.checks.registry import (
    Registration,
    VMContext,
    cluster_registrations,
    guest_registrations,
    node_registrations,
    vm_registrations,
)
from hcibenefit.checks.results import Result, Status, Target
from hcibenefit.checks.unassessed import vms_on_unreachable_nodes
from hcibenefit.facts.guest import GuestError, GuestProbe
from hcibenefit.facts.host import HostFacts, VMFacts
from hcibenefit.inventory.model import Policy

log = logging.getLogger(__name__)

GuestAnswer: TypeAlias = "GuestProbe | NotProbed | tuple[GuestError, ...]"

REACHABILITY_CHECKS = frozenset({"cluster.node-unreachable"})
"""Checks that restate reachability, which evaluation reports itself: an ERROR for every check of a node
that did not answer, with why."""

# Fact name -> (how to read it from the node's facts, the script section that reports it).
NODE_FACTS: dict[str, tuple[Callable[[HostFacts], Any], str]] = {
    "registration": (lambda h: h.registration, "Get-AzureStackHCI"),
    "attestation": (lambda h: h.attestation, "Get-AzureStackHCIAttestation"),
    "cluster_nodes": (lambda h: h.cluster_nodes or None, "Get-ClusterNode"),
    "cluster_networks": (lambda h: h.cluster_networks, "Get-ClusterNetwork"),
    "os": (lambda h: h.os_build or None, "Win32_OperatingSystem"),
}
VM_FACTS: dict[str, tuple[Callable[[VMFacts], Any], str]] = {
    "kvp": (lambda vm: vm.kvp, "Msvm_KvpExchangeComponent"),
}
GUEST_FACTS: dict[str, tuple[Callable[[GuestProbe], Any], str]] = {
    "license": (lambda p: p.licensed, "license"),
    "task": (lambda p: True if p.task_known else None, "task"),
}


@dataclass(frozen=True)
class GuestEvidence:
    """What the sweep got from inside one guest: the probe's answer (or why there is none) and the verdict
    on the attested document it fetched."""

    answer: GuestAnswer
    document: DocumentCheck | None = None
    document_expires: dt.datetime | None = None


@dataclass(frozen=True)
class ClusterEvidence:
    name: str
    node_order: tuple[str, ...]
    """Every node the inventory lists for the cluster, in its order."""
    hosts: tuple[HostFacts, ...]
    unreachable: Mapping[str, str]
    """node -> why it could not be assessed (unreachable, refused credentials, deadline)."""
    guests: Mapping[str, GuestEvidence] = field(default_factory=dict)
    """casefolded VM name -> evidence, for the guests the sweep asked or meant to ask."""


@dataclass(frozen=True)
class Evaluation:
    results: tuple[Result, ...]
    guest_verdicts: Mapping[str, GuestVerdict]
    """casefolded VM name -> the one-word verdict of each guest that was meant to be asked."""


def _missing(
    needs: Iterable[str], facts: Mapping[str, tuple[Callable[[Any], Any], str]], subject: Any, problems: Any
) -> str | None:
    for name in needs:
        getter, source = facts[name]
        if getter(subject) is None:
            problem = next((p for p in problems if p.source == source), None)
            if problem is not None:
                return f"{source} failed: {problem.message}"
            return f"{source} reported nothing"
    return None


def _run(reg: Registration[Any], *args: Any) -> list[Finding] | str:
    """The check's findings, or the text of the exception it raised."""
    try:
        return list(reg.func(reg.meta, *args))
    except Exception as exc:  # a bug in one check must not cost the others
        log.debug("check %s failed", reg.meta.id, exc_info=True)
        return f"the check itself failed ({type(exc).__name__}: {exc}); this is a bug in hcibenefit"


def _fail(finding: Finding, target: Target) -> Result:
    return Result(finding.check, target, Status.FAIL, finding.detail, finding.remediation)


def _fold(findings: Sequence[Finding], meta: CheckMeta, target: Target) -> Result:
    """One FAIL from one or more findings for the same check and target."""
    if len(findings) == 1:
        return _fail(findings[0], target)
    detail = "; ".join(f.detail for f in findings)
    fixes = list(dict.fromkeys(f.remediation for f in findings))
    return Result(meta, target, Status.FAIL, detail, "; ".join(fixes))


def _error(meta: CheckMeta, target: Target, why: str, fix: str | None = None) -> Result:
    return Result(meta, target, Status.ERROR, why, fix)


def _node_fix(node: str) -> str:
    return f"check that {node} is up and WinRM answers (Test-WSMan {node}), then run the sweep again"


def evaluate_cluster(
    evidence: ClusterEvidence,
    policy: Policy,
    now: dt.datetime,
    *,
    vm_selected: Callable[[str], bool] = lambda _name: True,
) -> Evaluation:
    view = ClusterView(
        name=evidence.name,
        hosts=evidence.hosts,
        unreachable=evidence.unreachable,
        now=now,
        expiry_warning_days=policy.expiry_warning_days,
        policy=policy,
    )
    results: list[Result] = []
    results += _cluster_results(view, evidence)
    results += _node_results(view, evidence)
    vm_results, verdicts = _vm_and_guest_results(view, evidence, policy, now, vm_selected)
    results += vm_results
    results += _unassessed_vm_results(evidence, vm_selected)
    return Evaluation(tuple(results), verdicts)


def _unassessed_vm_results(evidence: ClusterEvidence, vm_selected: Callable[[str], bool]) -> list[Result]:
    """A VM another node of the cluster names on a node that was not reached: every VM and guest check is an
    ERROR for it, with why, under the ids it has when its node answers (so runs compare)."""
    results: list[Result] = []
    for vm in vms_on_unreachable_nodes(evidence.name, evidence.hosts, evidence.unreachable):
        if not vm_selected(vm.name):
            continue
        target = Target(evidence.name, vm.node, vm.name)
        for reg in (*vm_registrations(), *guest_registrations()):
            results.append(_error(reg.meta, target, vm.reason, _node_fix(vm.node)))
    return results


def _node_target(view: ClusterView, name: str) -> Target:
    return Target(view.name, name)


def _cluster_results(view: ClusterView, evidence: ClusterEvidence) -> list[Result]:
    results: list[Result] = []
    nodes = {n.casefold(): n for n in evidence.node_order}
    for reg in cluster_registrations():
        if reg.meta.id in REACHABILITY_CHECKS:
            continue
        target = Target(view.name)
        found = _run(reg, view)
        if isinstance(found, str):
            results.append(_error(reg.meta, target, found))
            continue
        by_target: dict[str, list[Finding]] = {}
        for f in found:
            by_target.setdefault(f.target.casefold(), []).append(f)
        cluster_level = by_target.pop(view.name.casefold(), [])
        for key, mine in by_target.items():
            results.append(_fold(mine, reg.meta, Target(view.name, nodes.get(key, mine[0].target))))
        if cluster_level:
            results.append(_fold(cluster_level, reg.meta, target))
        elif not by_target:
            why = reg.not_applicable(view)
            results.append(Result(reg.meta, target, Status.NA if why else Status.PASS, why or "ok"))
    return results


def _node_results(view: ClusterView, evidence: ClusterEvidence) -> list[Result]:
    results: list[Result] = []
    hosts = {h.node.casefold(): h for h in view.hosts}
    names = {n.casefold(): n for n in evidence.node_order}
    for h in view.hosts:
        names.setdefault(h.node.casefold(), h.node)
    for reg in node_registrations():
        # A node check may speak about another node (a member Get-ClusterNode shows Down), so collect the
        # findings of every host first, then give each node one result.
        findings: dict[str, list[Finding]] = {}
        errors: dict[str, str] = {}
        for key, host in hosts.items():
            missing = _missing(reg.needs, NODE_FACTS, host, host.problems)
            if missing is not None:
                errors[key] = missing
                continue
            found = _run(reg, host, view)
            if isinstance(found, str):
                errors[key] = found
                continue
            for f in found:
                findings.setdefault(f.target.casefold(), []).append(f)
        unreachable = {n.casefold(): why for n, why in evidence.unreachable.items()}
        for key in [*names, *(k for k in findings if k not in names)]:
            target = _node_target(view, names.get(key) or findings[key][0].target)
            if key in findings:
                results.append(_fold(findings[key], reg.meta, target))
            elif key in errors:
                results.append(_error(reg.meta, target, errors[key]))
            elif key in unreachable:
                results.append(_error(reg.meta, target, unreachable[key], _node_fix(target.node or "")))
            elif key in hosts:
                why = reg.not_applicable(hosts[key])
                results.append(Result(reg.meta, target, Status.NA if why else Status.PASS, why or "ok"))
    return results


def _vm_and_guest_results(
    view: ClusterView,
    evidence: ClusterEvidence,
    policy: Policy,
    now: dt.datetime,
    vm_selected: Callable[[str], bool],
) -> tuple[list[Result], dict[str, GuestVerdict]]:
    results: list[Result] = []
    verdicts: dict[str, GuestVerdict] = {}
    for host in view.hosts:
        for vm in host.vms:
            if not vm_selected(vm.name):
                continue
            req = requirement(vm, host, policy)
            target = Target(view.name, host.node, vm.name)
            context = VMContext(vm, host, view, req)
            for reg in vm_registrations():
                results.append(_vm_result(reg, context, target))
            guest_results, verdict = _guest_results(view, evidence, vm, host, req, target, now)
            results += guest_results
            if verdict is not None:
                verdicts[vm.name.casefold()] = verdict
    return results, verdicts


def _vm_result(reg: Registration[Any], context: VMContext, target: Target) -> Result:
    missing = _missing(reg.needs, VM_FACTS, context.vm, context.host.problems)
    if missing is not None:
        return _error(reg.meta, target, missing)
    why = reg.not_applicable(context)
    if why is not None:
        return Result(reg.meta, target, Status.NA, why)
    found = _run(reg, context)
    if isinstance(found, str):
        return _error(reg.meta, target, found)
    if found:
        return _fold(found, reg.meta, target)
    return Result(reg.meta, target, Status.PASS, "ok")


def guest_not_applicable(vm: VMFacts, req: Requirement) -> str | None:
    """Why the sweep does not ask this guest: only running VMs that need Azure Benefits are asked."""
    if req.needed is False:
        return f"does not need Azure Benefits: {req.reason}"
    if req.needed is None:
        return f"cannot tell whether it needs Azure Benefits: {req.reason}"
    if not vm.running:
        return f"the VM is {vm.state}; only a running guest can be asked"
    return None


def _guest_results(
    view: ClusterView,
    evidence: ClusterEvidence,
    vm: VMFacts,
    host: HostFacts,
    req: Requirement,
    target: Target,
    now: dt.datetime,
) -> tuple[list[Result], GuestVerdict | None]:
    registrations = guest_registrations()
    skip = guest_not_applicable(vm, req)
    if skip is not None:
        return [Result(r.meta, target, Status.NA, skip) for r in registrations], None
    ctx = GuestContext(vm.name, view.name, host.node, vm, host, req)
    found = evidence.guests.get(vm.name.casefold())
    answer: GuestAnswer = found.answer if found else NotProbed("no-answer", "the guest was not asked")
    if isinstance(answer, NotProbed):
        verdict = assess_not_probed(ctx, answer)
    elif isinstance(answer, tuple):
        verdict = assess_failure(ctx, answer)
    else:
        assert found is not None
        verdict = assess_probe(ctx, answer, found.document)
    if not isinstance(answer, GuestProbe):
        text = f"{verdict.title}: {verdict.detail}" if verdict.detail else verdict.title
        return [_error(r.meta, target, text, verdict.fix) for r in registrations], verdict
    assert found is not None
    check_ctx = GuestCheckContext(ctx, vm, host, answer, found.document, found.document_expires, verdict, now)
    results = []
    for reg in registrations:
        missing = _missing(reg.needs, GUEST_FACTS, answer, answer.problems)
        if missing is not None:
            results.append(_error(reg.meta, target, missing))
            continue
        not_about = reg.not_applicable(check_ctx)
        if not_about is not None:
            results.append(Result(reg.meta, target, Status.NA, not_about))
            continue
        findings = _run(reg, check_ctx)
        if isinstance(findings, str):
            results.append(_error(reg.meta, target, findings))
        elif findings:
            results.append(_fold(findings, reg.meta, target))
        else:
            results.append(Result(reg.meta, target, Status.PASS, "ok"))
    return results, verdict
