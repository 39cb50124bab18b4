"""The live state of a simulated fleet: what Get-VM, Get-AzureStackHCIAttestation & co. report.

Built from a FleetSpec and changed only through the emulated cmdlets (hcibenefit.lab.powershell),
with the effects the real ones have (adding a NIC, turning on the Guest Service Interface, syncing a
node, running the guest's licensing task). Derived facts (is the VM's IMDS path working? does the
guest activate?) are computed from this state rather than stored, so a change on the host shows up in
the guest the way it would for real.

Time: the lab has its own clock (`LabClock`), real time plus whatever scripts slept. Start-Sleep and
timeouts advance it instead of blocking, so a kick that waits two minutes for a task takes no time.
"""

from __future__ import annotations

import datetime as dt
import functools
import mmap
import pickle
import struct
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from hcibenefit.lab.spec import ClusterSpec, FaultsSpec, FleetSpec, GuestSpec, NodeSpec, VMSpec

HOST_SWITCH = "AZSHCI_HOST-IMDS_DO_NOT_MODIFY"
GUEST_NIC = "AZSHCI_GUEST-IMDS_DO_NOT_MODIFY"
SWITCH_NOTES = "Managed by Azure Stack HCI IMDS Attestation Service"
COMPUTE_SWITCH = "ConvergedSwitch(compute)"
HOST_IMDS_ADDRESS = "169.254.169.253"
ALLOW_RULE = "AzsHci-ImdsAttestation-Allow-In"
FIREWALL_RULES = (
    ALLOW_RULE,
    "AzsHci-ImdsAttestation-Block-TCP-In",
    "AzsHci-ImdsAttestation-Block-TCP-Out",
    "AzsHci-ImdsAttestation-Block-UDP-In",
    "AzsHci-ImdsAttestation-Block-UDP-Out",
)
# docs/platform.md §2: 22H2 = 20349, 23H2 = 25398, 24H2 = 26100 (26200
# also appears in 2025 update tables). There is no build 20350.
BUILD_BY_VERSION = {"22H2": "20349", "23H2": "25398", "24H2": "26100"}
V2_VERSIONS = ("23H2", "24H2")
ATTESTATION_VALIDITY = dt.timedelta(days=30)  # HciSvc's Azure certificate is valid 30 days (docs/platform.md)
TASK_NOT_YET_RUN = 267011  # 0x41303 SCHED_S_TASK_HAS_NOT_RUN
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
_NAMESPACE = uuid.UUID("6f1c7a52-8d1e-4c51-9a3e-5b0f1d2c3e4f")


@functools.lru_cache(maxsize=65536)
def stable_id(*parts: str) -> str:
    """Deterministic GUIDs so a reset fleet keeps its VM ids (scripts and tests may remember them)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


class LabClock:
    """Real time plus the seconds scripts have slept in the lab (Start-Sleep, request timeouts)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        return self._offset

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.offset)

    def now_datetime(self) -> dt.datetime:
        """Naive UTC, as the evaluator's DateTime keeps it."""
        return self.now().replace(tzinfo=None)

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._offset += max(0.0, seconds)


class SharedClock(LabClock):
    """The lab clock of a lab served by several processes (`lab serve --processes N`): its offset lives in
    memory shared by them all, so a script sleeping in one cluster's process moves time on for every
    cluster, as the one clock of a one-process lab does. Created before the processes fork."""

    _FORMAT = "d"

    def __init__(self) -> None:
        import multiprocessing  # only a lab served by several processes needs it

        self._cell = mmap.mmap(-1, struct.calcsize(self._FORMAT))
        self._shared_lock = multiprocessing.get_context("fork").Lock()
        self.zero()

    def zero(self) -> None:
        with self._shared_lock:
            struct.pack_into(self._FORMAT, self._cell, 0, 0.0)

    @property
    def offset(self) -> float:
        # An aligned 8-byte read: never torn, so readers take no lock.
        value: float = struct.unpack_from(self._FORMAT, self._cell, 0)[0]
        return value

    def sleep(self, seconds: float) -> None:
        with self._shared_lock:
            struct.pack_into(self._FORMAT, self._cell, 0, self.offset + max(0.0, seconds))


class SkewedClock(LabClock):
    """A guest's clock: the lab's, off by the guest's planted skew (its time of day only; sleeping and
    elapsed time are the lab's)."""

    def __init__(self, base: LabClock, skew_s: float) -> None:
        self._base = base
        self._skew = dt.timedelta(seconds=skew_s)

    def now(self) -> dt.datetime:
        return self._base.now() + self._skew

    def monotonic(self) -> float:
        return self._base.monotonic()

    def sleep(self, seconds: float) -> None:
        self._base.sleep(seconds)


@dataclass
class Switch:
    name: str
    id: str
    switch_type: str  # Internal, External, Private
    notes: str


@dataclass
class Nic:
    name: str
    switch_name: str | None
    mac: str
    vlan: str | None = None
    """Private VLAN setting as Set-VMNetworkAdapterVlan left it, e.g. "Isolated 10/200"; None = untagged."""
    guards: bool = False
    """MacAddressSpoofing Off, DhcpGuard On, RouterGuard On, NotMonitoredInCluster: the IMDS template."""

    @property
    def connected(self) -> bool:
        return self.switch_name is not None


class _Changes:
    """How many times an attribute of a cluster, node, VM or guest was assigned, in this process.

    The Azure view (lab/arm) is rebuilt when what it takes from the fleet changed, and telling that means
    reading every VM: done for every ARM request, a fleet of 10,000 VMs cost the lab 15 ms a request and,
    for the sweep's 6,600 VM reads, most of 100 s of CPU. While this count has not moved, nothing it is
    taken from has changed, so the view is used without reading the fleet. Every change the lab makes,
    and one a test makes by assigning (`vm.guest.license_status = 5`), moves it; `reset` and
    `install_cluster` (whose unpickled objects are not assigned attribute by attribute) move it too."""

    count = 0


def changes() -> int:
    """The count of `_Changes`: equal at two moments, no cluster, node, VM or guest was assigned between."""
    return _Changes.count


class _Counted:
    """Counts every attribute assignment (`_Changes`), those in __init__ included."""

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        _Changes.count += 1


@dataclass
class GuestState(_Counted):
    license_status: int
    task: str  # Ready, Disabled, Missing, Running
    imds: str
    document: str
    powershell_direct: str
    runs_needed: int
    imds_status: int = 200
    clip_log: bool = True
    task_run_seconds: int = 3
    system_proxy: bool = False
    ubr: int | None = None
    avd_agent: str = "auto"
    clock_skew_s: int = 0
    time_source: str = "NT5DS"
    runs: int = 0
    last_run: dt.datetime | None = None
    last_result: int = TASK_NOT_YET_RUN
    running_until: dt.datetime | None = None
    events: list[tuple[int, dt.datetime, str, str]] = field(
        default_factory=list
    )  # (id, time, provider, text)


@dataclass
class VM(_Counted):
    name: str
    id: str
    cluster: str
    node: str
    generation: int
    state: str
    edition: str
    os: str
    kvp: bool
    gsi: bool
    nics: list[Nic]
    guest: GuestState

    def imds_nic(self) -> Nic | None:
        return next((n for n in self.nics if n.name == GUEST_NIC), None)

    def imds_nics(self) -> list[Nic]:
        return [n for n in self.nics if n.name == GUEST_NIC]


@dataclass
class Node(_Counted):
    name: str
    cluster: str
    attestation: str  # Active, Inactive, Expired, Error
    expiration: dt.datetime | None
    switch: Switch | None
    attestation_switch_id: str
    legacy_os_support: bool
    module: str | None
    state: str
    faults: FaultsSpec
    host_vnic_address: str | None
    firewall_enabled: dict[str, bool]
    """Every attestation firewall rule that exists on the node (Allow-In ships with the OS), and whether it is on."""
    host_vnic_alias: str = HOST_SWITCH
    """The host vNIC's NetAdapter name: Az.StackHCI renames it to the switch name; if that failed it keeps
    Hyper-V's default "vEthernet (<switch name>)"."""
    host_vnic_mac: str = ""
    sessions: list[str] = field(default_factory=list)
    """Remote sessions left open on the node (Az.StackHCI never removes its loopback session)."""


@dataclass
class Cluster(_Counted):
    name: str
    version: str
    build: str
    registration: str
    nodes: list[str]
    last_sync: dt.datetime | None
    imds_network: str = "excluded"
    """The fleet spec's imds_cluster_network: excluded, role-none or partitioned."""

    @property
    def supports_v2(self) -> bool:
        return self.version in V2_VERSIONS


class _VMIndex:
    """The fleet's VMs by node (lower case), by cluster and by id, each in the fleet's order."""

    def __init__(self, vms: Iterable[VM]) -> None:
        self.by_node: dict[str, list[VM]] = {}
        self.by_cluster: dict[str, list[VM]] = {}
        self.by_id: dict[str, VM] = {}
        self.count = 0
        for vm in vms:
            self.by_node.setdefault(vm.node.lower(), []).append(vm)
            self.by_cluster.setdefault(vm.cluster, []).append(vm)
            self.by_id.setdefault(vm.id, vm)
            self.count += 1


class FleetState:
    """All clusters, nodes and VMs; one lock guards every read and change."""

    def __init__(
        self, spec: FleetSpec, *, subscription_id: str = "00000000-0000-4000-8000-00000000c0de"
    ) -> None:
        self.spec = spec
        self.subscription_id = subscription_id
        self.lock = threading.RLock()
        self.clock: LabClock = LabClock()
        self._shared_clock: SharedClock | None = None
        self.served_clusters: frozenset[str] | None = None
        """The clusters this process serves when the lab runs in several (None: all of them). A node of
        another cluster is then another process's, and this copy of it is stale."""
        self.clusters: dict[str, Cluster] = {}
        self.nodes: dict[str, Node] = {}
        self.vms: dict[str, VM] = {}
        self._index: _VMIndex | None = None
        self.reset()

    def share_clock(self) -> None:
        """Keep the lab clock in shared memory, before the lab forks its processes (`SharedClock`)."""
        with self.lock:
            self._shared_clock = SharedClock()
            self._shared_clock.sleep(self.clock.offset)
            self.clock = self._shared_clock

    def reset(self) -> None:
        with self.lock:
            if self._shared_clock is not None:
                self._shared_clock.zero()
                self.clock = self._shared_clock
            else:
                self.clock = LabClock()
            self.clusters.clear()
            self.nodes.clear()
            self.vms.clear()
            self._index = None
            _Changes.count += 1
            started = self.clock.now().replace(microsecond=0)
            for cluster in self.spec.clusters:
                self.clusters[cluster.name] = Cluster(
                    name=cluster.name,
                    version=cluster.version,
                    build=cluster.build or BUILD_BY_VERSION[cluster.version],
                    registration=cluster.registration,
                    nodes=[n.name for n in cluster.nodes],
                    last_sync=started - dt.timedelta(hours=6)
                    if cluster.registration == "Registered"
                    else None,
                    imds_network=cluster.imds_cluster_network,
                )
                for node_spec in cluster.nodes:
                    self.nodes[node_spec.name.lower()] = _node_from_spec(cluster, node_spec, started)
                for vm_spec in cluster.vms:
                    self.vms[vm_spec.name.lower()] = self._vm_from_spec(cluster, vm_spec)

    def _vm_from_spec(self, cluster: ClusterSpec, spec: VMSpec) -> VM:
        node = self.nodes[spec.node.lower()]
        vm_id = stable_id(cluster.name, spec.name)
        nics = [Nic(name="Network Adapter", switch_name=COMPUTE_SWITCH, mac=_mac(vm_id, 0))]
        if spec.benefits == "v1":
            # A V1 NIC on a node without the switch is left unconnected (what migration leaves behind).
            connected_to = (
                node.switch.name if node.switch is not None and node.switch.name == HOST_SWITCH else None
            )
            nics.append(Nic(GUEST_NIC, connected_to, _mac(vm_id, 1), vlan="Isolated 10/200", guards=True))
        if spec.leftover_nic:
            # What a failed Add-AzStackHCIVMAttestation leaves behind: added, never configured or connected.
            nics.append(Nic(GUEST_NIC, None, _mac(vm_id, 2)))
        return VM(
            name=spec.name,
            id=vm_id,
            cluster=cluster.name,
            node=node.name,
            generation=spec.generation,
            state=spec.state,
            edition=spec.edition,
            os=spec.os,
            kvp=spec.kvp,
            gsi=spec.benefits == "v2",
            nics=nics,
            guest=_guest_from_spec(spec.guest, session_host=spec.azure.host_pool is not None),
        )

    # --- one cluster between processes -------------------------------------------------------------

    def export_cluster(self, name: str) -> bytes:
        """The cluster, its nodes and its VMs, pickled consistently (under the lock) for another process."""
        with self.lock:
            cluster = self.clusters[name]
            nodes = [self.nodes[n.lower()] for n in cluster.nodes]
            return pickle.dumps((cluster, nodes, self.vms_of_cluster(name)), pickle.HIGHEST_PROTOCOL)

    def install_cluster(self, data: bytes) -> None:
        """Replace a cluster, its nodes and its VMs with what `export_cluster` sent from the process that
        serves it. A cluster keeps its VMs (none are added or removed but by reset), so the fleet's order
        stays."""
        cluster, nodes, vms = pickle.loads(data)
        with self.lock:
            self.clusters[cluster.name] = cluster
            for node in nodes:
                self.nodes[node.name.lower()] = node
            for vm in vms:
                self.vms[vm.name.lower()] = vm
            self._index = None
            _Changes.count += 1

    # --- look-ups --------------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        return self.nodes[name.lower()]

    def cluster_of(self, node_name: str) -> Cluster:
        return self.clusters[self.node(node_name).cluster]

    def _vm_index(self) -> _VMIndex:
        """VMs by node, cluster and id. A VM never changes node, cluster or id, and VMs are only added
        by reset(), which drops the index; a look-up in a fleet of 10,000 VMs is then not a scan."""
        index = self._index
        if index is None or index.count != len(self.vms):
            index = self._index = _VMIndex(self.vms.values())
        return index

    def vms_on(self, node_name: str) -> list[VM]:
        return list(self._vm_index().by_node.get(node_name.lower(), ()))

    def vms_of_cluster(self, cluster_name: str) -> list[VM]:
        return list(self._vm_index().by_cluster.get(cluster_name, ()))

    def vm(self, name: str) -> VM | None:
        return self.vms.get(name.lower())

    def vm_by_id(self, vm_id: str) -> VM | None:
        return self._vm_index().by_id.get(vm_id.lower())

    # --- derived facts ---------------------------------------------------------------------------

    def node_serves_imds(self, node: Node) -> bool:
        """Whether HciSvc on the node answers attestation requests at all (an assumption: only Active)."""
        return node.attestation == "Active" and self.clusters[node.cluster].registration == "Registered"

    def legacy_enabled(self, node: Node) -> bool:
        """V1 is served on 22H2 always, on 23H2+ only with legacy OS support."""
        return not self.clusters[node.cluster].supports_v2 or node.legacy_os_support

    def v1_path_works(self, vm: VM) -> bool:
        node = self.node(vm.node)
        nic = next((n for n in vm.imds_nics() if n.switch_name == HOST_SWITCH), None)
        return (
            nic is not None
            and node.switch is not None
            and node.switch.name == HOST_SWITCH
            and node.switch.switch_type == "Internal"
            and node.host_vnic_address == HOST_IMDS_ADDRESS
            and self.legacy_enabled(node)
            and self.node_serves_imds(node)
        )

    def v2_path_works(self, vm: VM) -> bool:
        node = self.node(vm.node)
        return self.clusters[vm.cluster].supports_v2 and vm.gsi and self.node_serves_imds(node)

    def guest_reaches_imds(self, vm: VM, address: str) -> bool:
        """The HTTP endpoint a probe inside the guest can reach. On HCI only .253 exists, over the V1 NIC.

        Assumption: V2 (VMBus) guests have no HTTP route to 169.254.169.253; their document flows over
        VMBus to fclip, which a probe cannot call.
        """
        return address == HOST_IMDS_ADDRESS and vm.guest.imds == "reachable" and self.v1_path_works(vm)

    def activation_path_works(self, vm: VM) -> bool:
        guest = vm.guest
        if guest.imds != "reachable" or guest.document != "valid" or guest.imds_status != 200:
            return False
        return self.v1_path_works(vm) or self.v2_path_works(vm)

    # --- the guest's licensing task --------------------------------------------------------------

    def advance_guest(self, vm: VM) -> None:
        """Finish the task run that is due by now on the lab clock."""
        guest = vm.guest
        if guest.running_until is not None and self.clock.now() >= guest.running_until:
            finished_at = guest.running_until
            guest.running_until = None
            if guest.task == "Running":
                guest.task = "Ready"
            self._complete_run(vm, finished_at)

    def start_task(self, vm: VM) -> None:
        guest = vm.guest
        self.advance_guest(vm)
        if guest.task == "Running":
            return
        at = self.clock.now()
        guest.task = "Running"
        guest.runs += 1
        guest.last_run = at
        guest.running_until = at + dt.timedelta(seconds=guest.task_run_seconds)

    def _complete_run(self, vm: VM, at: dt.datetime) -> None:
        from hcibenefit.lab.guestos import record_task_outcome

        record_task_outcome(self, vm, at)


def _mac(vm_id: str, index: int) -> str:
    digits = vm_id.replace("-", "")[:8].upper()
    return f"00155D{digits[:4]}{index:02X}"


def _node_from_spec(cluster: ClusterSpec, spec: NodeSpec, started: dt.datetime) -> Node:
    switch_id = stable_id(cluster.name, spec.name, "imds-switch")
    switch: Switch | None = Switch(HOST_SWITCH, switch_id, "Internal", SWITCH_NOTES)
    if spec.switch == "missing":
        switch = None
    elif spec.switch == "renamed":
        switch = Switch("IMDS-Switch", switch_id, "Internal", SWITCH_NOTES)
    elif spec.switch == "wrong-type":
        switch = Switch(HOST_SWITCH, switch_id, "External", SWITCH_NOTES)
    enabled = spec.attestation in ("Active", "Expired", "Error") and switch is not None
    expiration = started + dt.timedelta(days=spec.expires_in_days) if enabled else None
    rules = dict.fromkeys(FIREWALL_RULES, True) if switch is not None else {ALLOW_RULE: False}
    return Node(
        name=spec.name,
        cluster=cluster.name,
        attestation=spec.attestation,
        expiration=expiration,
        switch=switch,
        attestation_switch_id=switch_id if enabled else EMPTY_GUID,
        legacy_os_support=spec.legacy_os_support,
        module=None if spec.module.lower() == "missing" else spec.module,
        state=spec.state,
        faults=spec.faults,
        host_vnic_address=HOST_IMDS_ADDRESS if switch is not None else None,
        firewall_enabled=rules,
        host_vnic_alias=HOST_SWITCH if spec.host_vnic_alias == "renamed" else f"vEthernet ({HOST_SWITCH})",
        host_vnic_mac=_mac(switch_id, 9),
    )


def _guest_from_spec(spec: GuestSpec, *, session_host: bool = False) -> GuestState:
    agent = spec.avd_agent
    if agent == "auto":
        # The AVD agent is installed (and registered) on the session hosts of a host pool only.
        agent = "registered" if session_host else "missing"
    return GuestState(
        license_status=spec.license_status,
        task=spec.task,
        imds=spec.imds,
        document=spec.document,
        powershell_direct=spec.powershell_direct,
        runs_needed=spec.runs_needed,
        imds_status=spec.imds_status,
        clip_log=spec.clip_log,
        task_run_seconds=spec.task_run_seconds,
        system_proxy=spec.system_proxy,
        ubr=spec.ubr,
        avd_agent=agent,
        clock_skew_s=spec.clock_skew_s,
        time_source=spec.time_source,
    )
