"""Collecting host facts: one host-facts call per node, nodes in parallel, never one call per VM."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hcibenefit.errors import UsageError
from hcibenefit.inventory import Cluster, CredentialResolver, Inventory, Node
from hcibenefit.inventory.model import AzureSettings
from hcibenefit.operations.tlswarn import warn_unvalidated
from hcibenefit.remoting.catalog import HOST_FACTS
from hcibenefit.remoting.errors import MalformedOutputError, RemotingError
from hcibenefit.remoting.runner import DEFAULT_WORKERS, Outcome, SessionHolder, run_per_host
from hcibenefit.remoting.session import Endpoint
from hcibenefit.remoting.transport import open_session

if TYPE_CHECKING:
    # Imported while the first hosts are busy (load_checks, below), not before the first request.
    from hcibenefit.checks.assess import ClusterFacts
    from hcibenefit.facts.host import HostFacts

log = logging.getLogger(__name__)

HOST_FACTS_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Connection:
    """An inventory node with its credential resolved: everything needed to open a session."""

    node: Node
    endpoint: Endpoint


def connections(
    nodes: Sequence[Node], resolver: CredentialResolver, *, azure: AzureSettings | None = None
) -> list[Connection]:
    """Resolve every credential before the first connection, so a bad secret source changes nothing.

    A node with ``transport: arc`` is reached through Azure (`azure`, the inventory's azure: section)
    and needs no host credential: run commands run as the node's local system account."""
    warn_unvalidated((node.name, node.winrm) for node in nodes if node.transport != "arc")
    result = []
    for node in nodes:
        if node.transport == "arc":
            result.append(Connection(node, arc_endpoint(node, azure)))
            continue
        # Certificate auth needs no password: resolving one would run a password command for nothing.
        needs_secret = node.credentials is not None and node.winrm.auth != "certificate"
        credential = resolver.resolve(node.credentials) if needs_secret else None
        result.append(Connection(node, Endpoint(node.name, node.address, node.winrm, credential)))
    return result


def arc_endpoint(node: Node, azure: AzureSettings | None) -> Endpoint:
    """The endpoint of a node with ``transport: arc``: Azure Arc run commands through `azure`'s login."""
    from hcibenefit.remoting.arc import ArcTarget, context_for

    if azure is None:
        raise UsageError(f"{node.name}: transport: arc needs the inventory's azure: section to reach Azure")
    target = ArcTarget(node.name, node.cluster, node.arc, None, context_for(azure))
    return Endpoint(node.name, node.address, node.winrm, None, arc=target)


def fetch_host_facts(
    connection: Connection,
    cancel: threading.Event,
    *,
    holder: SessionHolder | None = None,
    hold: Callable[[HostFacts], bool] | None = None,
) -> HostFacts:
    """Host facts of one node; the session is handed to `holder` when `hold(facts)` says a second pass
    will need it on this node, and closed otherwise."""
    session = open_session(connection.endpoint, cancel=cancel)
    session.open()
    may_hold = holder is not None and hold is not None
    try:
        document = session.run(HOST_FACTS, {"IncludeGuestOs": True}, timeout_s=HOST_FACTS_TIMEOUT_S)
        if not may_hold:
            # Nothing else runs on this node: its shell's Delete goes out before the parsing, not after.
            # Nodes answer together, and their parsing is done one at a time (one interpreter lock), so
            # parsing first held back every later node's Delete by the earlier nodes' parsing too.
            session.close()
        from hcibenefit.facts.host import FactsError, parse_host_facts  # loaded meanwhile (load_checks)

        try:
            facts = parse_host_facts(document, node=connection.node.name, cluster=connection.node.cluster)
        except FactsError as exc:
            raise MalformedOutputError(connection.node.name, f"{HOST_FACTS.key}: {exc}") from None
    except BaseException:
        session.close()
        raise
    if holder is not None and hold is not None:
        if hold(facts):
            holder.hold(connection.node.name, session)
        else:
            session.close()
    return facts


def _both(first: Callable[[], None], then: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        try:
            first()
        finally:
            then()

    return both


def load_checks() -> None:
    """The host facts' parser and every check module (checks/registry.py: load_checks)."""
    from hcibenefit.checks.registry import load_checks as load_check_modules

    load_check_modules()


def describe_error(error: RemotingError) -> str:
    return f"{error.kind}: {error.detail}"


def warn_once_per_reason(failures: Mapping[str, str]) -> None:
    """One warning per distinct reason, naming every node it applies to: forty nodes skipped for one
    refused password are one line, not forty."""
    by_reason: dict[str, list[str]] = {}
    for node, why in failures.items():
        by_reason.setdefault(why, []).append(node)
    for why, nodes in by_reason.items():
        log.warning("%s: %s", ", ".join(nodes), why)


def gather_clusters(
    inventory: Inventory,
    clusters: Sequence[Cluster],
    resolver: CredentialResolver,
    *,
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
    holder: SessionHolder | None = None,
    hold: Callable[[HostFacts], bool] | None = None,
    when_idle: Callable[[], None] | None = None,
) -> tuple[list[ClusterFacts], list[Outcome[Connection, HostFacts]]]:
    """Host facts of every node of the given clusters; unreachable nodes are listed, not raised.

    With `holder` and `hold`, the sessions of the nodes `hold` picks stay open for a second pass.
    `when_idle` runs once, the first time the run waits on the network (before the check modules load).
    """
    conns = connections([n for c in clusters for n in c.nodes], resolver, azure=inventory.azure)
    work: Callable[[Connection, threading.Event], HostFacts] = (
        fetch_host_facts if holder is None else functools.partial(fetch_host_facts, holder=holder, hold=hold)
    )
    outcomes = run_per_host(
        conns,
        work,
        name_of=lambda c: c.node.name,
        workers=workers,
        cancel=cancel,
        activity="host facts",
        # Every caller assesses these facts next: the check modules load while the hosts are busy,
        # not after the last one answers (about 25 ms off the end of a one-cluster status).
        when_idle=load_checks if when_idle is None else _both(when_idle, load_checks),
    )
    from hcibenefit.checks.assess import ClusterFacts

    result = []
    for cluster in clusters:
        mine = [o for o in outcomes if o.target.node.cluster == cluster.name]
        hosts = tuple(o.value for o in mine if o.value is not None)
        unreachable = {o.target.node.name: describe_error(o.error) for o in mine if o.error is not None}
        result.append(ClusterFacts(cluster.name, hosts, unreachable))
    warn_once_per_reason(
        {o.target.node.name: describe_error(o.error) for o in outcomes if o.error is not None}
    )
    return result, outcomes
