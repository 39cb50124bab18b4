"""The lab's fleet spec: what a simulated fleet looks like, written by people outside the code.

The key names are a contract (scripts and tests write specs); values are checked with file, line and
field in the message, like the inventory. See README "Lab fleet spec" for the format.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from hcibenefit.yamlcheck import Node as YNode
from hcibenefit.yamlcheck import load_yaml_document

Version = Literal["22H2", "23H2"]
Registration = Literal["Registered", "NotYet", "OutOfPolicy"]
NodeAttestation = Literal["Active", "Inactive", "Expired", "Error"]
SwitchState = Literal["present", "missing", "renamed", "wrong-type"]
ClusterNodeState = Literal["Up", "Down", "Paused"]
VMState = Literal["Running", "Off", "Saved", "Paused"]
Benefits = Literal["none", "v1", "v2"]
TaskState = Literal["Ready", "Disabled", "Missing"]
ImdsState = Literal["reachable", "unreachable"]
DocumentState = Literal["valid", "expired", "tampered", "missing-intermediate", "wrong-nonce"]
DirectState = Literal["ok", "fail", "bad-credentials"]


@dataclass
class FaultsSpec:
    latency_ms: int = 0
    down: bool = False
    auth_fail: bool = False
    hang: bool = False
    max_shells: int = 30


@dataclass
class NodeSpec:
    name: str
    attestation: NodeAttestation = "Active"
    expires_in_days: int = 25
    switch: SwitchState = "present"
    legacy_os_support: bool = True
    module: str = "2.3.1"
    """Az.StackHCI version, or "missing"."""
    state: ClusterNodeState = "Up"
    """Failover cluster node state as Get-ClusterNode reports it (an addition to the issue's keys)."""
    faults: FaultsSpec = field(default_factory=FaultsSpec)


@dataclass
class GuestSpec:
    license_status: int = 1
    task: TaskState = "Ready"
    imds: ImdsState = "reachable"
    document: DocumentState = "valid"
    powershell_direct: DirectState = "ok"
    runs_needed: int = 1
    """How many runs of LicenseImdsIntegration activation takes (the seed saw "run it twice")."""


@dataclass
class VMSpec:
    name: str
    node: str
    generation: int = 2
    state: VMState = "Running"
    edition: str = "ServerRdsh"
    os: str = "Windows 11 Enterprise multi-session"
    benefits: Benefits = "none"
    kvp: bool = True
    guest: GuestSpec = field(default_factory=GuestSpec)


@dataclass
class ClusterSpec:
    name: str
    version: Version = "22H2"
    registration: Registration = "Registered"
    nodes: list[NodeSpec] = field(default_factory=list)
    vms: list[VMSpec] = field(default_factory=list)


@dataclass
class FleetSpec:
    clusters: list[ClusterSpec]
    source: str = "<built-in>"

    def vm_count(self) -> int:
        return sum(len(c.vms) for c in self.clusters)

    def node_count(self) -> int:
        return sum(len(c.nodes) for c in self.clusters)


# --- loading ---------------------------------------------------------------------------------------

_FAULT_KEYS = {"latency_ms": int, "down": bool, "auth_fail": bool, "hang": bool, "max_shells": int}


def _enum(node: YNode, literal: Any) -> str:
    choices = get_args(literal)
    value = node.string()
    if value not in choices:
        node.fail(f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _faults(node: YNode) -> FaultsSpec:
    node.only_keys(_FAULT_KEYS)
    spec = FaultsSpec()
    if (n := node.get("latency_ms")) is not None:
        spec.latency_ms = n.integer(0, 600_000)
    for key in ("down", "auth_fail", "hang"):
        if (n := node.get(key)) is not None:
            setattr(spec, key, n.boolean())
    if (n := node.get("max_shells")) is not None:
        spec.max_shells = n.integer(1, 10_000)
    return spec


def _node(node: YNode) -> NodeSpec:
    if node.is_scalar():
        return NodeSpec(name=node.string())
    node.only_keys(
        {"name", "attestation", "expires_in_days", "switch", "legacy_os_support", "module", "state", "faults"}
    )
    spec = NodeSpec(name=node.require("name").string())
    if (n := node.get("attestation")) is not None:
        spec.attestation = _enum(n, NodeAttestation)  # type: ignore[assignment]
    if (n := node.get("expires_in_days")) is not None:
        spec.expires_in_days = n.integer(-3650, 3650)
    if (n := node.get("switch")) is not None:
        spec.switch = _enum(n, SwitchState)  # type: ignore[assignment]
    if (n := node.get("legacy_os_support")) is not None:
        spec.legacy_os_support = n.boolean()
    if (n := node.get("module")) is not None:
        spec.module = n.string()
    if (n := node.get("state")) is not None:
        spec.state = _enum(n, ClusterNodeState)  # type: ignore[assignment]
    if (n := node.get("faults")) is not None:
        spec.faults = _faults(n)
    return spec


def _guest(node: YNode) -> GuestSpec:
    node.only_keys({"license_status", "task", "imds", "document", "powershell_direct", "runs_needed"})
    spec = GuestSpec()
    if (n := node.get("license_status")) is not None:
        spec.license_status = n.integer(0, 6)
    if (n := node.get("task")) is not None:
        spec.task = _enum(n, TaskState)  # type: ignore[assignment]
    if (n := node.get("imds")) is not None:
        spec.imds = _enum(n, ImdsState)  # type: ignore[assignment]
    if (n := node.get("document")) is not None:
        spec.document = _enum(n, DocumentState)  # type: ignore[assignment]
    if (n := node.get("powershell_direct")) is not None:
        spec.powershell_direct = _enum(n, DirectState)  # type: ignore[assignment]
    if (n := node.get("runs_needed")) is not None:
        spec.runs_needed = n.integer(1, 10)
    return spec


def _vm(node: YNode) -> VMSpec:
    node.only_keys({"name", "node", "generation", "state", "edition", "os", "benefits", "kvp", "guest"})
    spec = VMSpec(name=node.require("name").string(), node=node.require("node").string())
    if (n := node.get("generation")) is not None:
        spec.generation = n.integer(1, 2)
    if (n := node.get("state")) is not None:
        spec.state = _enum(n, VMState)  # type: ignore[assignment]
    if (n := node.get("edition")) is not None:
        spec.edition = n.string()
    if (n := node.get("os")) is not None:
        spec.os = n.string()
    if (n := node.get("benefits")) is not None:
        spec.benefits = _enum(n, Benefits)  # type: ignore[assignment]
    if (n := node.get("kvp")) is not None:
        spec.kvp = n.boolean()
    if (n := node.get("guest")) is not None:
        spec.guest = _guest(n)
    return spec


def _cluster(node: YNode) -> ClusterSpec:
    node.only_keys({"name", "version", "registration", "nodes", "vms"})
    spec = ClusterSpec(name=node.require("name").string())
    if (n := node.get("version")) is not None:
        spec.version = _enum(n, Version)  # type: ignore[assignment]
    if (n := node.get("registration")) is not None:
        spec.registration = _enum(n, Registration)  # type: ignore[assignment]
    nodes_node = node.require("nodes")
    spec.nodes = [_node(item) for item in nodes_node.items(min_items=1)]
    names = {n.name.lower() for n in spec.nodes}
    if (vms := node.get("vms")) is not None:
        for item in vms.items():
            vm = _vm(item)
            if vm.node.lower() not in names:
                item.require("node").fail(f"no node named {vm.node!r} in cluster {spec.name!r}")
            spec.vms.append(vm)
    return spec


def parse_fleet(text: str, source: str) -> FleetSpec:
    root = load_yaml_document(text, source)
    root.only_keys({"clusters"})
    clusters = [_cluster(item) for item in root.require("clusters").items(min_items=1)]
    seen_nodes: dict[str, str] = {}
    seen_vms: set[str] = set()
    for cluster in clusters:
        for n in cluster.nodes:
            if n.name.lower() in seen_nodes:
                root.fail(f"node {n.name!r} appears in {seen_nodes[n.name.lower()]!r} and {cluster.name!r}")
            seen_nodes[n.name.lower()] = cluster.name
        for vm in cluster.vms:
            if vm.name.lower() in seen_vms:
                root.fail(f"VM name {vm.name!r} is used twice; the lab needs fleet-unique VM names")
            seen_vms.add(vm.name.lower())
    return FleetSpec(clusters=clusters, source=source)


def load_fleet(path: Path) -> FleetSpec:
    from hcibenefit.yamlcheck import read_text

    return parse_fleet(read_text(path), str(path))


def default_fleet() -> FleetSpec:
    from importlib.resources import files

    text = files("hcibenefit.lab").joinpath("fleets/default.yaml").read_text(encoding="utf-8")
    return parse_fleet(text, "<built-in default fleet>")


# --- generator -------------------------------------------------------------------------------------

_EDITIONS = [
    ("ServerRdsh", "Windows 11 Enterprise multi-session", 0.45),
    ("ServerTurbine", "Windows Server 2022 Datacenter: Azure Edition", 0.15),
    ("ServerDatacenter", "Windows Server 2022 Datacenter", 0.2),
    ("Enterprise", "Windows 11 Enterprise", 0.1),
    ("ServerRdsh", "Windows 10 Enterprise multi-session", 0.1),
]


def generate_fleet(clusters: int, nodes_per_cluster: int, vms_per_node: int, *, seed: int = 1) -> FleetSpec:
    """A large, mostly healthy fleet with a sprinkling of the common faults, reproducible by seed."""
    rng = random.Random(seed)
    result: list[ClusterSpec] = []
    for c in range(1, clusters + 1):
        version: Version = "22H2" if c % 2 else "23H2"
        cluster = ClusterSpec(name=f"hci-gen-{c:03d}", version=version)
        for n in range(1, nodes_per_cluster + 1):
            node = NodeSpec(name=f"c{c:03d}n{n:02d}", expires_in_days=rng.randint(1, 29))
            roll = rng.random()
            if roll < 0.05:
                node.attestation = "Expired"
                node.expires_in_days = -rng.randint(1, 20)
            elif roll < 0.08:
                node.attestation = "Inactive"
            cluster.nodes.append(node)
            for v in range(1, vms_per_node + 1):
                edition, os_name, _ = rng.choices(_EDITIONS, weights=[e[2] for e in _EDITIONS])[0]
                needs = edition in ("ServerRdsh", "ServerTurbine")
                legacy = "Windows 10" in os_name
                if not needs:
                    benefits: Benefits = "none"
                elif version == "22H2" or legacy:
                    benefits = "v1" if rng.random() < 0.9 else "none"
                else:
                    benefits = "v2" if rng.random() < 0.9 else "none"
                state: VMState = "Running" if rng.random() < 0.9 else "Off"
                guest = GuestSpec(license_status=1 if benefits != "none" else 5)
                cluster.vms.append(
                    VMSpec(
                        name=f"vm-c{c:03d}n{n:02d}-{v:03d}",
                        node=node.name,
                        generation=2 if rng.random() < 0.95 else 1,
                        state=state,
                        edition=edition,
                        os=os_name,
                        benefits=benefits,
                        guest=guest,
                    )
                )
        result.append(cluster)
    return FleetSpec(
        clusters=result, source=f"<generated {clusters},{nodes_per_cluster},{vms_per_node} seed {seed}>"
    )


def parse_scale(text: str) -> tuple[int, int, int]:
    from hcibenefit.errors import UsageError

    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(1 <= v <= 1000 for v in values):
        raise UsageError(
            f"--scale expects CLUSTERS,NODES,VMS_PER_NODE (three whole numbers 1-1000), got {text!r}",
            hint="for example --scale 10,4,25",
        )
    return values[0], values[1], values[2]
