"""Microsoft.PowerShell.Core / Utility / Management cmdlets (Windows PowerShell 5.1).

Sources: cmdlets.md sections 7-8 (Learn 5.1 pages) and powershell51.md sections 1, 3
(ConvertTo-Json, pipeline behaviour of ForEach-Object, Where-Object, Select-Object).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hcibenefit.lab.machines import GuestMachine, NodeMachine
from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.convert import to_string
from hcibenefit.lab.powershell.evaluator import enumerate_value
from hcibenefit.lab.powershell.json51 import convert_to_json
from hcibenefit.lab.powershell.members import get_member
from hcibenefit.lab.powershell.values import (
    MISSING,
    ArrayList,
    PSDateTime,
    PSDict,
    PSObject,
    PSVersion,
    ScriptBlock,
    SecureString,
    credential,
)

CORE = "https://learn.microsoft.com/powershell/module/microsoft.powershell.core/{}?view=powershell-5.1"
UTILITY = "https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/{}?view=powershell-5.1"
CMD = "Microsoft.PowerShell.Commands."


def _input(call: Call) -> list[Any]:
    """The items to process: pipeline input, else -InputObject as one item (not enumerated)."""
    if call.input is not None:
        return call.input
    if "InputObject" in call.given:
        return [call.params["InputObject"]]
    return []


@cmdlet(
    "ForEach-Object",
    module="Microsoft.PowerShell.Core",
    source=CORE.format("foreach-object", "3") + "; powershell51.md section 3",
    type_name=f"{CMD}ForEachObjectCommand",
    sets=("ScriptBlockSet", "PropertyAndMethodSet"),
    collects_input=True,
    params=[
        P("Process", "scriptblock[]", 0, sets=("ScriptBlockSet",), mandatory=("*",)),
        P("Begin", "scriptblock", sets=("ScriptBlockSet",)),
        P("End", "scriptblock", sets=("ScriptBlockSet",)),
        P("MemberName", "string", 0, sets=("PropertyAndMethodSet",), mandatory=("*",)),
        P("InputObject", "object", pipeline=True),
    ],
)
def foreach_object(call: Call) -> None:
    interp, scope = call.interp, call.scope
    items = _input(call) if (call.input is not None or "InputObject" in call.given) else [None]
    if call.set_name == "PropertyAndMethodSet":
        for item in items:
            value = get_member(item, call.params["MemberName"])
            call.emit(None if value is MISSING else value)
        return
    blocks: list[ScriptBlock] = call.params["Process"]
    begin, end = call.params["Begin"], call.params["End"]
    if len(blocks) > 1 and begin is None:
        begin, blocks = blocks[0], blocks[1:]
    if len(blocks) > 1 and end is None:
        end, blocks = blocks[-1], blocks[:-1]
    # The blocks run in the caller's scope ("dot-sourced"), $_ bound to each input object.
    if begin is not None:
        for value in interp.invoke_block(begin, scope, new_scope=False):
            call.emit(value)
    for item in items:
        for block in blocks:
            for value in interp.invoke_block(block, scope, dollar_underscore=item, new_scope=False):
                call.emit(value)
    if end is not None:
        for value in interp.invoke_block(end, scope, new_scope=False):
            call.emit(value)


@cmdlet(
    "Where-Object",
    module="Microsoft.PowerShell.Core",
    source=CORE.format("where-object", "2"),
    type_name=f"{CMD}WhereObjectCommand",
    sets=("ScriptBlockSet",),
    collects_input=True,
    params=[P("FilterScript", "scriptblock", 0, mandatory=("*",)), P("InputObject", "object", pipeline=True)],
)
def where_object(call: Call) -> None:
    for item in _input(call):
        result = call.interp.invoke_block(
            call.params["FilterScript"], call.scope, dollar_underscore=item, new_scope=False
        )
        if cv.to_bool(result[0] if len(result) == 1 else result):
            call.emit(item)


@cmdlet(
    "Out-Null",
    module="Microsoft.PowerShell.Core",
    source=CORE.format("out-null", "5"),
    type_name=f"{CMD}OutNullCommand",
    collects_input=True,
    params=[P("InputObject", "object", pipeline=True)],
)
def out_null(call: Call) -> None:
    return None


@cmdlet(
    "Select-Object",
    module="Microsoft.PowerShell.Utility",
    source=UTILITY.format("select-object", "4") + "; powershell51.md section 3",
    type_name=f"{CMD}SelectObjectCommand",
    sets=("DefaultParameter",),
    collects_input=True,
    params=[
        P("Property", "string[]", 0),
        P("ExpandProperty", "string"),
        P("First", "int"),
        P("Last", "int"),
        P("Skip", "int"),
        P("Unique", "switch"),
        P("InputObject", "object", pipeline=True),
    ],
)
def select_object(call: Call) -> None:
    items = _input(call)
    skip = call.params["Skip"] or 0
    items = items[skip:]
    if call.params["First"] is not None:
        items = items[: call.params["First"]]
    if call.params["Last"] is not None:
        items = items[-call.params["Last"] :] if call.params["Last"] else []
    if call.params["Unique"]:
        unique: list[Any] = []
        for item in items:
            if not any(cv.equals(item, seen, case_sensitive=True) for seen in unique):
                unique.append(item)
        items = unique
    expand = call.params["ExpandProperty"]
    properties = call.params["Property"]
    for item in items:
        if properties:
            selected = PSObject(props=[(name, _value_or_none(item, name)) for name in properties])
            if expand is None:
                call.emit(selected)
                continue
        if expand is not None:
            value = get_member(item, expand)
            if value is MISSING:
                # powershell51.md section 3: non-terminating, TargetObject = the input.
                call.error(
                    f'Property "{expand}" cannot be found.',
                    "ExpandPropertyNotFound",
                    "InvalidArgument",
                    target=item,
                )
                continue
            for element in enumerate_value(value) if isinstance(value, list) else [value]:
                if element is not None:
                    call.emit(element)
            continue
        call.emit(item)


def _value_or_none(item: Any, name: str) -> Any:
    value = get_member(item, name)
    return None if value is MISSING else value


class _SortKey:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _SortKey) -> bool:
        try:
            return cv.compare(self.value, other.value) < 0
        except Exception:
            return cv.to_string(self.value).casefold() < cv.to_string(other.value).casefold()


@cmdlet(
    "Sort-Object",
    module="Microsoft.PowerShell.Utility",
    source=UTILITY.format("sort-object", "5"),
    type_name=f"{CMD}SortObjectCommand",
    collects_input=True,
    params=[
        P("Property", "string[]", 0),
        P("Descending", "switch"),
        P("Unique", "switch"),
        P("CaseSensitive", "switch"),
        P("InputObject", "object", pipeline=True),
    ],
)
def sort_object(call: Call) -> None:
    items = _input(call)
    names = call.params["Property"]

    def key(item: Any) -> tuple[_SortKey, ...]:
        if not names:
            return (_SortKey(item),)
        return tuple(_SortKey(_value_or_none(item, n)) for n in names)

    ordered = sorted(items, key=key, reverse=bool(call.params["Descending"]))
    for item in ordered:
        call.emit(item)


@cmdlet(
    "ConvertTo-Json",
    module="Microsoft.PowerShell.Utility",
    source=UTILITY.format("convertto-json", "3") + "; powershell51.md section 1 ([SD:CTJ], [NET:JSS])",
    type_name=f"{CMD}ConvertToJsonCommand",
    collects_input=True,
    params=[
        P("InputObject", "object", 0, mandatory=("*",), pipeline=True),
        P("Depth", "int"),
        P("Compress", "switch"),
    ],
)
def convert_to_json_cmdlet(call: Call) -> None:
    depth = call.params["Depth"]
    if depth is None:
        depth = 2
    elif depth < 1:
        # [ValidateRange(1, Int32.MaxValue)] in 5.1 (powershell51.md 1.1).
        call.fail(
            f"Cannot validate argument on parameter 'Depth'. The {depth} argument is less than the minimum allowed "
            "range of 1. Supply an argument that is greater than or equal to 1 and then try the command again.",
            "ParameterArgumentValidationError",
            "InvalidData",
            exception_type="System.Management.Automation.ParameterBindingException",
        )
    if call.input is not None:
        items = [i for i in call.input if i is not None]
        if not items:
            return
        value: Any = items[0] if len(items) == 1 else items
    else:
        value = call.params["InputObject"]
        if value is None:
            return  # 5.1 writes nothing for $null (powershell51.md 1.1)
    call.emit(convert_to_json(value, depth=depth, compress=bool(call.params["Compress"])))


@cmdlet(
    "New-Object",
    module="Microsoft.PowerShell.Utility",
    source=UTILITY.format("new-object", "7"),
    type_name=f"{CMD}NewObjectCommand",
    sets=("Net",),
    params=[P("TypeName", "string", 0, mandatory=("*",)), P("ArgumentList", "object[]", 1)],
)
def new_object(call: Call) -> None:
    type_name = call.params["TypeName"].casefold().removeprefix("system.")
    if type_name == "collections.arraylist":
        call.emit(ArrayList())
    elif type_name == "collections.hashtable":
        call.emit(PSDict())
    elif type_name == "management.automation.pscredential":
        # New-Object PSCredential -ArgumentList user, [securestring] (arc-run.ps1, guest credentials).
        args = call.params["ArgumentList"] or []
        if len(args) != 2 or not isinstance(args[1], SecureString):
            call.fail(
                f'Cannot find an overload for "PSCredential" and the argument count: "{len(args)}".',
                "ConstructorInvokedThrowException",
                "InvalidOperation",
                exception_type="System.Management.Automation.MethodException",
            )
        call.emit(credential(to_string(args[0]), args[1].reveal()))
    else:
        from hcibenefit.lab.powershell.errors import NotEmulated

        raise NotEmulated(f"New-Object {call.params['TypeName']}")


@cmdlet(
    "Get-Date",
    module="Microsoft.PowerShell.Utility",
    source=UTILITY.format("get-date", "2"),
    type_name=f"{CMD}GetDateCommand",
    sets=("net",),
    params=[P("Date", "datetime", 0, aliases=("LastWriteTime",), pipeline=True), P("Format", "string")],
)
def get_date(call: Call) -> None:
    value = call.params["Date"] or PSDateTime(call.machine.clock.now_datetime(), "Local")
    if call.params["Format"] is not None:
        call.emit(cv.format_datetime(value, call.params["Format"]))
    else:
        call.emit(value)


@cmdlet(
    "Start-Sleep",
    module="Microsoft.PowerShell.Utility",
    source=UTILITY.format("start-sleep", "6") + " (5.1: -Seconds is Int32)",
    type_name=f"{CMD}StartSleepCommand",
    sets=("Seconds", "Milliseconds"),
    params=[
        P("Seconds", "int", 0, sets=("Seconds",), mandatory=("*",), pipeline=True),
        P("Milliseconds", "int", sets=("Milliseconds",), mandatory=("*",)),
    ],
)
def start_sleep(call: Call) -> None:
    seconds = call.params["Seconds"] if call.set_name == "Seconds" else call.params["Milliseconds"] / 1000
    # The lab's clock moves instead of the thread sleeping (state.LabClock).
    call.machine.clock.sleep(float(seconds))


@cmdlet(
    "Get-Module",
    module="Microsoft.PowerShell.Core",
    source=CORE.format("get-module", "4"),
    type_name=f"{CMD}GetModuleCommand",
    sets=("Loaded", "Available"),
    params=[
        P("Name", "string[]", 0, pipeline=True),
        P("ListAvailable", "switch", sets=("Available",), mandatory=("*",)),
        P("All", "switch"),
    ],
)
def get_module(call: Call) -> None:
    if not call.params["ListAvailable"]:
        return  # a fresh remote runspace has loaded nothing yet; modules load on first use
    installed: list[tuple[str, str]] = []
    machine = call.machine
    if isinstance(machine, NodeMachine):
        installed += [("AzureStackHCI", "1.0.0.0"), ("Hyper-V", "2.0.0.0"), ("FailoverClusters", "2.0.0.0")]
        if machine.node.module is not None:
            installed.append(("Az.StackHCI", machine.node.module))
    installed += [
        ("NetTCPIP", "1.0.0.0"),
        ("NetSecurity", "2.0.0.0"),
        ("ScheduledTasks", "1.0.0.0"),
        ("CimCmdlets", "1.0.0.0"),
    ]
    names = call.params["Name"]
    for name, version in installed:
        if names is None or any(cv.wildcard_match(n, name) for n in names):
            base = f"C:\\Program Files\\WindowsPowerShell\\Modules\\{name}\\{version}"
            call.emit(
                PSObject(
                    "System.Management.Automation.PSModuleInfo",
                    {
                        "Name": name,
                        "Version": PSVersion(version),
                        "Path": f"{base}\\{name}.psd1",
                        "ModuleBase": base,
                    },
                    string=name,
                )
            )


_CURRENT_VERSION = "HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
# The AVD agent's key (Azure Virtual Desktop agent troubleshooting: IsRegistered 1 once registered, the
# registration token cleared) and W32Time's parameters (Windows Time service tools and settings: Type).
_RD_INFRA_AGENT = "HKLM:\\SOFTWARE\\Microsoft\\RDInfraAgent"
_W32TIME_PARAMETERS = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\W32Time\\Parameters"


def _registry(machine: Any) -> dict[str, dict[str, Any]]:
    if isinstance(machine, GuestMachine):
        from hcibenefit.lab.guestos import build_of, display_version_of, ubr_of

        vm = machine.vm
        keys: dict[str, dict[str, Any]] = {
            _CURRENT_VERSION.casefold(): {
                "EditionID": vm.edition,
                "ProductName": vm.os,
                "CurrentBuild": build_of(vm.os),
                "UBR": ubr_of(vm),
                "DisplayVersion": display_version_of(vm.os),
                "InstallationType": "Client" if "Windows 1" in vm.os else "Server",
            },
            _W32TIME_PARAMETERS.casefold(): {
                "Type": vm.guest.time_source,
                # Assumption: the NtpServer value a domain member keeps whatever its Type (it is used with NTP).
                "NtpServer": "time.windows.com,0x9",
            },
        }
        if vm.guest.avd_agent != "missing":
            keys[_RD_INFRA_AGENT.casefold()] = {
                "IsRegistered": 1 if vm.guest.avd_agent == "registered" else 0,
                "RegistrationToken": "" if vm.guest.avd_agent == "registered" else "expired",
            }
        return keys
    node = machine.node
    cluster = machine.state.clusters[node.cluster]
    return {
        _CURRENT_VERSION.casefold(): {
            # Assumption: Azure Local reports this EditionID and product name.
            "EditionID": "ServerAzureStackHCICor",
            "ProductName": "Azure Stack HCI",
            "CurrentBuild": cluster.build,
            "DisplayVersion": cluster.version,
            "InstallationType": "Server Core",
        }
    }


@cmdlet(
    "Get-ItemProperty",
    module="Microsoft.PowerShell.Management",
    source="https://learn.microsoft.com/powershell/module/microsoft.powershell.management/get-itemproperty?view=powershell-5.1",
    type_name=f"{CMD}GetItemPropertyCommand",
    sets=("Path",),
    params=[P("Path", "string[]", 0, mandatory=("*",), pipeline=True), P("Name", "string[]", 1)],
)
def get_item_property(call: Call) -> None:
    keys = _registry(call.machine)
    for path in call.params["Path"]:
        values = keys.get(path.rstrip("\\").casefold().replace("hkey_local_machine\\", "hklm:\\"))
        if values is None:
            call.error(
                f"Cannot find path '{path}' because it does not exist.",
                "PathNotFound",
                "ObjectNotFound",
                exception_type="System.Management.Automation.ItemNotFoundException",
                target=path,
            )
            continue
        wanted = call.params["Name"]
        selected = [
            (k, v)
            for k, v in values.items()
            if wanted is None or any(cv.wildcard_match(w, k) for w in wanted)
        ]
        provider = f"Microsoft.PowerShell.Core\\Registry::{path.replace('HKLM:', 'HKEY_LOCAL_MACHINE')}"
        call.emit(
            PSObject(
                props=[
                    *selected,
                    ("PSPath", provider),
                    ("PSChildName", path.rsplit("\\", 1)[-1]),
                    ("PSProvider", "Registry"),
                ]
            )
        )


def now_local(call: Call) -> PSDateTime:
    return PSDateTime(call.machine.clock.now_datetime(), "Local")


def to_datetime(value: dt.datetime | None, kind: str = "Local") -> PSDateTime | None:
    return None if value is None else PSDateTime(value, kind)
