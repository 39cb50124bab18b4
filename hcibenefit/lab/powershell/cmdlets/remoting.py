"""Invoke-Command: in process, to other computers over WinRM (the second hop), and into VMs (PowerShell Direct).

Sources: cmdlets.md 8.1 (Learn 5.1; PSRemotingCmdlet.cs, VMConnectionInfo,
RemotingErrorIdStrings) and powershell51.md section 8 (output tagging, the error records that reach
-ErrorVariable, the Get-VM trap), section 10.1 (the remote text runs dot-sourced in a fresh runspace).

The second hop: a session opened *from* a node (to another node, or back to itself) carries the
caller's credentials only when the first session's authentication can delegate them (CredSSP, or
Kerberos with delegation). Otherwise WinRM refuses it with "Access is denied" (issue 8, items 3 and 7;
remoting.md section 5 "Double hop").
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

from hcibenefit.lab.machines import GuestMachine, NodeMachine, is_node
from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell.binding import Arg
from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.cmdlets.hyperv import match, node_vms
from hcibenefit.lab.powershell.errors import ErrorRecord, NotEmulated, PSError
from hcibenefit.lab.powershell.runspace import CollectingSink, Runspace, SessionAuth
from hcibenefit.lab.powershell.values import PSDict, PSGuid, PSObject, ScriptBlock, SecureString
from hcibenefit.lab.state import VM

TRANSPORT_EXCEPTION = "System.Management.Automation.Remoting.PSRemotingTransportException"
DIRECT_EXCEPTION = "System.Management.Automation.Remoting.PSDirectException"
HV_GET_VM = "Microsoft.HyperV.PowerShell.Commands.GetVM"
ACCESS_DENIED = (
    "Connecting to remote server {0} failed with the following error message : Access is denied. For more "
    "information, see the about_Remote_Troubleshooting Help topic."
)
UNREACHABLE = (
    "Connecting to remote server {0} failed with the following error message : WinRM cannot complete the operation. "
    "Verify that the specified computer name is valid, that the computer is accessible over the network, and that a "
    "firewall exception for the WinRM service is enabled and allows access from this computer. By default, the WinRM "
    "firewall exception for public profiles limits access to remote computers within the same local subnet. For more "
    "information, see the about_Remote_Troubleshooting Help topic."
)
NOT_FOUND = (
    "Connecting to remote server {0} failed with the following error message : WinRM cannot process the request. "
    "The following error occurred while using Kerberos authentication: Cannot find the computer {0}. Verify that the "
    "computer exists on the network and that the name provided is spelled correctly. For more information, see the "
    "about_Remote_Troubleshooting Help topic."
)
# RemotingErrorIdStrings (cmdlets.md 8.1, powershell51.md 8.1/8.3).
VM_NAME_NOT_SINGLE = "The input VMName {0} does not resolve to a single virtual machine."
VM_ID_NOT_SINGLE = "The input VMId {0} does not resolve to a single virtual machine."
VM_NOT_RUNNING = "The virtual machine {0} is not in running state."
VM_CONNECT_FAILED = "A failure occurred while attempting to connect to the target virtual machine."
CREDENTIAL_INVALID = "The credential is invalid."


def _hop_record(message: str, reason: str, suffix: str, computer: str) -> ErrorRecord:
    return ErrorRecord(
        message,
        f"{reason},{suffix}",
        "OpenError",
        exception_type=TRANSPORT_EXCEPTION,
        target=computer,
        details=f"[{computer}] {message}",
    )


def connect(runspace: Runspace, computer: str, *, suffix: str) -> NodeMachine | ErrorRecord:
    """A WinRM session from this node to `computer` (another node, or this one through loopback)."""
    machine = runspace.machine
    assert isinstance(machine, NodeMachine)
    state, here = machine.state, machine.node
    name = computer.casefold().split(".")[0]
    target = here if name in ("localhost", "", "127", here.name.casefold()) else state.nodes.get(name)
    if target is None:
        return _hop_record(NOT_FOUND.format(computer), "ComputerNotFound", suffix, computer)
    if state.served_clusters is not None and target.cluster not in state.served_clusters:
        # Another process of `lab serve --processes N` serves that node: this copy of it is stale, and an
        # effect here would be lost. Our scripts hop only within a cluster, which stays in one process.
        raise NotEmulated(
            f"a session from {here.name} to {target.name} in another cluster: this lab serves that cluster "
            "in another process (lab serve --processes 1 serves hops between clusters)"
        )
    if not runspace.auth.can_delegate:
        # The second hop: the first session's credentials cannot be presented again (Assumption for the
        # loopback case, which issue 8 item 7 describes: from inside a WinRM session it is a hop too).
        return _hop_record(ACCESS_DENIED.format(computer), "AccessDenied", suffix, computer)
    if target.faults.down:
        return _hop_record(UNREACHABLE.format(computer), "WinRMOperationTimeout", suffix, computer)
    return NodeMachine(state, target, machine.secrets)


def run_in(
    caller: Runspace,
    machine: NodeMachine | GuestMachine,
    block: ScriptBlock,
    args: list[Any],
    *,
    auth: SessionAuth,
) -> tuple[list[Any], CollectingSink]:
    """Run a script block's text in a fresh runspace on `machine`, as AddScript + AddArgument would."""
    from hcibenefit.lab.powershell.evaluator import Interpreter

    runspace = Runspace(machine, host_ui=False, auth=auth, computer_name=machine.name)
    sink = CollectingSink()
    interpreter = Interpreter(runspace, sink)
    outputs: list[Any] = []
    try:
        outputs = interpreter.run_script(block.block, [Arg(None, a) for a in args])
    except PSError as exc:
        # A terminating error on the remote side arrives as a non-terminating one (powershell51.md 8.3).
        outputs = list(getattr(exc, "output", []))
        sink.write_error_record(exc.record)
    return outputs, sink


def deserialize(value: Any) -> Any:
    """What a value looks like after CLIXML (powershell51.md 8.4): dictionaries lose [ordered], objects
    become property bags named Deserialized.<type>, primitives stay live."""
    if isinstance(value, PSDict):
        return PSDict(((k, deserialize(v)) for k, v in value.items()), ordered=False)
    if isinstance(value, list):
        return [deserialize(v) for v in value]
    if isinstance(value, PSObject):
        if value.base is not None:
            return deserialize(value.base)
        names = value.type_names if value.is_custom else [f"Deserialized.{t}" for t in value.type_names]
        return PSObject(
            names, [(k, deserialize(v)) for k, v in value.properties()], string=cv.to_string(value)
        )
    return value


def deliver(call: Call, computer: str, outputs: list[Any], sink: CollectingSink) -> None:
    """Remote output tagged with where it came from; remote errors as RemotingErrorRecords."""
    runspace_id = PSGuid(uuid.uuid4())
    for record in sink.errors:
        remote = ErrorRecord(
            record.message,
            record.error_id,
            record.category.name,
            exception_object=record.exception,
            target=record.target,
            command=record.command,
            origin=computer,
        )
        call.error_record(remote)
    for message in sink.warnings:
        call.interp.sink.write_warning(message)
    for message in sink.verbose:
        call.interp.sink.write_verbose(message)
    for activity, status, percent in sink.progress:
        call.interp.sink.write_progress(activity, status, percent)
    show = not call.params.get("HideComputerName")
    for value in outputs:
        props = [("PSComputerName", computer), ("RunspaceId", runspace_id), ("PSShowComputerName", show)]
        call.emit(PSObject("System.Object", props, base=deserialize(value)))


def _password(credential: Any) -> str | None:
    secure = credential.get("Password") if isinstance(credential, PSObject) else None
    return secure.reveal() if isinstance(secure, SecureString) else None


def _resolve_vms(call: Call) -> list[VM]:
    """BeginProcessing of -VMName/-VMId: `Get-VM` per entry in the caller's scope (powershell51.md 8.1)."""
    by_id = call.set_name == "VMId"
    entries = call.params["VMId"] if by_id else call.params["VMName"]
    resolved: list[VM] = []
    for entry in entries:
        if by_id:
            found = [vm for vm in node_vms(call) if vm.id == entry.text]
            missing = [] if found else [entry.text]
        else:
            found, missing = match([entry], node_vms(call), lambda v: v.name)
        for name in missing:
            # The trap: Get-VM's own error runs in the caller's scope and obeys its $ErrorActionPreference,
            # not Invoke-Command's -ErrorAction; it goes to the error stream, not to -ErrorVariable.
            what = "ID" if by_id else "name"
            record = ErrorRecord(
                f'Hyper-V was unable to find a virtual machine with {what} "{name}".',
                "InvalidParameter",
                "InvalidArgument",
                exception_type="Microsoft.HyperV.PowerShell.VirtualizationException",
                target=name,
                command=HV_GET_VM,
            )
            preference = cv.to_string(call.interp.preference(call.scope, "ErrorActionPreference"))
            if preference == "Stop":
                raise PSError(record, "stop")
            if preference != "Ignore":
                call.runspace.add_error(record)
            if preference not in ("SilentlyContinue", "Ignore"):
                call.interp.sink.write_error_record(record)
        if len(found) != 1:
            text = VM_ID_NOT_SINGLE.format(entry.text) if by_id else VM_NAME_NOT_SINGLE.format(entry)
            call.error(
                text,
                "InvalidVMIdNotSingle" if by_id else "InvalidVMNameNotSingle",
                "InvalidArgument",
                exception_type="System.ArgumentException",
            )
            continue
        vm = found[0]
        if vm.state != "Running":
            call.error(
                VM_NOT_RUNNING.format(vm.name),
                "InvalidVMState",
                "InvalidArgument",
                exception_type="System.ArgumentException",
            )
            continue
        resolved.append(vm)
    return resolved


def _direct(call: Call) -> None:
    machine = call.machine
    assert isinstance(machine, NodeMachine)
    block: ScriptBlock = call.params["ScriptBlock"]
    args = list(call.params["ArgumentList"] or [])
    with call.state.lock:
        targets = _resolve_vms(call)
    secrets = machine.secrets
    expected = getattr(secrets, "guest_password", None)
    given = _password(call.params["Credential"])
    for vm in targets:
        if vm.guest.powershell_direct == "fail":
            record = ErrorRecord(
                VM_CONNECT_FAILED,
                "PSSessionStateBroken",
                "OpenError",
                exception_type=DIRECT_EXCEPTION,
                target=vm.name,
                details=f"[{vm.name}] {VM_CONNECT_FAILED}",
            )
            call.error_record(record)
            continue
        bad = vm.guest.powershell_direct == "bad-credentials" or expected is None or given is None
        if bad or not hmac.compare_digest(str(expected).encode(), str(given).encode()):
            # The session breaks; PreProcessStreamObject swaps in the inner PSDirectException (8.3).
            call.error_record(
                ErrorRecord(
                    CREDENTIAL_INVALID,
                    "PSSessionStateBroken",
                    "OpenError",
                    exception_type=DIRECT_EXCEPTION,
                    target=vm.name,
                )
            )
            continue
        guest = GuestMachine(machine.state, vm, secrets)
        outputs, sink = run_in(
            call.runspace, guest, block, args, auth=SessionAuth("direct", False, "Administrator")
        )
        deliver(call, vm.name, outputs, sink)


def _computers(call: Call) -> None:
    block: ScriptBlock = call.params["ScriptBlock"]
    args = list(call.params["ArgumentList"] or [])
    for computer in call.params["ComputerName"] or ["localhost"]:
        target = connect(call.runspace, computer, suffix="PSSessionStateBroken")
        if isinstance(target, ErrorRecord):
            call.error_record(target)
            continue
        # Delegated credentials flow on (CredSSP hands the password itself to the next server).
        outputs, sink = run_in(call.runspace, target, block, args, auth=call.runspace.auth)
        deliver(call, computer, outputs, sink)


@cmdlet(
    "Invoke-Command",
    module="Microsoft.PowerShell.Core",
    source="https://learn.microsoft.com/powershell/module/microsoft.powershell.core/invoke-command?view=powershell-5.1",
    type_name="Microsoft.PowerShell.Commands.InvokeCommandCommand",
    sets=("InProcess", "ComputerName", "VMName", "VMId"),
    params=[
        P(
            "ScriptBlock",
            "scriptblock",
            {"InProcess": 0, "ComputerName": 1, "VMName": 0, "VMId": 1},
            aliases=("Command",),
            mandatory=("*",),
        ),
        P("ComputerName", "string[]", {"ComputerName": 0}, sets=("ComputerName",), aliases=("Cn",)),
        P("VMName", "string[]", sets=("VMName",), mandatory=("*",)),
        P("VMId", "guid[]", {"VMId": 0}, sets=("VMId",), aliases=("VMGuid",), mandatory=("*",)),
        P("Credential", "credential", sets=("ComputerName", "VMName", "VMId"), mandatory=("VMName", "VMId")),
        P("ArgumentList", "object[]", aliases=("Args",)),
        P("ThrottleLimit", "int", sets=("ComputerName", "VMName", "VMId")),
        P("HideComputerName", "switch", sets=("ComputerName", "VMName", "VMId"), aliases=("HCN",)),
        P("NoNewScope", "switch", sets=("InProcess",)),
        P("InputObject", "object", pipeline=True),
    ],
)
def invoke_command(call: Call) -> None:
    if call.set_name in ("VMName", "VMId"):
        if not is_node(call.machine):
            from hcibenefit.lab.powershell.errors import NotEmulated

            raise NotEmulated("PowerShell Direct from a guest")
        _direct(call)
    elif call.set_name == "ComputerName":
        if not is_node(call.machine):
            from hcibenefit.lab.powershell.errors import NotEmulated

            raise NotEmulated("Invoke-Command -ComputerName from a guest")
        _computers(call)
    else:
        args = [Arg(None, a) for a in call.params["ArgumentList"] or []]
        block = call.params["ScriptBlock"]
        for value in call.interp.invoke_block(
            block, call.scope, args, new_scope=not call.params["NoNewScope"]
        ):
            call.emit(value)
