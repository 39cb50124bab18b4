"""The live state of a simulated fleet: what Get-VM, Get-AzureStackHCIAttestation & co. would report.

Built from a FleetSpec and changed only by the lab's emulation of our scripts, through the same
effects the real cmdlets have (adding the guest NIC, turning on the Guest Service Interface, syncing a
node). Derived facts (is the VM's IMDS path working? does the guest activate?) are computed from this
state rather than stored, so a change on the host shows up in the guest the way it would for real.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field

from hcibenefit.lab.spec import ClusterSpec, FaultsSpec, FleetSpec, GuestSpec, NodeSpec, VMSpec

HOST_SWITCH = "AZSHCI_HOST-IMDS_DO_NOT_MODIFY"
GUEST_NIC = "AZSHCI_GUEST-IMDS_DO_NOT_MODIFY"
SWITCH_NOTES = "Managed by Azure Stack HCI IMDS Attestation Service"
HOST_IMDS_ADDRESS = "169.254.169.253"
FIREWALL_RULES = (
    "AzsHci-ImdsAttestation-Allow-In",
    "AzsHci-ImdsAttestation-Block-TCP-In",
    "AzsHci-ImdsAttestation-Block-TCP-Out",
    "AzsHci-ImdsAttestation-Block-UDP-In",
    "AzsHci-ImdsAttestation-Block-UDP-Out",
)
BUILD_BY_VERSION = {"22H2": "20349", "23H2": "20350"}
ATTESTATION_VALIDITY = dt.timedelta(days=30)  # HciSvc's Azure certificate is valid 30 days (docs/platform.md)
_NAMESPACE = uuid.UUID("6f1c7a52-8d1e-4c51-9a3e-5b0f1d2c3e4f")


def stable_id(*parts: str) -> str:
    """Deterministic GUIDs so a reset fleet keeps its VM ids (scripts and tests may remember them)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


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

    @property
    def connected(self) -> bool:
        return self.switch_name is not None


@dataclass
class GuestState:
    license_status: int
    task: str  # Ready, Disabled, Missing
    imds: str
    document: str
    powershell_direct: str
    runs_needed: int
    runs: int = 0
    last_run: dt.datetime | None = None
    last_result: int = 267011  # 0x41303: "the task has not yet run"
    events: list[tuple[int, dt.datetime, str, str]] = field(
        default_factory=list
    )  # (id, time, provider, text)


@dataclass
class VM:
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


@dataclass
class Node:
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


@dataclass
class Cluster:
    name: str
    version: str
    registration: str
    nodes: list[str]
    last_sync: dt.datetime | None


class FleetState:
    """All clusters, nodes and VMs; one lock guards every read and change."""

    def __init__(
        self, spec: FleetSpec, *, subscription_id: str = "00000000-0000-4000-8000-00000000c0de"
    ) -> None:
        self.spec = spec
        self.subscription_id = subscription_id
        self.lock = threading.RLock()
        self.clusters: dict[str, Cluster] = {}
        self.nodes: dict[str, Node] = {}
        self.vms: dict[str, VM] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.clusters.clear()
            self.nodes.clear()
            self.vms.clear()
            started = now()
            for cluster in self.spec.clusters:
                self.clusters[cluster.name] = Cluster(
                    name=cluster.name,
                    version=cluster.version,
                    registration=cluster.registration,
                    nodes=[n.name for n in cluster.nodes],
                    last_sync=started - dt.timedelta(hours=6)
                    if cluster.registration == "Registered"
                    else None,
                )
                for node_spec in cluster.nodes:
                    self.nodes[node_spec.name.lower()] = _node_from_spec(cluster, node_spec, started)
                for vm_spec in cluster.vms:
                    self.vms[vm_spec.name.lower()] = self._vm_from_spec(cluster, vm_spec)

    def _vm_from_spec(self, cluster: ClusterSpec, spec: VMSpec) -> VM:
        node = self.nodes[spec.node.lower()]
        vm_id = stable_id(cluster.name, spec.name)
        nics = [Nic(name="Network Adapter", switch_name="ConvergedSwitch(compute)", mac=_mac(vm_id, 0))]
        if spec.benefits == "v1":
            # A V1 NIC on a node without the switch is left unconnected (what migration leaves behind).
            connected_to = (
                node.switch.name if node.switch is not None and node.switch.name == HOST_SWITCH else None
            )
            nics.append(Nic(name=GUEST_NIC, switch_name=connected_to, mac=_mac(vm_id, 1)))
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
            guest=_guest_from_spec(spec.guest),
        )

    # --- look-ups --------------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        return self.nodes[name.lower()]

    def cluster_of(self, node_name: str) -> Cluster:
        return self.clusters[self.node(node_name).cluster]

    def vms_on(self, node_name: str) -> list[VM]:
        key = node_name.lower()
        return [vm for vm in self.vms.values() if vm.node.lower() == key]

    def vm(self, name: str) -> VM | None:
        return self.vms.get(name.lower())

    # --- derived facts ---------------------------------------------------------------------------

    def node_serves_imds(self, node: Node) -> bool:
        """Whether HciSvc on the node answers attestation requests at all (an assumption: only Active)."""
        return node.attestation == "Active" and self.clusters[node.cluster].registration == "Registered"

    def v1_path_works(self, vm: VM) -> bool:
        node = self.node(vm.node)
        nic = vm.imds_nic()
        cluster = self.clusters[vm.cluster]
        legacy_ok = cluster.version == "22H2" or node.legacy_os_support
        return (
            nic is not None
            and nic.switch_name == HOST_SWITCH
            and node.switch is not None
            and node.switch.name == HOST_SWITCH
            and node.switch.switch_type == "Internal"
            and node.host_vnic_address == HOST_IMDS_ADDRESS
            and legacy_ok
            and self.node_serves_imds(node)
        )

    def v2_path_works(self, vm: VM) -> bool:
        node = self.node(vm.node)
        return self.clusters[vm.cluster].version == "23H2" and vm.gsi and self.node_serves_imds(node)

    def guest_reaches_imds(self, vm: VM, address: str) -> bool:
        """The HTTP endpoint a probe inside the guest can reach. On HCI only .253 exists, over the V1 NIC.

        Assumption: V2 (VMBus) guests have no HTTP route to 169.254.169.253; their document flows over
        VMBus to fclip, which a probe cannot call.
        """
        return address == HOST_IMDS_ADDRESS and vm.guest.imds == "reachable" and self.v1_path_works(vm)

    def activation_path_works(self, vm: VM) -> bool:
        if vm.guest.imds != "reachable" or vm.guest.document != "valid":
            return False
        return self.v1_path_works(vm) or self.v2_path_works(vm)

    def attestation_status(self, vm: VM) -> tuple[str, str] | None:
        """(Status, SupportedVersions) as Get-AzStackHCIVMAttestation -Local lists the VM, or None if absent.

        V1 is listed only when legacy OS support is on (23H2) or always on 22H2; V2 when GSI is on.
        Connected means configured, not probed (docs/platform.md, inference).
        """
        node = self.node(vm.node)
        cluster = self.clusters[vm.cluster]
        nic = vm.imds_nic()
        v1 = nic is not None and (cluster.version == "22H2" or node.legacy_os_support)
        v2 = cluster.version == "23H2" and vm.gsi
        if not v1 and not v2:
            return None
        versions = "V2" if v2 and not v1 else "V1" if v1 and not v2 else "V1, V2"
        connected = (v1 and nic is not None and nic.connected) or v2
        return ("Connected" if connected else "Disconnected", versions)


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
    return Node(
        name=spec.name,
        cluster=cluster.name,
        attestation=spec.attestation,
        expiration=expiration,
        switch=switch,
        attestation_switch_id=switch_id if enabled else "00000000-0000-0000-0000-000000000000",
        # LegacyOsSupport exists only on 23H2 hosts; on 22H2 the V1 path is the only one.
        legacy_os_support=spec.legacy_os_support,
        module=None if spec.module.lower() == "missing" else spec.module,
        state=spec.state,
        faults=spec.faults,
        host_vnic_address=HOST_IMDS_ADDRESS if switch is not None else None,
        firewall_enabled=dict.fromkeys(FIREWALL_RULES, switch is not None),
    )


def _guest_from_spec(spec: GuestSpec) -> GuestState:
    return GuestState(
        license_status=spec.license_status,
        task=spec.task,
        imds=spec.imds,
        document=spec.document,
        powershell_direct=spec.powershell_direct,
        runs_needed=spec.runs_needed,
    )
