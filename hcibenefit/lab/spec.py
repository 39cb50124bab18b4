"""The lab's fleet spec: what a simulated fleet looks like, written by people outside the code.

The key names are a contract (scripts and tests write specs); values are checked with file, line and
field in the message, like the inventory. See README "Lab fleet spec" for the format.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from hcibenefit.lab.arm.spec import (
    CLUSTER_AZURE,
    FLEET_AZURE,
    VM_AZURE,
    AzureClusterSpec,
    AzureFleetSpec,
    AzureVMSpec,
    cluster_azure,
    fleet_azure,
    vm_azure,
)
from hcibenefit.yamlschema import (
    Bool,
    Choice,
    Ctx,
    Field,
    Int,
    ListOf,
    MapSpec,
    SchemaError,
    Section,
    Str,
    StrOrMap,
    compose,
    node_loc,
    read_document,
)

Version = Literal["22H2", "23H2", "24H2"]
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
VnicAlias = Literal["renamed", "default"]
AgentState = Literal["auto", "registered", "unregistered", "missing"]
TimeSource = Literal["NT5DS", "NTP", "NoSync", "AllSync"]
ImdsClusterNetwork = Literal["excluded", "role-none", "partitioned"]


@dataclass
class FaultsSpec:
    latency_ms: int = 0
    connect_latency_ms: int = 0
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
    host_vnic_alias: VnicAlias = "renamed"
    """Whether Az.StackHCI's rename of the host vNIC to the switch name succeeded ("default": it is still
    "vEthernet (AZSHCI_HOST-IMDS_DO_NOT_MODIFY)")."""
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
    imds_status: int = 200
    """The HTTP status the host's IMDS answers this guest with (500: the service fails the request)."""
    clip_log: bool = True
    """Whether the guest has the Microsoft-Client-License-Flexible-Platform/Admin event log."""
    task_run_seconds: int = 3
    """How long one run of the task takes on the lab clock (longer than a kick waits: not finished)."""
    system_proxy: bool = False
    """A machine-wide proxy that Windows PowerShell 5.1 applies even to 169.254.x.x unless bypassed."""
    ubr: int | None = None
    """The update build revision (CurrentVersion UBR); None: a 2025 cumulative update (lab.guestos)."""
    avd_agent: AgentState = "auto"
    """The AVD agent's registry key: auto = registered when the VM is a session host (azure.host_pool)."""
    clock_skew_s: int = 0
    """How far the guest's clock is from its node's, in seconds (positive: ahead)."""
    time_source: TimeSource = "NT5DS"
    """W32Time's Parameters Type: NT5DS (the domain hierarchy) for a domain-joined session host."""


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
    leftover_nic: bool = False
    """A half-configured guest NIC a failed Add-AzStackHCIVMAttestation left behind (not connected)."""
    guest: GuestSpec = field(default_factory=GuestSpec)
    azure: AzureVMSpec = field(default_factory=AzureVMSpec)
    """What the lab's ARM believes about the VM (lab/arm/spec.py)."""


@dataclass
class ClusterSpec:
    name: str
    version: Version = "22H2"
    build: str | None = None
    """OS build when it differs from the release's (24H2 clusters also report 26200)."""
    registration: Registration = "Registered"
    imds_cluster_network: ImdsClusterNetwork = "excluded"
    """Whether the host IMDS adapters form a cluster network: "excluded" (as Az.StackHCI leaves them), "role-none"
    (a network the cluster does not use, Az.StackHCI's fallback) or "partitioned" (Role Cluster, State
    Partitioned: what a 22H2 to 23H2 upgrade can leave behind)."""
    nodes: list[NodeSpec] = field(default_factory=list)
    vms: list[VMSpec] = field(default_factory=list)
    azure: AzureClusterSpec = field(default_factory=AzureClusterSpec)
    """What the lab's ARM believes about the cluster (lab/arm/spec.py)."""


@dataclass
class AttestationFleetSpec:
    publish_intermediate_only_via_aia: bool = False
    """Azure's shape: the generated inventory trusts only the lab's root, so a guest document's chain lacks the
    intermediate until `attest fetch-intermediates` gets it from the URL the signer names (the lab's control
    endpoint). Off by default: the default fleet's verdicts assume the inventory trusts the whole chain."""


@dataclass
class FleetSpec:
    clusters: list[ClusterSpec]
    source: str = "<built-in>"
    azure: AzureFleetSpec = field(default_factory=AzureFleetSpec)
    attestation: AttestationFleetSpec = field(default_factory=AttestationFleetSpec)

    def vm_count(self) -> int:
        return sum(len(c.vms) for c in self.clusters)

    def node_count(self) -> int:
        return sum(len(c.nodes) for c in self.clusters)


# --- loading ---------------------------------------------------------------------------------------


class FleetSpecError(SchemaError):
    default_hint = "see the README's Fleet spec section, or hcibenefit/lab/fleets/default.yaml"


def _choice(literal: Any) -> Choice:
    return Choice(get_args(literal))


NAME = Str("a name")
FAULTS = MapSpec(
    "a mapping of node faults",
    {
        "latency_ms": Int(0, 600_000),
        "connect_latency_ms": Int(0, 600_000),
        "down": Bool(),
        "auth_fail": Bool(),
        "hang": Bool(),
        "max_shells": Int(1, 10_000),
    },
)
NODE = StrOrMap(
    NAME,
    MapSpec(
        "a node",
        {
            "name": Field(NAME, required=True),
            "attestation": _choice(NodeAttestation),
            "expires_in_days": Int(-3650, 3650),
            "switch": _choice(SwitchState),
            "legacy_os_support": Bool(),
            "module": Str('an Az.StackHCI version such as "2.3.1", or missing'),
            "state": _choice(ClusterNodeState),
            "host_vnic_alias": _choice(VnicAlias),
            "faults": FAULTS,
        },
    ),
    key="name",
    expected="a node name or a node mapping",
)
GUEST = MapSpec(
    "a mapping of guest settings",
    {
        "license_status": Int(0, 6),
        "task": _choice(TaskState),
        "imds": _choice(ImdsState),
        "document": _choice(DocumentState),
        "powershell_direct": _choice(DirectState),
        "runs_needed": Int(1, 10),
        "imds_status": Int(100, 599),
        "clip_log": Bool(),
        "task_run_seconds": Int(0, 86400),
        "system_proxy": Bool(),
        "ubr": Int(0, 100_000),
        "avd_agent": _choice(AgentState),
        "clock_skew_s": Int(-10 * 365 * 86400, 10 * 365 * 86400),
        "time_source": _choice(TimeSource),
    },
)
VM = MapSpec(
    "a VM",
    {
        "name": Field(NAME, required=True),
        "node": Field(NAME, required=True),
        "generation": Int(1, 2),
        "state": _choice(VMState),
        "edition": Str("an EditionID such as ServerRdsh"),
        "os": Str("an OS name"),
        "benefits": _choice(Benefits),
        "kvp": Bool(),
        "leftover_nic": Bool(),
        "guest": GUEST,
        "azure": VM_AZURE,
    },
)
CLUSTER = MapSpec(
    "a cluster",
    {
        "name": Field(NAME, required=True),
        "version": _choice(Version),
        "build": Str("an OS build number such as 26200"),
        "registration": _choice(Registration),
        "imds_cluster_network": _choice(ImdsClusterNetwork),
        "nodes": Field(ListOf(NODE, min_items=1), required=True),
        "vms": ListOf(VM),
        "azure": CLUSTER_AZURE,
    },
)
FLEET = MapSpec(
    "a fleet spec",
    {
        "clusters": Field(ListOf(CLUSTER, min_items=1, expected="a list of clusters"), required=True),
        "azure": FLEET_AZURE,
        "attestation": MapSpec(
            "a mapping of attestation settings", {"publish_intermediate_only_via_aia": Bool()}
        ),
    },
)


def _values(section: Section) -> dict[str, Any]:
    return {k: v for k, v in section.values.items() if not isinstance(v, Section)}


def _node(section: Section) -> NodeSpec:
    faults = section.section("faults")
    return NodeSpec(**_values(section), faults=FaultsSpec(**_values(faults)) if faults else FaultsSpec())


def _vm(section: Section) -> VMSpec:
    guest = section.section("guest")
    return VMSpec(
        **_values(section),
        guest=GuestSpec(**_values(guest)) if guest else GuestSpec(),
        azure=vm_azure(section.section("azure")),
    )


def _cluster(section: Section, ctx: Ctx) -> ClusterSpec:
    nodes = [_node(n) for n in section.get("nodes", ())]
    known = {n.name.lower() for n in nodes}
    vms = []
    for vm_section in section.get("vms", ()):
        vm = _vm(vm_section)
        if vm.node.lower() not in known:
            ctx.error(
                vm_section.loc_of("node"), f"no node named {vm.node!r} in cluster {section.get('name')!r}"
            )
        vms.append(vm)
    scalars = {k: v for k, v in _values(section).items() if k not in ("nodes", "vms")}
    return ClusterSpec(**scalars, nodes=nodes, vms=vms, azure=cluster_azure(section.section("azure")))


def _check_unique(clusters: list[tuple[Section, ClusterSpec]], ctx: Ctx) -> None:
    node_owner: dict[str, str] = {}
    vm_seen: set[str] = set()
    for section, cluster in clusters:
        for node_section, node in zip(section.get("nodes", ()), cluster.nodes, strict=True):
            key = node.name.lower()
            if key in node_owner:
                ctx.error(
                    node_section.loc_of("name"),
                    f"node {node.name!r} is defined twice (also in {node_owner[key]!r})",
                )
            node_owner.setdefault(key, cluster.name)
        for vm_section, vm in zip(section.get("vms", ()), cluster.vms, strict=True):
            if vm.name.lower() in vm_seen:
                ctx.error(
                    vm_section.loc_of("name"),
                    f"VM name {vm.name!r} is used twice; the lab needs fleet-unique VM names",
                )
            vm_seen.add(vm.name.lower())


def parse_fleet(text: str, source: str) -> FleetSpec:
    """Validate a fleet spec; every problem is reported as file:line:col: field: message."""
    ctx = Ctx(source, Path(source).parent)
    root = compose(
        text, ctx, document="a fleet spec", empty="the fleet spec is empty; expected a mapping with clusters:"
    )
    top = ctx.walk(FLEET, root, node_loc(root, "")) if root is not None else None
    clusters: list[tuple[Section, ClusterSpec]] = []
    if isinstance(top, Section):
        clusters = [(c, _cluster(c, ctx)) for c in top.get("clusters", ())]
        _check_unique(clusters, ctx)
    if ctx.issues or not isinstance(top, Section):
        raise FleetSpecError(sorted(ctx.issues, key=lambda i: (i.line or 0, i.col or 0)))
    attestation = top.section("attestation")
    return FleetSpec(
        clusters=[c for _, c in clusters],
        source=source,
        azure=fleet_azure(top.section("azure")),
        attestation=AttestationFleetSpec(**_values(attestation)) if attestation else AttestationFleetSpec(),
    )


def load_fleet(path: Path) -> FleetSpec:
    return parse_fleet(read_document(str(path), FleetSpecError, what="the fleet spec"), str(path))


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
        version: Version = ("22H2", "23H2", "24H2")[(c - 1) % 3]
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
