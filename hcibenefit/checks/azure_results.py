"""The azure checks as results, PASS/FAIL/ERROR/N/A per check and cluster, for a sweep. Pure.

A FAIL for every finding (its target: the cluster, a node, or a VM); for a cluster without one, an
ERROR when the check needs what is missing ("azure": the cluster's subscription could not be read, with
what failed and what would fix it; "hosts": a node did not answer; "cluster_nodes": no node listed the
members), N/A when the check is not about the cluster (the reason its registration gives), PASS
otherwise. An Azure cluster no inventory lists gets its FAIL under its own
name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hcibenefit.azure.join import AzureView, ClusterPair
from hcibenefit.checks.azure_checks import NODE_CHECKS, VM_CHECKS
from hcibenefit.checks.model import CheckMeta, Finding
from hcibenefit.checks.registry import azure_registrations
from hcibenefit.checks.results import Result, Status, Target

log = logging.getLogger(__name__)


def _target(finding: Finding) -> Target:
    if finding.check.id in VM_CHECKS:
        return Target(finding.cluster, None, finding.target)
    if finding.check.id in NODE_CHECKS:
        return Target(finding.cluster, finding.target)
    return Target(finding.cluster)


def _fail(meta: CheckMeta, target: Target, findings: Sequence[Finding]) -> Result:
    detail = "; ".join(f.detail for f in findings)
    fixes = "; ".join(dict.fromkeys(f.remediation for f in findings))
    return Result(meta, target, Status.FAIL, detail, fixes)


def _azure_missing(needs: Sequence[str], pair: ClusterPair) -> tuple[str, str | None] | None:
    """(what could not be read, what would fix it) when the check needs Azure and the cluster's
    subscription was not read: what Azure lacks there cannot be told, so nothing may pass."""
    if "azure" in needs and pair.azure is None and not pair.azure_known:
        return pair.unread or ("the cluster's Azure subscription could not be read", None)
    return None


def _hosts_missing(needs: Sequence[str], pair: ClusterPair) -> tuple[str, str | None] | None:
    if "hosts" in needs and not pair.hosts_complete:
        down = ", ".join(sorted(pair.unreachable)) or "every node"
        return f"not every node answered ({down}), so what the hosts lack cannot be told", None
    if "cluster_nodes" in needs and pair.cluster_nodes() is None:
        return "no node reported the cluster's members (Get-ClusterNode)", None
    return None


def evaluate_azure(view: AzureView) -> list[Result]:
    results: list[Result] = []
    for reg in azure_registrations():
        try:
            findings = list(reg.func(reg.meta, view))
        except Exception as exc:  # a bug in one check must not cost the others
            log.debug("check %s failed", reg.meta.id, exc_info=True)
            text = f"the check itself failed ({type(exc).__name__}: {exc}); this is a bug in hcibenefit"
            results += [Result(reg.meta, Target(p.name), Status.ERROR, text) for p in view.clusters]
            continue
        grouped: dict[str, tuple[Target, list[Finding]]] = {}
        for finding in findings:
            target = _target(finding)
            grouped.setdefault(target.key, (target, []))[1].append(finding)
        failing_clusters = {target.cluster.casefold() for target, _ in grouped.values()}
        results += [_fail(reg.meta, target, mine) for target, mine in grouped.values()]
        for pair in view.clusters:
            if pair.name.casefold() in failing_clusters:
                continue
            target = Target(pair.name)
            # Azure unread: cannot tell. Then: not about this cluster (N/A), whatever the hosts said.
            # Then: about it, but a node that did not answer leaves it untold.
            missing = _azure_missing(reg.needs, pair)
            why = None if missing else reg.not_applicable(pair)
            if missing is None and why is None:
                missing = _hosts_missing(reg.needs, pair)
            if missing is not None:
                results.append(Result(reg.meta, target, Status.ERROR, *missing))
            else:
                results.append(Result(reg.meta, target, Status.NA if why else Status.PASS, why or "ok"))
    return results
