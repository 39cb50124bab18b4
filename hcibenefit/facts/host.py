"""Typed records of what a node reported through the host-facts script.

Parsing is strict about shape (a wrong type is a FactsError naming the field) and lenient about
values: an enum value we have never seen is kept as text, so a new Windows release degrades a
report instead of breaking it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

HOST_SWITCH = "AZSHCI_HOST-IMDS_DO_NOT_MODIFY"
GUEST_NIC = "AZSHCI_GUEST-IMDS_DO_NOT_MODIFY"
GSI = "Guest Service Interface"
KVP = "Key-Value Pair Exchange"
HOST_IMDS_ADDRESS = "169.254.169.253"
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
HOST_FACTS_SCHEMA = "host-facts/3"
HOST_FACTS_SCHEMAS = ("host-facts/2", HOST_FACTS_SCHEMA)
"""What we parse: /3 added the cluster's networks, this node's interfaces on them and the VM roles other
nodes own (None from a /2 document: a script exported by an older hcibenefit, run offline)."""
# FailoverClusters' ClusterNetworkRole (FailoverClusters 2.0.0.0 as FailoverClusterDsc's stubs list it).
NETWORK_ROLES = {0: "None", 1: "Cluster", 2: "Client", 3: "ClusterAndClient"}
# OS build → release: 22H2 = 20349, 23H2 = 25398 (solution 10.x/11.x), 24H2 = 26100 (solution 12.x; 26200
# also appears in 2025 update tables). There is no 20350. 24H2 behaves like 23H2 for benefits.
RELEASES = {"20348": "21H2", "20349": "22H2", "25398": "23H2", "26100": "24H2", "26200": "24H2"}
LAST_PRE_V2_BUILD = 20349


class FactsError(ValueError):
    """The script output does not have the shape we expect."""


def _mapping(obj: Any, where: str) -> Mapping[str, Any]:
    """An object of the document; anything else is a FactsError (a .NET type name in its place is what
    Windows PowerShell 5.1's ConvertTo-Json writes below its -Depth)."""
    if not isinstance(obj, Mapping):
        shown = repr(obj)[:80]
        raise FactsError(f"{where}: expected an object, got {type(obj).__name__} {shown}")
    return obj


def _get(
    obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, *, optional: bool = True
) -> Any:
    value = _mapping(obj, where).get(key)
    if value is None:
        if optional:
            return None
        raise FactsError(f"{where}.{key}: missing")
    if not isinstance(value, kind):
        raise FactsError(f"{where}.{key}: expected {kind}, got {type(value).__name__}")
    return value


def _text(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _get(obj, key, (str, int, float), where)
    if value is None:
        return ""
    # Interned: a fleet's facts repeat the same words tens of thousands of times (states, service and
    # group names, captions, statuses), and a JSON parser makes a new string for every occurrence. Long
    # text (event messages) is seldom repeated and costs a hash to intern.
    return sys.intern(value) if type(value) is str and len(value) <= 96 else str(value)


def _list(obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = _mapping(obj, where).get(key)
    if value is None:
        return []
    if isinstance(value, dict):
        # PowerShell 5.1 turns a one-element array into a bare object in some paths.
        return [value]
    if not isinstance(value, list):
        raise FactsError(f"{where}.{key}: expected a list, got {type(value).__name__}")
    return value


def parse_time(value: Any) -> dt.datetime | None:
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # .NET's round-trip format has 7 fractional digits; Python accepts at most 6.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True, slots=True)
class SwitchFacts:
    name: str
    id: str
    switch_type: str
    notes: str


@dataclass(frozen=True, slots=True)
class NicFacts:
    name: str
    switch_name: str | None
    connected: bool
    mac_address: str
    ip_addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IntegrationServiceFacts:
    name: str
    enabled: bool
    primary_status: str


@dataclass(frozen=True, slots=True)
class VMFacts:
    id: str
    name: str
    node: str
    cluster: str
    generation: int
    state: str
    is_clustered: bool
    nics: tuple[NicFacts, ...]
    integration_services: tuple[IntegrationServiceFacts, ...]
    kvp: Mapping[str, str] | None
    """Guest data from Hyper-V data exchange; None when not collected, empty when the guest sent none."""

    @property
    def imds_nic(self) -> NicFacts | None:
        """The guest NIC on the IMDS switch, else the first one by that name (several: debris)."""
        nics = [n for n in self.nics if n.name == GUEST_NIC]
        return next(
            (n for n in nics if n.connected and n.switch_name == HOST_SWITCH), nics[0] if nics else None
        )

    @property
    def imds_nics(self) -> tuple[NicFacts, ...]:
        return tuple(n for n in self.nics if n.name == GUEST_NIC)

    def service(self, name: str) -> IntegrationServiceFacts | None:
        return next((s for s in self.integration_services if s.name == name), None)

    @property
    def gsi_enabled(self) -> bool:
        service = self.service(GSI)
        return service is not None and service.enabled

    @property
    def kvp_enabled(self) -> bool:
        service = self.service(KVP)
        return service is not None and service.enabled

    @property
    def os_name(self) -> str | None:
        return (self.kvp or {}).get("OSName") or None

    @property
    def running(self) -> bool:
        return self.state == "Running"


@dataclass(frozen=True, slots=True)
class RegistrationFacts:
    registration_status: str
    connection_status: str
    imds_attestation: str
    last_connected: dt.datetime | None
    azure_resource_name: str
    azure_resource_uri: str


@dataclass(frozen=True, slots=True)
class NodeAttestationFacts:
    status: str
    expiration: dt.datetime | None
    switch_id: str
    legacy_os_support: str | None
    """Enabled/Disabled on 23H2+ hosts; None on 22H2, where the property does not exist."""

    @property
    def configured(self) -> bool:
        return bool(self.switch_id) and self.switch_id != EMPTY_GUID


@dataclass(frozen=True, slots=True)
class FirewallRuleFacts:
    name: str
    enabled: bool
    direction: str
    action: str


@dataclass(frozen=True, slots=True)
class ClusterNodeFacts:
    name: str
    state: str


@dataclass(frozen=True, slots=True)
class ClusterNetworkFacts:
    name: str
    role: str
    """None (the cluster does not use it), Cluster, Client or ClusterAndClient; the number if unknown."""
    state: str
    """Up, Down, Partitioned, Unavailable or Unknown."""
    address: str
    address_mask: str

    def contains(self, address: str) -> bool:
        """Whether the IPv4 address lies in this network's subnet (False without an IPv4 subnet)."""
        try:
            subnet = ipaddress.IPv4Network(f"{self.address}/{self.address_mask}", strict=False)
            return ipaddress.IPv4Address(address) in subnet
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class ClusterInterfaceFacts:
    """This node's interface on a cluster network (Get-ClusterNetworkInterface -Node <this node>)."""

    name: str
    network: str
    adapter: str
    """The NetAdapter's InterfaceDescription."""
    state: str


@dataclass(frozen=True, slots=True)
class ClusterGroupFacts:
    """A VM role another node of the cluster owns (Get-ClusterGroup, GroupType VirtualMachine)."""

    name: str
    owner_node: str
    state: str


@dataclass(frozen=True, slots=True)
class ScriptProblem:
    source: str
    message: str
    error_id: str


@dataclass(frozen=True, slots=True)
class HostFacts:
    node: str
    cluster: str
    computer_name: str
    collected_at: dt.datetime | None
    os_caption: str
    os_build: str
    module_version: str | None
    registration: RegistrationFacts | None
    attestation: NodeAttestationFacts | None
    switch: SwitchFacts | None
    attestation_switch: SwitchFacts | None
    host_vnic_addresses: tuple[str, ...] | None
    """None when the host vNIC on the IMDS switch does not exist."""
    host_vnic_alias: str | None
    """The vNIC's NetAdapter name (found by MAC address); None when it was not found."""
    host_vnic_description: str | None
    """The vNIC's NetAdapter InterfaceDescription (what cluster network interfaces name as Adapter)."""
    firewall: tuple[FirewallRuleFacts, ...]
    cluster_nodes: tuple[ClusterNodeFacts, ...]
    cluster_networks: tuple[ClusterNetworkFacts, ...] | None
    """None when Get-ClusterNetwork failed (problems say why) or was not asked (host-facts/2)."""
    cluster_interfaces: tuple[ClusterInterfaceFacts, ...] | None
    cluster_groups: tuple[ClusterGroupFacts, ...] | None
    """The VM roles other nodes own; None when Get-ClusterGroup failed or was not asked."""
    vms: tuple[VMFacts, ...]
    problems: tuple[ScriptProblem, ...]

    def imds_cluster_networks(self) -> tuple[ClusterNetworkFacts, ...]:
        """The cluster networks the host IMDS adapter is part of: the network of this node's interface on
        that adapter, else a network whose IPv4 subnet holds the adapter's address."""
        networks = self.cluster_networks or ()
        description = self.host_vnic_description
        by_interface = {
            i.network.casefold()
            for i in self.cluster_interfaces or ()
            if description and i.adapter.casefold() == description.casefold()
        }
        addresses = self.host_vnic_addresses or ()
        return tuple(
            n for n in networks if n.name.casefold() in by_interface or any(n.contains(a) for a in addresses)
        )

    @property
    def release(self) -> str:
        if self.os_build in RELEASES:
            return RELEASES[self.os_build]
        if self.os_build.isdigit() and int(self.os_build) > LAST_PRE_V2_BUILD:
            return "23H2+"
        return "unknown"

    @property
    def supports_v2(self) -> bool:
        """A host that reports LegacyOsSupport serves V2 (VMBus); Az.StackHCI uses the same test."""
        if self.attestation is not None and self.attestation.legacy_os_support is not None:
            return True
        return self.release in ("23H2", "24H2", "23H2+")

    def attestation_listing(self, vm: VMFacts) -> tuple[str, ...]:
        """SupportedVersions Get-AzStackHCIVMAttestation would list for the VM here; () when it would not.

        Derived as the module does it (cmdlets.md 9.12): V1 for a guest NIC when
        legacy OS support is on (on 22H2: while the node is Active), V2 for the Guest Service Interface on
        V2 hosts. Status is always Connected: it means configured, never probed.
        """
        versions = []
        legacy = (
            self.legacy_os_support
            if self.supports_v2
            else (self.attestation is not None and self.attestation.status == "Active")
        )
        if legacy and vm.imds_nics:
            versions.append("V1")
        if self.supports_v2 and vm.gsi_enabled:
            versions.append("V2")
        return tuple(versions)

    @property
    def legacy_os_support(self) -> bool:
        """Whether V1 (guest NIC) is served: always on 22H2, opt-in on 23H2+."""
        if not self.supports_v2:
            return True
        return self.attestation is not None and self.attestation.legacy_os_support == "Enabled"


def _switch(raw: Any, where: str) -> SwitchFacts | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise FactsError(f"{where}: expected an object")
    return SwitchFacts(
        name=_text(raw, "name", where),
        id=_text(raw, "id", where).lower(),
        switch_type=_text(raw, "switch_type", where),
        notes=_text(raw, "notes", where),
    )


def _vm(raw: Any, index: int, node: str, cluster: str) -> VMFacts:
    where = f"vms[{index}]"
    if not isinstance(raw, dict):
        raise FactsError(f"{where}: expected an object")
    nics = tuple(
        NicFacts(
            name=_text(n, "name", f"{where}.network_adapters[{i}]"),
            switch_name=sys.intern(_get(n, "switch_name", str, where) or "") or None,
            connected=bool(n.get("connected")),
            mac_address=_text(n, "mac_address", where),
            ip_addresses=tuple(str(a) for a in _list(n, "ip_addresses", where)),
        )
        for i, n in enumerate(_list(raw, "network_adapters", where))
    )
    services = tuple(
        IntegrationServiceFacts(
            name=_text(s, "name", where),
            enabled=bool(s.get("enabled")),
            primary_status=_text(s, "primary_status", where),
        )
        for s in _list(raw, "integration_services", where)
    )
    kvp_raw = _get(raw, "kvp", dict, where)
    generation = _get(raw, "generation", int, where)
    return VMFacts(
        id=_text(raw, "id", where).lower(),
        name=_text(raw, "name", where),
        node=node,
        cluster=cluster,
        generation=generation or 0,
        state=_text(raw, "state", where),
        is_clustered=bool(raw.get("is_clustered")),
        nics=nics,
        integration_services=services,
        kvp=None if kvp_raw is None else {sys.intern(str(k)): sys.intern(str(v)) for k, v in kvp_raw.items()},
    )


def _role(raw: Mapping[str, Any], where: str) -> str:
    value = _get(raw, "role", (int, str), where)
    if isinstance(value, int) and not isinstance(value, bool):
        return NETWORK_ROLES.get(value, str(value))
    return "" if value is None else str(value)


R = TypeVar("R")


def _records(document: Mapping[str, Any], key: str, make: Callable[[Any, str], R]) -> tuple[R, ...] | None:
    """A list the script sets to null when its cmdlet failed: None then, else each item made into a record."""
    if document.get(key) is None:
        return None
    return tuple(make(raw, f"{key}[{i}]") for i, raw in enumerate(_list(document, key, "")))


def _network(raw: Any, where: str) -> ClusterNetworkFacts:
    return ClusterNetworkFacts(
        name=_text(raw, "name", where),
        role=_role(raw, where),
        state=_text(raw, "state", where),
        address=_text(raw, "address", where),
        address_mask=_text(raw, "address_mask", where),
    )


def _interface(raw: Any, where: str) -> ClusterInterfaceFacts:
    return ClusterInterfaceFacts(
        name=_text(raw, "name", where),
        network=_text(raw, "network", where),
        adapter=_text(raw, "adapter", where),
        state=_text(raw, "state", where),
    )


def _group(raw: Any, where: str) -> ClusterGroupFacts:
    return ClusterGroupFacts(
        name=_text(raw, "name", where),
        owner_node=_text(raw, "owner_node", where),
        state=_text(raw, "state", where),
    )


def parse_host_facts(document: Mapping[str, Any], *, node: str, cluster: str) -> HostFacts:
    """Build HostFacts from a host-facts/3 (or /2) JSON document. Raises FactsError on a wrong shape."""
    if document.get("schema") not in HOST_FACTS_SCHEMAS:
        raise FactsError(f"schema: expected {HOST_FACTS_SCHEMA!r}, got {document.get('schema')!r}")
    os_raw = _get(document, "os", dict, "") or {}
    module = _get(document, "module", dict, "")
    reg = _get(document, "registration", dict, "")
    att = _get(document, "attestation", dict, "")
    vnic = _get(document, "host_vnic", dict, "")
    cluster_raw = _get(document, "cluster", dict, "") or {}
    return HostFacts(
        node=node,
        cluster=cluster,
        computer_name=_text(document, "computer_name", ""),
        collected_at=parse_time(document.get("collected_at")),
        os_caption=_text(os_raw, "caption", "os"),
        os_build=_text(os_raw, "build", "os"),
        module_version=_text(module, "version", "module") if module else None,
        registration=RegistrationFacts(
            registration_status=_text(reg, "registration_status", "registration"),
            connection_status=_text(reg, "connection_status", "registration"),
            imds_attestation=_text(reg, "imds_attestation", "registration"),
            last_connected=parse_time(reg.get("last_connected")),
            azure_resource_name=_text(reg, "azure_resource_name", "registration"),
            azure_resource_uri=_text(reg, "azure_resource_uri", "registration"),
        )
        if reg
        else None,
        attestation=NodeAttestationFacts(
            status=_text(att, "status", "attestation"),
            expiration=parse_time(att.get("expiration")),
            switch_id=_text(att, "switch_id", "attestation").lower(),
            legacy_os_support=_get(att, "legacy_os_support", str, "attestation"),
        )
        if att
        else None,
        switch=_switch(document.get("switch"), "switch"),
        attestation_switch=_switch(document.get("attestation_switch"), "attestation_switch"),
        host_vnic_addresses=None
        if vnic is None
        else tuple(_text(a, "address", "host_vnic.addresses") for a in _list(vnic, "addresses", "host_vnic")),
        host_vnic_alias=_get(vnic, "interface_alias", str, "host_vnic") if vnic else None,
        host_vnic_description=_get(vnic, "interface_description", str, "host_vnic") if vnic else None,
        firewall=tuple(
            FirewallRuleFacts(
                name=_text(r, "name", "firewall"),
                enabled=bool(r.get("enabled")),
                direction=_text(r, "direction", "firewall"),
                action=_text(r, "action", "firewall"),
            )
            for r in _list(document, "firewall", "")
        ),
        cluster_nodes=tuple(
            ClusterNodeFacts(name=_text(n, "name", "cluster.nodes"), state=_text(n, "state", "cluster.nodes"))
            for n in _list(cluster_raw, "nodes", "cluster")
        ),
        cluster_networks=_records(document, "cluster_networks", _network),
        cluster_interfaces=_records(document, "cluster_interfaces", _interface),
        cluster_groups=_records(document, "cluster_groups", _group),
        vms=tuple(_vm(raw, i, node, cluster) for i, raw in enumerate(_list(document, "vms", ""))),
        problems=tuple(
            ScriptProblem(
                source=_text(p, "source", "problems"),
                message=_text(p, "message", "problems"),
                error_id=_text(p, "error_id", "problems"),
            )
            for p in _list(document, "problems", "")
        ),
    )
