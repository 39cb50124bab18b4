"""Collecting host facts: one host-facts call per node, nodes in parallel, never one call per VM."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hcibenefit.checks.assess import ClusterFacts
from hcibenefit.facts.host import FactsError, HostFacts, parse_host_facts
from hcibenefit.inventory import Cluster, CredentialResolver, Inventory, Node
from hcibenefit.remoting.catalog import HOST_FACTS
from hcibenefit.remoting.errors import MalformedOutputError, RemotingError
from hcibenefit.remoting.runner import DEFAULT_WORKERS, Outcome, run_per_host
from hcibenefit.remoting.session import Endpoint, run_script

log = logging.getLogger(__name__)

HOST_FACTS_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Connection:
    """An inventory node with its credential resolved: everything needed to open a session."""

    node: Node
    endpoint: Endpoint


def connections(nodes: Sequence[Node], resolver: CredentialResolver) -> list[Connection]:
    """Resolve every credential before the first connection, so a bad secret source changes nothing."""
    result = []
    for node in nodes:
        # Certificate auth needs no password: resolving one would run a password command for nothing.
        needs_secret = node.credentials is not None and node.winrm.auth != "certificate"
        credential = resolver.resolve(node.credentials) if needs_secret else None
        result.append(Connection(node, Endpoint(node.name, node.address, node.winrm, credential)))
    return result


def fetch_host_facts(connection: Connection, cancel: threading.Event) -> HostFacts:
    document = run_script(
        connection.endpoint,
        HOST_FACTS,
        {"IncludeGuestOs": True},
        cancel=cancel,
        timeout_s=HOST_FACTS_TIMEOUT_S,
    )
    try:
        return parse_host_facts(document, node=connection.node.name, cluster=connection.node.cluster)
    except FactsError as exc:
        raise MalformedOutputError(connection.node.name, f"host-facts/1: {exc}") from None


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
) -> tuple[list[ClusterFacts], list[Outcome[Connection, HostFacts]]]:
    """Host facts of every node of the given clusters; unreachable nodes are listed, not raised."""
    conns = connections([n for c in clusters for n in c.nodes], resolver)
    outcomes = run_per_host(
        conns, fetch_host_facts, name_of=lambda c: c.node.name, workers=workers, cancel=cancel
    )
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
