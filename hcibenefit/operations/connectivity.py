"""`hcibenefit inventory test`: can we reach, trust and log on to every node? One cheap call per node.

The call is opening a runspace pool on the node's endpoint and closing it again: that is a TCP
connection, the TLS handshake (certificate validated as configured), the logon, and the PowerShell
endpoint (a JEA configuration) accepting us. No script runs. Credentials are resolved per node, so one
unset variable is that node's problem, not the run's; and a refused password is tried on one node only
(inventory/logon.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hcibenefit.errors import CredentialError
from hcibenefit.inventory import CredentialResolver, Inventory, Node
from hcibenefit.operations.gather import arc_endpoint
from hcibenefit.operations.tlswarn import warn_unvalidated
from hcibenefit.remoting.errors import (
    AuthenticationFailed,
    CredentialSkipped,
    RemotingError,
    TLSError,
    UnreachableError,
)
from hcibenefit.remoting.runner import run_per_host
from hcibenefit.remoting.session import Endpoint
from hcibenefit.remoting.transport import open_session
from hcibenefit.report import Column, DetailItem, Details, Report, Table, columns

OK, FAILED, SKIPPED, UNKNOWN, NOT_USED = "ok", "failed", "skipped", "?", "n/a"


@dataclass(frozen=True)
class NodeTest:
    node: Node
    reachable: str
    tls: str
    logon: str
    endpoint: str
    seconds: float | None
    error: str | None = None
    kind: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        winrm = self.node.winrm
        arc = self.node.transport == "arc"
        return {
            "node": self.node.name,
            "cluster": self.node.cluster,
            # Over Arc: the node's Arc machine through Azure (its status and agent are what is tested).
            "address": f"arc:{self.node.arc.machine_id or self.node.name}"
            if arc
            else f"{winrm.transport}://{self.node.address}:{winrm.port}/{winrm.path}",
            "auth": "azure" if arc else winrm.auth,
            "cert_validation": winrm.cert_validation
            if isinstance(winrm.cert_validation, bool)
            else str(winrm.cert_validation),
            "configuration_name": winrm.configuration_name,
            "reachable": self.reachable,
            "tls": self.tls,
            "logon": self.logon,
            "endpoint": self.endpoint,
            "seconds": self.seconds,
            "ok": self.ok,
            "error": self.error,
            "kind": self.kind,
            "hint": self.hint,
        }


def _judge(node: Node, error: RemotingError | None, seconds: float | None) -> NodeTest:
    tls = OK if node.winrm.transport == "https" or node.transport == "arc" else NOT_USED
    if error is None:
        return NodeTest(node, OK, tls, OK, OK, seconds)
    detail = f"{error.kind}: {error.detail}"
    if isinstance(error, CredentialSkipped):
        return NodeTest(node, UNKNOWN, UNKNOWN, SKIPPED, UNKNOWN, seconds, detail, error.kind, error.hint)
    if isinstance(error, TLSError):
        return NodeTest(node, OK, FAILED, UNKNOWN, UNKNOWN, seconds, detail, error.kind, error.hint)
    if isinstance(error, UnreachableError):
        return NodeTest(node, FAILED, UNKNOWN, UNKNOWN, UNKNOWN, seconds, detail, error.kind, error.hint)
    if isinstance(error, AuthenticationFailed):
        return NodeTest(node, OK, tls, FAILED, UNKNOWN, seconds, detail, error.kind, error.hint)
    # The logon worked, the PowerShell endpoint refused (a JEA configuration, quotas, a fault).
    return NodeTest(node, OK, tls, OK, FAILED, seconds, detail, error.kind, error.hint)


def test_nodes(
    inventory: Inventory,
    resolver: CredentialResolver,
    nodes: Sequence[Node],
    *,
    workers: int = 16,
    cancel: threading.Event | None = None,
) -> list[NodeTest]:
    results: dict[str, NodeTest] = {}
    endpoints: list[Endpoint] = []
    by_name = {n.name: n for n in nodes}
    warn_unvalidated((n.name, n.winrm) for n in nodes if n.transport != "arc")
    for node in nodes:
        if node.transport == "arc":
            endpoints.append(arc_endpoint(node, inventory.azure))
            continue
        try:
            needs_secret = node.credentials is not None and node.winrm.auth != "certificate"
            credential = resolver.resolve(node.credentials) if needs_secret else None
        except CredentialError as exc:
            results[node.name] = NodeTest(
                node,
                UNKNOWN,
                UNKNOWN,
                FAILED,
                UNKNOWN,
                None,
                f"credential: {exc.message}",
                "credential",
                exc.hint,
            )
            continue
        endpoints.append(Endpoint(node.name, node.address, node.winrm, credential))

    def probe(endpoint: Endpoint, ev: threading.Event) -> float:
        started = time.monotonic()
        session = open_session(endpoint, cancel=ev)
        try:
            session.open()
        finally:
            session.close()
        return round(time.monotonic() - started, 3)

    for outcome in run_per_host(endpoints, probe, name_of=lambda e: e.name, workers=workers, cancel=cancel):
        node = by_name[outcome.target.name]
        results[node.name] = _judge(node, outcome.error, outcome.value)
    return [results[n.name] for n in nodes]


def connectivity_report(tests: Sequence[NodeTest], run_info: Mapping[str, Any]) -> Report:
    rows = [t.to_dict() for t in tests]
    table = Table(
        "Connection test (one runspace pool opened and closed per node)",
        columns(
            ("cluster", "CLUSTER"),
            ("node", "NODE"),
            Column("address", "ENDPOINT", wide=True),
            ("auth", "AUTH"),
            ("reachable", "REACHABLE"),
            ("tls", "TLS"),
            ("logon", "LOGON"),
            ("endpoint", "POWERSHELL"),
            ("seconds", "SECONDS"),
            Column("error", "WHY", wrap=True),
        ),
        rows,
    )
    # One entry per distinct problem, naming every node it applies to: said once, not per node.
    grouped: dict[tuple[str, str | None], list[str]] = {}
    for t in tests:
        if t.error:
            grouped.setdefault((t.error, t.hint), []).append(t.node.name)
    details = Details(
        "What to do:",
        [
            DetailItem(f"{', '.join(names)}: {error}", [f"hint: {hint}"] if hint else [])
            for (error, hint), names in grouped.items()
        ],
    )
    good = sum(t.ok for t in tests)
    notes = [f"{good} of {len(tests)} node(s) reachable, trusted and logged on to"]
    data = {**run_info, "nodes": rows, "ok": good == len(tests)}
    return Report(data=data, tables=[table], notes=notes, details=[details])
