"""Get-CimInstance and the CIM classes our scripts read.

Source: cmdlets.md 5.1 and 5.1a (Learn 5.1 CimCmdlets; class properties from the
Win32/SPP/Hyper-V WMI provider pages). -Filter is a WQL where-clause without WHERE; the lab evaluates
the subset `Prop = 'x'`, `Prop IS [NOT] NULL`, `Prop LIKE 'x%'`, joined by AND/OR.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hcibenefit.lab import guestos
from hcibenefit.lab.machines import GuestMachine, NodeMachine
from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.values import PSObject

CIM_COMMAND = "Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand"
CIM_EXCEPTION = "Microsoft.Management.Infrastructure.CimException"
CIMV2 = "root/cimv2"
VIRTUALIZATION = "root/virtualization/v2"


def _namespace(text: str | None) -> str:
    return (text or CIMV2).replace("\\", "/").strip("/").casefold()


def _instance(namespace: str, class_name: str, props: dict[str, Any]) -> PSObject:
    return PSObject(
        [
            f"Microsoft.Management.Infrastructure.CimInstance#{namespace}/{class_name}",
            "Microsoft.Management.Infrastructure.CimInstance",
        ],
        props,
        string=class_name,
    )


def _os_node(machine: NodeMachine) -> dict[str, Any]:
    cluster = machine.cluster
    # Assumption: the caption Azure Stack HCI / Azure Local nodes report (not in the references).
    return {
        "Caption": "Microsoft Azure Stack HCI",
        "BuildNumber": cluster.build,
        "Version": f"10.0.{cluster.build}",
        "OperatingSystemSKU": 406,
        "ProductType": 3,
        "CSName": machine.name,
    }


def _os_guest(machine: GuestMachine) -> dict[str, Any]:
    vm = machine.vm
    build = guestos.build_of(vm.os)
    return {
        "Caption": f"Microsoft {vm.os}",
        "BuildNumber": build,
        "Version": f"10.0.{build}",
        "OperatingSystemSKU": 175 if vm.edition == "ServerRdsh" else 8,
        "ProductType": 1 if "Windows 1" in vm.os else 3,
        "CSName": machine.name,
    }


_EDITION_IDS = {"ServerRdsh": "175", "Enterprise": "4", "Professional": "48", "ServerDatacenter": "8"}


def _kvp_item(name: str, data: str) -> str:
    """One Msvm_KvpExchangeDataItem as the embedded-instance XML Hyper-V returns (Learn msvm-kvpexchangedataitem)."""
    from xml.sax.saxutils import escape

    return (
        '<INSTANCE CLASSNAME="Msvm_KvpExchangeDataItem">'
        f'<PROPERTY NAME="Data" TYPE="string"><VALUE>{escape(data)}</VALUE></PROPERTY>'
        f'<PROPERTY NAME="Name" TYPE="string"><VALUE>{escape(name)}</VALUE></PROPERTY>'
        '<PROPERTY NAME="Source" TYPE="uint16"><VALUE>2</VALUE></PROPERTY>'
        "</INSTANCE>"
    )


def _kvp_components(machine: NodeMachine) -> list[dict[str, Any]]:
    rows = []
    for vm in sorted(machine.vms(), key=lambda v: v.id):
        items: list[str] = []
        if vm.state == "Running" and vm.kvp:
            build = guestos.build_of(vm.os)
            values = {
                "FullyQualifiedDomainName": f"{vm.name}.lab.test",
                "OSName": vm.os,
                "OSVersion": f"10.0.{build}",
                "OSBuildNumber": build,
                "OSEditionId": _EDITION_IDS.get(vm.edition, "0"),
                "ProductType": "3" if vm.edition.startswith("Server") and vm.edition != "ServerRdsh" else "1",
                "NetworkAddressIPv4": ";".join(
                    a for nic in vm.nics for a in guestos.guest_addresses(vm, nic)
                ),
            }
            items = [_kvp_item(k, v) for k, v in values.items()]
        rows.append(
            {
                # The VM's Msvm_ComputerSystem Name: its GUID in upper case (cmdlets.md 5.1a [I]).
                "SystemName": vm.id.upper(),
                "GuestIntrinsicExchangeItems": items,
                "GuestExchangeItems": [],
                "EnabledState": 2 if vm.kvp else 3,
            }
        )
    return rows


def _licensing_products(machine: GuestMachine) -> list[dict[str, Any]]:
    vm = machine.vm
    guest = vm.guest
    machine.state.advance_guest(vm)
    licensed = guest.license_status == 1
    keyed = {
        "ID": "f" + vm.id[1:],
        "Name": f"Windows(R), {vm.edition} edition",
        "Description": "Windows(R) Operating System, VOLUME_KMSCLIENT channel",
        "ApplicationID": guestos.WINDOWS_APPLICATION_ID,
        "PartialProductKey": "3V66T",
        "LicenseStatus": guest.license_status,
        "LicenseFamily": vm.edition,
        "ProductKeyChannel": guestos.PRODUCT_CHANNEL,
        "GracePeriodRemaining": guestos.LICENSED_GRACE_MINUTES if licensed else 0,
    }
    # Windows lists every edition it could be upgraded to, unlicensed and without a key; the filter on
    # PartialProductKey is what leaves them out.
    others = [
        {
            "ID": f"{index:08x}-0000-4000-8000-000000000000",
            "Name": f"Windows(R), {edition} edition",
            "Description": "Windows(R) Operating System, RETAIL channel",
            "ApplicationID": guestos.WINDOWS_APPLICATION_ID,
            "PartialProductKey": None,
            "LicenseStatus": 0,
            "LicenseFamily": edition,
            "ProductKeyChannel": None,
            "GracePeriodRemaining": 0,
        }
        for index, edition in enumerate(("Professional", "Education"), start=1)
    ]
    office = {
        "ID": "0ff1ce15-0000-4000-8000-000000000000",
        "Name": "Office 16, Office16ProPlusVL_KMS_Client edition",
        "Description": "Office 16, VOLUME_KMSCLIENT channel",
        "ApplicationID": "0ff1ce15-a989-479d-af46-f275c6370663",
        "PartialProductKey": "WFG99",
        "LicenseStatus": 1,
        "LicenseFamily": "Office16ProPlusVL_KMS_Client",
        "ProductKeyChannel": "Volume:GVLK",
        "GracePeriodRemaining": 259200,
    }
    return [keyed, *others, office]


ClassSource = Callable[[Any], list[dict[str, Any]]]


def _classes(machine: Any) -> dict[tuple[str, str], ClassSource]:
    table: dict[tuple[str, str], ClassSource] = {}
    if isinstance(machine, NodeMachine):
        table[(CIMV2, "win32_operatingsystem")] = lambda m: [_os_node(m)]
        table[(CIMV2, "cim_operatingsystem")] = lambda m: [_os_node(m)]
        table[(VIRTUALIZATION, "msvm_kvpexchangecomponent")] = _kvp_components
    else:
        table[(CIMV2, "win32_operatingsystem")] = lambda m: [_os_guest(m)]
        table[(CIMV2, "cim_operatingsystem")] = lambda m: [_os_guest(m)]
        table[(CIMV2, "softwarelicensingproduct")] = _licensing_products
    return table


_TOKEN = re.compile(
    r"\s*(?:(\()|(\))|('(?:[^']|'')*')|(\bAND\b|\bOR\b|\bIS\s+NOT\s+NULL\b|\bIS\s+NULL\b|\bLIKE\b|\bNOT\b)|(<>|!=|>=|<=|=|<|>)|([A-Za-z_][\w]*)|(-?\d+))",
    re.IGNORECASE,
)


class QueryError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        found = _TOKEN.match(text, position)
        if found is None:
            raise QueryError(text[position:])
        kinds = ("lp", "rp", "str", "kw", "op", "name", "num")
        kind = next(k for k, g in zip(kinds, found.groups(), strict=True) if g is not None)
        value = next(g for g in found.groups() if g is not None)
        tokens.append((kind, re.sub(r"\s+", " ", value.upper()) if kind == "kw" else value))
        position = found.end()
    return tokens


def compile_filter(text: str) -> Callable[[dict[str, Any]], bool]:
    """A WQL where-clause as a predicate over a row of properties (case-insensitive names and strings)."""
    tokens = _tokens(text)
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise QueryError("unexpected end")
        position += 1
        return tokens[position - 1]

    def value_of(row: dict[str, Any], name: str) -> Any:
        return next((v for k, v in row.items() if k.casefold() == name.casefold()), None)

    def condition() -> Callable[[dict[str, Any]], bool]:
        kind, value = take()
        if kind == "lp":
            inner = disjunction()
            if take()[0] != "rp":
                raise QueryError(")")
            return inner
        if kind == "kw" and value == "NOT":
            inner_not = condition()
            return lambda row: not inner_not(row)
        if kind != "name":
            raise QueryError(value)
        name = value
        op_kind, op = take()
        if op_kind == "kw" and op == "IS NULL":
            return lambda row: value_of(row, name) is None
        if op_kind == "kw" and op == "IS NOT NULL":
            return lambda row: value_of(row, name) is not None
        literal_kind, literal = take()
        if literal_kind not in ("str", "num"):
            raise QueryError(literal)
        expected = literal[1:-1].replace("''", "'") if literal_kind == "str" else literal
        if op_kind == "kw" and op == "LIKE":
            pattern = "^" + re.escape(expected).replace("%", ".*").replace("_", ".") + "$"
            return lambda row: re.match(pattern, cv.to_string(value_of(row, name)), re.IGNORECASE) is not None
        if op_kind != "op":
            raise QueryError(op)

        def compare(row: dict[str, Any]) -> bool:
            actual = value_of(row, name)
            if actual is None:
                return False
            result = cv.compare(actual, int(expected) if literal_kind == "num" else expected)
            return {
                "=": result == 0,
                "<>": result != 0,
                "!=": result != 0,
                "<": result < 0,
                ">": result > 0,
                "<=": result <= 0,
                ">=": result >= 0,
            }[op]

        return compare

    def conjunction() -> Callable[[dict[str, Any]], bool]:
        parts = [condition()]
        while peek() == ("kw", "AND"):
            take()
            parts.append(condition())
        return lambda row: all(p(row) for p in parts)

    def disjunction() -> Callable[[dict[str, Any]], bool]:
        parts = [conjunction()]
        while peek() == ("kw", "OR"):
            take()
            parts.append(conjunction())
        return lambda row: any(p(row) for p in parts)

    predicate = disjunction()
    if position != len(tokens):
        raise QueryError(tokens[position][1])
    return predicate


@cmdlet(
    "Get-CimInstance",
    module="CimCmdlets",
    source="https://learn.microsoft.com/powershell/module/cimcmdlets/get-ciminstance?view=powershell-5.1",
    type_name=CIM_COMMAND,
    sets=("ClassNameComputerSet",),
    params=[
        P("ClassName", "string", 0, mandatory=("*",)),
        P("Namespace", "string"),
        P("Filter", "string"),
        P("Property", "string[]", aliases=("SelectProperties",)),
    ],
)
def get_cim_instance(call: Call) -> None:
    namespace = _namespace(call.params["Namespace"])
    class_name = call.params["ClassName"]
    classes = _classes(call.machine)
    known_namespaces = {ns for ns, _ in classes} | {CIMV2}
    if namespace not in known_namespaces:
        # cmdlets.md 5.1: 0x8004100e (Invalid namespace), e.g. root\virtualization\v2 without Hyper-V.
        call.fail(
            "Invalid namespace ",
            "HRESULT 0x8004100e",
            "MetadataError",
            exception_type=CIM_EXCEPTION,
            target=f"{call.params['Namespace']}:{class_name}",
        )
    source = classes.get((namespace, class_name.casefold()))
    if source is None:
        # cmdlets.md 5.1 (PowerShell's own CimInstance tests): 0x80041010 Invalid class.
        call.fail(
            "Invalid class ",
            "HRESULT 0x80041010",
            "MetadataError",
            exception_type=CIM_EXCEPTION,
            target=f"{namespace}:{class_name}",
        )
    predicate: Callable[[dict[str, Any]], bool] = lambda row: True  # noqa: E731
    if call.params["Filter"]:
        try:
            predicate = compile_filter(call.params["Filter"])
        except QueryError:
            call.fail(
                "Invalid query ",
                "HRESULT 0x80041017",
                "InvalidArgument",
                exception_type=CIM_EXCEPTION,
                target=call.params["Filter"],
            )
    with call.state.lock:
        rows = source(call.machine)
    canonical = {
        "softwarelicensingproduct": "SoftwareLicensingProduct",
        "win32_operatingsystem": "Win32_OperatingSystem",
        "cim_operatingsystem": "CIM_OperatingSystem",
        "msvm_kvpexchangecomponent": "Msvm_KvpExchangeComponent",
    }[class_name.casefold()]
    for row in rows:
        if predicate(row):
            call.emit(_instance(namespace, canonical, row))
