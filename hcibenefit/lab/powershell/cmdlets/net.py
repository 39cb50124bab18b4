"""NetAdapter, NetTCPIP and NetSecurity cmdlets (CDXML script-module functions over CIM).

Source: cmdlets.md section 2 and G5: a filter value without wildcards that
matches nothing writes a non-terminating ObjectNotFound error, id
`CmdletizationQuery_NotFound_<Property>,<Cmdlet>` for one filtering property (the complex-case id
`CmdletizationQuery_NotFound,<Cmdlet>` with the WQL query when several filters are combined);
matching is case-insensitive; a wildcard that matches nothing returns nothing. Being functions, they
read preference variables from the global scope (powershell51.md 10.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hcibenefit.lab import guestos
from hcibenefit.lab.machines import GuestMachine, NodeMachine
from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.values import EnumType, PSObject
from hcibenefit.lab.state import FIREWALL_RULES, GUEST_NIC

CIM_JOB = "Microsoft.Management.Infrastructure.CimException"
ADDRESS_FAMILY = EnumType("AddressFamily", {"IPv4": 2, "IPv6": 23})
PREFIX_ORIGIN = EnumType(
    "PrefixOrigin", {"Other": 0, "Manual": 1, "WellKnown": 2, "Dhcp": 3, "RouterAdvertisement": 4}
)
ENABLED = EnumType("Enabled", {"True": 1, "False": 2})
DIRECTION = EnumType("Direction", {"Inbound": 1, "Outbound": 2})
ACTION = EnumType("Action", {"NotConfigured": 0, "Allow": 2, "Block": 4})
NETADAPTER = "https://learn.microsoft.com/powershell/module/{}/{}?view=windowsserver2022-ps"


@dataclass(frozen=True)
class Interface:
    alias: str
    index: int
    description: str
    mac: str
    addresses: tuple[tuple[str, int, str], ...]  # (address, prefix length, origin)
    hidden: bool = False


def _dashed(mac: str) -> str:
    return "-".join(mac[i : i + 2] for i in range(0, len(mac), 2))


def _loopback() -> Interface:
    return Interface(
        "Loopback Pseudo-Interface 1",
        1,
        "Software Loopback Interface 1",
        "",
        (("127.0.0.1", 8, "WellKnown"),),
        hidden=True,
    )


def interfaces(machine: Any) -> list[Interface]:
    if isinstance(machine, NodeMachine):
        node = machine.node
        seed = sum(ord(c) for c in node.name) % 200 + 10
        found = [
            Interface(
                "vEthernet (ConvergedSwitch(management))",
                12,
                "Hyper-V Virtual Ethernet Adapter",
                f"00155D01{seed:02X}00",
                ((f"10.0.0.{seed}", 24, "Manual"),),
            )
        ]
        if node.switch is not None:
            addresses: tuple[tuple[str, int, str], ...] = (
                ((node.host_vnic_address, 16, "Manual"),) if node.host_vnic_address else ()
            )
            found.append(
                Interface(
                    node.host_vnic_alias,
                    20,
                    "Hyper-V Virtual Ethernet Adapter #2",
                    node.host_vnic_mac,
                    addresses,
                )
            )
        return [*found, _loopback()]
    assert isinstance(machine, GuestMachine)
    vm = machine.vm
    found = []
    for position, nic in enumerate(vm.nics):
        alias = "Ethernet" if position == 0 else f"Ethernet {position + 1}"
        origin = "WellKnown" if nic.name == GUEST_NIC else "Dhcp"
        prefix = 16 if nic.name == GUEST_NIC else 24
        addresses = tuple((a, prefix, origin) for a in guestos.guest_addresses(vm, nic))
        found.append(Interface(alias, 4 + position, "Microsoft Hyper-V Network Adapter", nic.mac, addresses))
    return [*found, _loopback()]


def _not_found(call: Call, cim_class: str, prop: str, value: Any) -> None:
    call.error(
        f"No {cim_class} objects found with property '{prop}' equal to '{cv.to_string(value)}'.  Verify the value of the "
        "property and retry.",
        f"CmdletizationQuery_NotFound_{prop}",
        "ObjectNotFound",
        exception_type=CIM_JOB,
        target=value,
    )


def _not_found_query(call: Call, cim_class: str, namespace: str, clauses: Sequence[str]) -> None:
    where = " AND ".join(f"(({c}))" for c in clauses)
    call.error(
        f"No matching {cim_class} objects found by CIM query for instances of the {namespace}/{cim_class} class on the  "
        f"CIM server: SELECT * FROM {cim_class}  WHERE {where}. Verify query parameters and retry.",
        "CmdletizationQuery_NotFound",
        "ObjectNotFound",
        exception_type=CIM_JOB,
        target=cim_class,
    )


def _filter(
    call: Call,
    rows: list[Any],
    filters: list[tuple[str, str, list[Any] | None, Callable[[Any, Any], bool]]],
    cim_class: str,
    namespace: str,
) -> list[Any]:
    """Apply CDXML-style filters: (parameter, CIM property, values, matches(row, value))."""
    given = [f for f in filters if f[2] is not None]
    result = rows
    for _, _, values, matches in given:
        assert values is not None
        result = [row for row in result if any(matches(row, v) for v in values)]
    if len(given) == 1:
        _, prop, values, matches = given[0]
        for value in values or []:
            if not (isinstance(value, str) and cv.has_wildcards(value)) and not any(
                matches(row, value) for row in rows
            ):
                _not_found(call, cim_class, prop, value)
    elif len(given) > 1 and not result:
        clauses = []
        for _, prop, values, _ in given:
            shown = " OR ".join(
                f"{prop} LIKE '{cv.to_string(v).replace(chr(92), chr(92) * 2)}'" for v in values or []
            )
            clauses.append(shown)
        _not_found_query(call, cim_class, namespace, clauses)
    return result


def _like(text: str, value: Any) -> bool:
    return cv.wildcard_match(cv.to_string(value), text)


@cmdlet(
    "Get-NetIPAddress",
    module="NetTCPIP",
    source=NETADAPTER.format("nettcpip", "get-netipaddress", "2"),
    params=[
        P("IPAddress", "string[]", 0, aliases=("LocalAddress",)),
        P("InterfaceIndex", "object[]", aliases=("ifIndex",)),
        P("InterfaceAlias", "string[]", aliases=("ifAlias",)),
        P("AddressFamily", "string[]", choices=("IPv4", "IPv6")),
    ],
)
def get_net_ip_address(call: Call) -> None:
    with call.state.lock:
        rows = [(i, a) for i in interfaces(call.machine) for a in i.addresses]
    index_values = (
        None
        if call.params["InterfaceIndex"] is None
        else [cv.to_integer(v, cv.UINT32, "System.UInt32") for v in call.params["InterfaceIndex"]]
    )
    selected = _filter(
        call,
        rows,
        [
            ("IPAddress", "IPAddress", call.params["IPAddress"], lambda r, v: _like(r[1][0], v)),
            ("InterfaceIndex", "InterfaceIndex", index_values, lambda r, v: r[0].index == v),
            (
                "InterfaceAlias",
                "InterfaceAlias",
                call.params["InterfaceAlias"],
                lambda r, v: _like(r[0].alias, v),
            ),
            (
                "AddressFamily",
                "AddressFamily",
                call.params["AddressFamily"],
                lambda r, v: ":" not in r[1][0] if v == "IPv4" else ":" in r[1][0],
            ),
        ],
        "MSFT_NetIPAddress",
        "ROOT/StandardCimv2",
    )
    for interface, (address, prefix, origin) in selected:
        call.emit(
            PSObject(
                [
                    "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetIPAddress",
                    "Microsoft.Management.Infrastructure.CimInstance",
                ],
                {
                    "IPAddress": address,
                    "InterfaceIndex": interface.index,
                    "InterfaceAlias": interface.alias,
                    "AddressFamily": ADDRESS_FAMILY("IPv6" if ":" in address else "IPv4"),
                    "Type": "Unicast",
                    "PrefixLength": prefix,
                    "PrefixOrigin": PREFIX_ORIGIN(origin),
                    "SuffixOrigin": PREFIX_ORIGIN(origin),
                    "AddressState": "Preferred",
                    "SkipAsSource": False,
                    "PolicyStore": "ActiveStore",
                },
                string=f'MSFT_NetIPAddress (Name = "{address}")',
            )
        )


@cmdlet(
    "Get-NetAdapter",
    module="NetAdapter",
    source=NETADAPTER.format("netadapter", "get-netadapter", "1"),
    sets=("ByName", "ByIfIndex"),
    params=[
        P("Name", "string[]", 0, sets=("ByName",), aliases=("ifAlias", "InterfaceAlias")),
        P("InterfaceIndex", "object[]", sets=("ByIfIndex",), aliases=("ifIndex",), mandatory=("*",)),
        P("IncludeHidden", "switch"),
        P("Physical", "switch"),
    ],
)
def get_net_adapter(call: Call) -> None:
    with call.state.lock:
        rows = [i for i in interfaces(call.machine) if call.params["IncludeHidden"] or not i.hidden]
    if call.params["Physical"]:
        rows = []  # every adapter the lab models is virtual (Hyper-V vNICs)
    index_values = (
        None
        if call.params["InterfaceIndex"] is None
        else [cv.to_integer(v, cv.UINT32, "System.UInt32") for v in call.params["InterfaceIndex"]]
    )
    selected = _filter(
        call,
        rows,
        [
            ("Name", "Name", call.params["Name"], lambda r, v: _like(r.alias, v)),
            ("InterfaceIndex", "InterfaceIndex", index_values, lambda r, v: r.index == v),
        ],
        "MSFT_NetAdapter",
        "ROOT/StandardCimv2",
    )
    for interface in selected:
        call.emit(
            PSObject(
                [
                    "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetAdapter",
                    "Microsoft.Management.Infrastructure.CimInstance",
                ],
                {
                    "Name": interface.alias,
                    "ifAlias": interface.alias,
                    "InterfaceAlias": interface.alias,
                    "InterfaceDescription": interface.description,
                    "ifIndex": interface.index,
                    "InterfaceIndex": interface.index,
                    "MacAddress": _dashed(interface.mac),
                    "Status": "Up",
                    "DeviceID": "{" + guestos_device_id(interface) + "}",
                },
                string=f'MSFT_NetAdapter (Name = "{interface.alias}")',
            )
        )


def guestos_device_id(interface: Interface) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_OID, interface.mac or interface.alias)).upper()


_RULE_TITLES = {
    # Assumption: display names; the rule names are Az.StackHCI's (cmdlets.md 2.3, 9.7.1).
    "AzsHci-ImdsAttestation-Allow-In": "Azure Stack HCI IMDS Attestation (Allow-In)",
}


@cmdlet(
    "Get-NetFirewallRule",
    module="NetSecurity",
    source=NETADAPTER.format("netsecurity", "get-netfirewallrule", "3"),
    sets=("ByName", "GetAll"),
    params=[
        P("Name", "string[]", 0, sets=("ByName",), aliases=("ID",), mandatory=("*",)),
        P("All", "switch", sets=("GetAll",)),
    ],
)
def get_net_firewall_rule(call: Call) -> None:
    machine = call.machine
    if not isinstance(machine, NodeMachine):
        rows: list[tuple[str, bool]] = []
    else:
        with call.state.lock:
            rows = [
                (name, machine.node.firewall_enabled[name])
                for name in FIREWALL_RULES
                if name in machine.node.firewall_enabled
            ]
    selected = rows
    if call.set_name == "ByName":
        selected = _filter(
            call,
            rows,
            [("Name", "InstanceID", call.params["Name"], lambda r, v: _like(r[0], v))],
            "MSFT_NetFirewallRule",
            "ROOT/StandardCimv2",
        )
    for name, enabled in selected:
        call.emit(
            PSObject(
                [
                    "Microsoft.Management.Infrastructure.CimInstance#root/StandardCimv2/MSFT_NetFirewallRule",
                    "Microsoft.Management.Infrastructure.CimInstance",
                ],
                {
                    "Name": name,
                    "ID": name,
                    "DisplayName": _RULE_TITLES.get(name, name),
                    "Group": "@FirewallAPI.dll,-55001",
                    "Enabled": ENABLED("True" if enabled else "False"),
                    "Direction": DIRECTION("Outbound" if name.endswith("-Out") else "Inbound"),
                    "Action": ACTION("Allow" if "Allow" in name else "Block"),
                    "Profile": "Any",
                    "PrimaryStatus": "OK",
                },
                string=f'MSFT_NetFirewallRule (Name = "{name}")',
            )
        )
