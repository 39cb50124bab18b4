"""The explicit list of checks. A check is a small pure function over facts that yields findings.

Registration is by decorator in the modules named in CHECK_MODULES, imported in that order, so the
list is explicit and a reviewer can read every check in one screen each.

Each registration also says which targets the check is about, so a run can report a result for every
check and target (PASS, FAIL, ERROR, N/A), not only the failures:
- the scope of its meta picks the targets (every node, every VM, every guest of a cluster);
- `applies` answers None for a target the check is about, or why it is not (the N/A reason);
- `needs` names the facts without which it cannot judge (an ERROR, with the reason the facts are
  missing, rather than a PASS by silence).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hcibenefit.checks.eligibility import Requirement
from hcibenefit.checks.model import CheckMeta, ClusterView, Finding
from hcibenefit.facts.host import HostFacts, VMFacts

CHECK_MODULES = (
    "hcibenefit.checks.node_checks",
    "hcibenefit.checks.vm_checks",
    "hcibenefit.checks.fleet_checks",
    "hcibenefit.checks.activation_checks",
    "hcibenefit.checks.azure_checks",
)

ClusterCheck = Callable[[CheckMeta, ClusterView], Iterable[Finding]]
NodeCheck = Callable[[CheckMeta, HostFacts, ClusterView], Iterable[Finding]]
VMCheck = Callable[[CheckMeta, "VMContext"], Iterable[Finding]]
GuestCheck = Callable[[CheckMeta, Any], Iterable[Finding]]
"""Takes a checks.activation_checks.GuestCheckContext (typed there: it needs the guest facts)."""
AzureCheck = Callable[[CheckMeta, Any], Iterable[Finding]]
"""Takes an azure.join.AzureView: Azure's resources beside the inventory's clusters and their hosts."""
F = TypeVar("F")
C = TypeVar("C")

Applies = Callable[[Any], "str | None"]
"""Context -> None when the check is about this target, else why not (shown as the N/A reason)."""


@dataclass(frozen=True)
class VMContext:
    vm: VMFacts
    host: HostFacts
    cluster: ClusterView
    requirement: Requirement


@dataclass(frozen=True)
class Registration(Generic[F]):
    meta: CheckMeta
    func: F
    applies: Applies | None = None
    needs: tuple[str, ...] = ()
    """Fact names the check cannot judge without (see checks.evaluate.NODE_FACTS)."""

    def not_applicable(self, context: Any) -> str | None:
        return None if self.applies is None else self.applies(context)


_cluster_checks: list[Registration[ClusterCheck]] = []
_node_checks: list[Registration[NodeCheck]] = []
_vm_checks: list[Registration[VMCheck]] = []
_guest_checks: list[Registration[GuestCheck]] = []
_azure_checks: list[Registration[AzureCheck]] = []
_ids: set[str] = set()


def _register(
    meta: CheckMeta, table: list[Registration[F]], applies: Applies | None, needs: tuple[str, ...]
) -> Callable[[F], F]:
    if meta.id in _ids:
        raise ValueError(f"check id {meta.id} registered twice")
    _ids.add(meta.id)

    def decorate(func: F) -> F:
        table.append(Registration(meta, func, applies, tuple(needs)))
        return func

    return decorate


def cluster_check(
    meta: CheckMeta, *, applies: Applies | None = None, needs: tuple[str, ...] = ()
) -> Callable[[ClusterCheck], ClusterCheck]:
    return _register(meta, _cluster_checks, applies, needs)


def node_check(
    meta: CheckMeta, *, applies: Applies | None = None, needs: tuple[str, ...] = ()
) -> Callable[[NodeCheck], NodeCheck]:
    """`applies` gets the node's HostFacts."""
    return _register(meta, _node_checks, applies, needs)


def vm_check(
    meta: CheckMeta, *, applies: Applies | None = None, needs: tuple[str, ...] = ()
) -> Callable[[VMCheck], VMCheck]:
    """`applies` gets the VMContext."""
    return _register(meta, _vm_checks, applies, needs)


def guest_check(
    meta: CheckMeta, *, applies: Applies | None = None, needs: tuple[str, ...] = ()
) -> Callable[[GuestCheck], GuestCheck]:
    """`applies` gets the GuestCheckContext; it is asked only for guests that answered."""
    return _register(meta, _guest_checks, applies, needs)


def azure_check(
    meta: CheckMeta, *, applies: Applies | None = None, needs: tuple[str, ...] = ()
) -> Callable[[AzureCheck], AzureCheck]:
    """Reconciliation with Azure (scope azure). `applies` gets an azure.join.ClusterPair; `needs`
    names what the check cannot judge without: "azure" (the cluster's Azure resource was read),
    "hosts" (every node answered), "cluster_nodes" (some node reported Get-ClusterNode)."""
    return _register(meta, _azure_checks, applies, needs)


_loaded = False


def _load() -> None:
    # Called for every VM: once the modules are imported, a flag is cheaper than five import lookups.
    global _loaded
    if _loaded:
        return
    for module in CHECK_MODULES:
        importlib.import_module(module)
    _loaded = True


def load_checks() -> None:
    """Import every check module now rather than at the first assessment (a fleet run does it while it
    waits on the hosts)."""
    _load()


def all_checks() -> list[CheckMeta]:
    _load()
    return [r.meta for table in _tables() for r in table]


def _tables() -> tuple[list[Any], ...]:
    return (_cluster_checks, _node_checks, _vm_checks, _guest_checks, _azure_checks)


def cluster_registrations() -> tuple[Registration[ClusterCheck], ...]:
    _load()
    return tuple(_cluster_checks)


def node_registrations() -> tuple[Registration[NodeCheck], ...]:
    _load()
    return tuple(_node_checks)


def vm_registrations() -> tuple[Registration[VMCheck], ...]:
    _load()
    return tuple(_vm_checks)


def guest_registrations() -> tuple[Registration[GuestCheck], ...]:
    _load()
    return tuple(_guest_checks)


def azure_registrations() -> tuple[Registration[AzureCheck], ...]:
    _load()
    return tuple(_azure_checks)


def azure_findings(view: Any) -> Iterator[Finding]:
    """Every azure check's findings over an azure.join.AzureView."""
    _load()
    for reg in _azure_checks:
        yield from reg.func(reg.meta, view)


def cluster_findings(view: ClusterView) -> Iterator[Finding]:
    _load()
    for reg in _cluster_checks:
        yield from reg.func(reg.meta, view)
    for host in view.hosts:
        for node_reg in _node_checks:
            yield from node_reg.func(node_reg.meta, host, view)


def vm_findings(context: VMContext) -> Iterator[Finding]:
    _load()
    for reg in _vm_checks:
        yield from reg.func(reg.meta, context)
