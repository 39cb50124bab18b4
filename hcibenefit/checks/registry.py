"""The explicit list of checks. A check is a small pure function over facts that yields findings.

Registration is by decorator in the modules named in CHECK_MODULES, imported in that order, so the
list is explicit and a reviewer can read every check in one screen each.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from hcibenefit.checks.eligibility import Requirement
from hcibenefit.checks.model import CheckMeta, ClusterView, Finding
from hcibenefit.facts.host import HostFacts, VMFacts

CHECK_MODULES = ("hcibenefit.checks.node_checks", "hcibenefit.checks.vm_checks")

ClusterCheck = Callable[[CheckMeta, ClusterView], Iterable[Finding]]
NodeCheck = Callable[[CheckMeta, HostFacts, ClusterView], Iterable[Finding]]
VMCheck = Callable[[CheckMeta, "VMContext"], Iterable[Finding]]
F = TypeVar("F")


@dataclass(frozen=True)
class VMContext:
    vm: VMFacts
    host: HostFacts
    cluster: ClusterView
    requirement: Requirement


_cluster_checks: list[tuple[CheckMeta, ClusterCheck]] = []
_node_checks: list[tuple[CheckMeta, NodeCheck]] = []
_vm_checks: list[tuple[CheckMeta, VMCheck]] = []
_ids: set[str] = set()


def _register(meta: CheckMeta, table: list[tuple[CheckMeta, F]]) -> Callable[[F], F]:
    if meta.id in _ids:
        raise ValueError(f"check id {meta.id} registered twice")
    _ids.add(meta.id)

    def decorate(func: F) -> F:
        table.append((meta, func))
        return func

    return decorate


def cluster_check(meta: CheckMeta) -> Callable[[ClusterCheck], ClusterCheck]:
    return _register(meta, _cluster_checks)


def node_check(meta: CheckMeta) -> Callable[[NodeCheck], NodeCheck]:
    return _register(meta, _node_checks)


def vm_check(meta: CheckMeta) -> Callable[[VMCheck], VMCheck]:
    return _register(meta, _vm_checks)


def _load() -> None:
    for module in CHECK_MODULES:
        importlib.import_module(module)


def all_checks() -> list[CheckMeta]:
    _load()
    return [m for m, _ in _cluster_checks] + [m for m, _ in _node_checks] + [m for m, _ in _vm_checks]


def cluster_findings(view: ClusterView) -> Iterator[Finding]:
    _load()
    for meta, check in _cluster_checks:
        yield from check(meta, view)
    for host in view.hosts:
        for meta, node_fn in _node_checks:
            yield from node_fn(meta, host, view)


def vm_findings(context: VMContext) -> Iterator[Finding]:
    _load()
    for meta, check in _vm_checks:
        yield from check(meta, context)
