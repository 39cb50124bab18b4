"""Az.StackHCI's attestation functions (Gallery module, script functions), step by step.

Source: cmdlets.md 9.7-9.12, read from Azure/azure-powershell
src/StackHCI/StackHCI.Autorest/custom/stackhci.ps1 (Az.StackHCI 2.6.0 era). What every function inherits
(9.7.1), reproduced here:
- the module runs with `$ErrorActionPreference = 'Stop'`; failures are logged through
  `$Host.UI.WriteErrorLine` (nothing reaches a client whose pool has no host UI) and re-thrown;
- `Get-SetupLoggingDetails` opens a PSSession to the local machine first, even for -Local forms: from
  inside a WinRM session that is a second hop, refused unless the session's authentication can delegate;
  the session is never removed;
- `Confirm-UserAcknowledgmentToUpgradeOS` (ConfirmImpact High) prompts on builds <= 20349 unless
  $ConfirmPreference is None (Enable/Add/Remove set it with -Force; -Confirm:$false does too; Get has
  neither). With no host UI the prompt throws HostException.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from hcibenefit.lab.machines import NodeMachine
from hcibenefit.lab.powershell.cmdlets.azurestackhci import (
    LEGACY,
    NODE_STATUS,
    NOT_REGISTERED,
    attestation_object,
    renew,
)
from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.cmdlets.hyperv import match, vms_from_objects
from hcibenefit.lab.powershell.cmdlets.remoting import connect
from hcibenefit.lab.powershell.errors import ErrorRecord, PSError, method_exception
from hcibenefit.lab.powershell.runspace import CONFIRM_LEVELS, confirm_level, host_exception
from hcibenefit.lab.powershell.values import MISSING, EnumType, PSObject
from hcibenefit.lab.state import (
    EMPTY_GUID,
    FIREWALL_RULES,
    GUEST_NIC,
    HOST_IMDS_ADDRESS,
    HOST_SWITCH,
    SWITCH_NOTES,
    VM,
    Nic,
    Node,
    Switch,
    stable_id,
)

SOURCE = "https://learn.microsoft.com/powershell/module/az.stackhci/{}; Azure/azure-powershell src/StackHCI/StackHCI.Autorest/custom/stackhci.ps1"
VM_STATUS = EnumType("VMAttestationStatus", {"Unknown": 0, "Connected": 1, "Disconnected": 2})
VERSION = EnumType("AttestationVersion", {"Unknown": 0, "V1": 1, "V2": 2})
NODES_OFFLINE = (
    "One or more servers in your cluster are offline. Check that all your servers are up and then try again."
)
IMDS_NOT_ACTIVE = (
    "The IMDS Service on {0} needs to be activated. This is required before guests can be configured. "
    "Run Enable-AzStackHCIAttestation cmdlet."
)
LEGACY_OFF = (
    "The command {0} is required only for Attestation with Legacy OS Support (V1). "
    "Legacy OS Support for IMDS Attestation needs to be enabled."
)
NOT_VALIDATED = "Did not validate host configuration"
ENABLE_QUESTION = (
    "Enabling Attestation is only required when using Attestation with Legacy OS Support (V1). Do you want to "
    "continue to enable Attestation with Legacy OS Support?"
)
UPGRADE_OS = (
    "Your system is running Azure Local, version 22H2, and will no longer receive security updates and support after "
    "May 31, 2025. To continue receiving security updates and support, you must upgrade your operating system. Visit "
    "https://aka.ms/azlocal-os-upgrade to learn more."
)
LAST_22H2_BUILD = 20349


def has_module(machine: Any) -> bool:
    return isinstance(machine, NodeMachine) and machine.node.module is not None


def _machine(call: Call) -> NodeMachine:
    machine = call.machine
    assert isinstance(machine, NodeMachine)
    return machine


def _log_error(call: Call, text: str) -> None:
    """Write-ErrorLog: host UI only (vanishes in a pool opened without a host)."""
    call.runspace.host.ui.ps_call("WriteErrorLine", [text])


def _throw(call: Call, message: str) -> NoReturn:
    """`throw "text"` inside the module: the id is the text itself (cmdlets.md G4)."""
    raise PSError(ErrorRecord(message, message, "OperationStopped", target=message), "throw")


def _rethrow(call: Call, record: ErrorRecord, log: str) -> NoReturn:
    _log_error(call, f"{log}\r\n{record.message}")
    raise PSError(record, "throw")


@dataclass
class _Context:
    machine: NodeMachine
    confirm: int

    @property
    def node(self) -> Node:
        return self.machine.node


def _confirm(call: Call, *, force_sets_none: bool) -> int:
    if force_sets_none and call.params.get("Force"):
        return CONFIRM_LEVELS["none"]
    given = call.common.get("Confirm")
    if given is False:
        return CONFIRM_LEVELS["none"]
    if given is True:
        return CONFIRM_LEVELS["low"]
    return confirm_level(call.runspace.global_scope.vars.get("confirmpreference"))


def _begin(call: Call, function: str, *, force_sets_none: bool) -> _Context:
    """Get-SetupLoggingDetails (loopback PSSession) and Confirm-UserAcknowledgmentToUpgradeOS."""
    machine = _machine(call)
    level = _confirm(call, force_sets_none=force_sets_none)
    session = connect(call.runspace, "localhost", suffix="PSSessionOpenFailed")
    if isinstance(session, ErrorRecord):
        _rethrow(call, session, f"Exception occurred in {function}")
    with call.state.lock:
        machine.node.sessions.append(f"{function} loopback")  # never removed by the module
    if int(machine.cluster.build) <= LAST_22H2_BUILD and level != CONFIRM_LEVELS["none"]:
        # ShouldProcess('', '', $UpgradeOSMessage) in an advanced function, ConfirmImpact High: it asks
        # whenever $ConfirmPreference is not None, and a host without UI throws (powershell51.md 7.2).
        error = method_exception("ShouldProcess", 3, host_exception(""))
        _rethrow(call, error.record, f"Exception occurred in {function}: {UPGRADE_OS}")
    return _Context(machine, level)


def _should_continue(call: Call, function: str, question: str) -> None:
    """$PSCmdlet.ShouldContinue always asks; with no host UI it throws (powershell51.md 7.2)."""
    error = method_exception("ShouldContinue", 2, host_exception(question))
    _rethrow(call, error.record, f"Exception occurred in {function}")


def _legacy_enabled(call: Call, node: Node) -> tuple[bool, bool]:
    """(V2 supported, legacy enabled): IsAttestationV2Supported / IsAttestedDataLegacyOsSupportEnabled."""
    v2 = call.state.clusters[node.cluster].supports_v2
    return v2, (node.legacy_os_support if v2 else node.attestation == "Active")


def _vm_result(name: str, host: str, status: str, versions: list[str] | None = None) -> PSObject:
    props: list[tuple[str, Any]] = [("Name", name), ("AttestationHost", host), ("Status", VM_STATUS(status))]
    if versions is not None:
        props.append(("SupportedVersions", [VERSION(v) for v in versions]))
    return PSObject(props=props)


def _resolve_vms(call: Call, node: Node, *, all_param: str) -> list[VM]:
    vms = sorted(call.state.vms_on(node.name), key=lambda v: v.name.casefold())
    if call.params.get(all_param):
        return vms if all_param == "AddAll" else [vm for vm in vms if vm.imds_nics()]
    if call.params.get("VM") is not None:
        return vms_from_objects(call, call.params["VM"])
    found, missing = match(call.params["VMName"], vms, lambda v: v.name)
    if missing:
        # `Get-VM <names>` under the module's Stop: its error is re-thrown and nothing is configured.
        raise PSError(
            ErrorRecord(
                f'Hyper-V was unable to find a virtual machine with name "{missing[0]}".',
                "InvalidParameter",
                "InvalidArgument",
                exception_type="Microsoft.HyperV.PowerShell.VirtualizationException",
                target=missing[0],
                command="Microsoft.HyperV.PowerShell.Commands.GetVM",
            ),
            "throw",
        )
    return found


# --- Get-AzStackHCIVMAttestation -------------------------------------------------------------------------


@cmdlet(
    "Get-AzStackHCIVMAttestation",
    module="Az.StackHCI",
    source=SOURCE.format("get-azstackhcivmattestation", "12"),
    available=has_module,
    params=[P("Local", "switch")],
)
def get_az_stack_hci_vm_attestation(call: Call) -> None:
    context = _begin(call, "Get-AzStackHCIVMAttestation", force_sets_none=False)
    local = context.node
    results: list[PSObject] = []
    with call.state.lock:
        v2, legacy = _legacy_enabled(call, local)  # computed on the local node, applied to every node
        nodes = (
            [local]
            if call.params["Local"]
            else [call.state.node(n) for n in call.state.clusters[local.cluster].nodes]
        )
    for node in nodes:
        host = node.name.upper()
        if node is not local:
            session = connect(call.runspace, node.name, suffix="PSSessionStateBroken")
            if isinstance(session, ErrorRecord):
                # A per-node failure is logged (with the node name variable empty) and swallowed.
                _log_error(call, "Exception occurred when querying cluster node ")
                continue
        with call.state.lock:
            vms = sorted(call.state.vms_on(node.name), key=lambda v: v.name.casefold())
            v1_names = [vm.name for vm in vms for _ in vm.imds_nics()] if legacy else []
            v2_names = [vm.name for vm in vms if vm.gsi] if v2 else []
        for name in v1_names:
            results.append(_vm_result(name, host, "Connected", ["V1", "V2"] if name in v2_names else ["V1"]))
        for name in v2_names:
            if name not in v1_names:
                results.append(_vm_result(name, host, "Connected", ["V2"]))
    for result in results:
        call.emit(result)


# --- Add / Remove ------------------------------------------------------------------------------------------


def _configure_guest_nic(call: Call, vm: VM, switch: Switch) -> None:
    """Add-VMDevicesForImds (9.7.1), with its cleanup that cannot work (Remove-VMNetworkAdapter -Force)."""
    existing = vm.imds_nics()
    nic = existing[0] if existing else None
    try:
        if nic is None:
            nic = Nic(GUEST_NIC, None, f"00155D{vm.id.replace('-', '')[:4].upper()}{len(vm.nics) + 32:02X}")
            vm.nics.append(nic)
            if vm.generation == 1 and vm.state != "Off":
                # As the Hyper-V emulation's Add-VMNetworkAdapter: the adapter stays, the device fails.
                raise RuntimeError(
                    "Failed to add device 'Synthetic Ethernet Port'. The operation cannot be performed while the "
                    "virtual machine is in its current state."
                )
        nic.guards = True
        nic.switch_name = switch.name
        nic.vlan = "Isolated 10/200"
    except RuntimeError as failure:
        # `Remove-VMNetworkAdapter -VMNetworkAdapter $vmAdapter -Force`: -Force is not a parameter of that
        # cmdlet, so the binding error is swallowed by the surrounding catch and the NIC stays.
        _log_error(call, f"Unable to configure IMDS Service on VM. {failure}")
        raise PSError(ErrorRecord("ScriptHalted", "ScriptHalted", "OperationStopped"), "throw") from None


@cmdlet(
    "Add-AzStackHCIVMAttestation",
    module="Az.StackHCI",
    source=SOURCE.format("add-azstackhcivmattestation", "10"),
    available=has_module,
    sets=("VMName", "VMObject", "AddAll"),
    should_process=True,
    params=[
        P("VMName", "string[]", 0, sets=("VMName",), mandatory=("*",), pipeline=True),
        P("VM", "object[]", 0, sets=("VMObject",), mandatory=("*",), pipeline=True),
        P("AddAll", "switch", sets=("AddAll",), mandatory=("*",)),
        P("Force", "switch"),
    ],
)
def add_az_stack_hci_vm_attestation(call: Call) -> None:
    function = "Add-AzStackHCIVMAttestation"
    context = _begin(call, function, force_sets_none=True)
    node = context.node
    with call.state.lock:
        v2 = call.state.clusters[node.cluster].supports_v2
        if v2 and not node.legacy_os_support:
            # The verbose message, then `return` from begin: process still runs and throws (9.10 step 3).
            call.verbose(LEGACY_OFF.format(function))
            _throw(call, NOT_VALIDATED)
        if call.state.clusters[node.cluster].registration != "Registered":
            _throw(call, NOT_REGISTERED)
        # AttestationSwitchId is a [Guid]: even [Guid]::Empty is truthy, so an un-enabled node fails at
        # Get-VMSwitch -Id rather than with the "needs to be activated" message (Assumption, 9.10 step 4).
        switch = (
            node.switch if node.switch is not None and node.switch.id == node.attestation_switch_id else None
        )
        if switch is None:
            _rethrow(
                call,
                ErrorRecord(
                    "No Ethernet switch could be found matching the specified criteria.",
                    "ObjectNotFound",
                    "ObjectNotFound",
                    exception_type="Microsoft.HyperV.PowerShell.VirtualizationException",
                    command="Microsoft.HyperV.PowerShell.Commands.GetVMSwitch",
                ),
                f"Exception occurred in {function}",
            )
        try:
            vms = _resolve_vms(call, node, all_param="AddAll")
            results = []
            for vm in vms:
                _configure_guest_nic(call, vm, switch)
                results.append(_vm_result(vm.name, node.name.upper(), "Connected"))
        except PSError as exc:
            _rethrow(call, exc.record, f"Exception occurred in {function}")
    for result in results:
        call.emit(result)


@cmdlet(
    "Remove-AzStackHCIVMAttestation",
    module="Az.StackHCI",
    source=SOURCE.format("remove-azstackhcivmattestation", "11"),
    available=has_module,
    sets=("VMName", "VMObject", "RemoveAll"),
    should_process=True,
    params=[
        P("VMName", "string[]", 0, sets=("VMName",), mandatory=("*",), pipeline=True),
        P("VM", "object[]", 0, sets=("VMObject",), mandatory=("*",), pipeline=True),
        P("RemoveAll", "switch", sets=("RemoveAll",), mandatory=("*",)),
        P("Force", "switch"),
    ],
)
def remove_az_stack_hci_vm_attestation(call: Call) -> None:
    function = "Remove-AzStackHCIVMAttestation"
    context = _begin(call, function, force_sets_none=True)
    node = context.node
    with call.state.lock:
        v2 = call.state.clusters[node.cluster].supports_v2
        returned_early = v2 and not node.legacy_os_support and not call.params["Force"]
        if returned_early:
            call.verbose(LEGACY_OFF.format(function))
        try:
            vms = _resolve_vms(call, node, all_param="RemoveAll")
            results = []
            for vm in vms:
                nics = vm.imds_nics()
                if not nics:
                    raise PSError(
                        ErrorRecord(
                            "No network adapter was found with the given criteria.",
                            "ObjectNotFound",
                            "ObjectNotFound",
                            exception_type="Microsoft.HyperV.PowerShell.VirtualizationException",
                            command="Microsoft.HyperV.PowerShell.Commands.RemoveVMNetworkAdapter",
                            target=vm.name,
                        ),
                        "stop",
                    )
                if vm.generation == 1 and vm.state != "Off":
                    raise PSError(
                        ErrorRecord(
                            "Failed to remove device 'Synthetic Ethernet Port'.\r\nThe operation cannot be performed while "
                            "the virtual machine is in its current state.",
                            "InvalidState",
                            "InvalidOperation",
                            exception_type="Microsoft.HyperV.PowerShell.VirtualizationException",
                            command="Microsoft.HyperV.PowerShell.Commands.RemoveVMNetworkAdapter",
                            target=vm.name,
                        ),
                        "stop",
                    )
                for nic in nics:
                    vm.nics.remove(nic)
                if returned_early:
                    # The output list was never created in begin: $results.Add(...) on $null (9.11 step 2).
                    raise PSError(
                        ErrorRecord(
                            "You cannot call a method on a null-valued expression.",
                            "InvokeMethodOnNull",
                            "InvalidOperation",
                        )
                    )
                results.append(_vm_result(vm.name, node.name.upper(), "Disconnected"))
        except PSError as exc:
            _rethrow(call, exc.record, f"Exception occurred in {function}. Check logs for details.")
    for result in results:
        call.emit(result)


# --- Enable-AzStackHCIAttestation ----------------------------------------------------------------------------


def _host_devices(call: Call, node: Node) -> str:
    """Add-HostDevicesForImds (9.7.1): the switch, the host vNIC and its address; returns the switch id."""
    switch = node.switch if node.switch is not None and node.switch.id == node.attestation_switch_id else None
    if (
        switch is None
        and node.switch is not None
        and node.attestation_switch_id == EMPTY_GUID
        and node.switch.name == HOST_SWITCH
    ):
        switch = node.switch
    if switch is None:
        created = Switch(
            HOST_SWITCH,
            stable_id(node.cluster, node.name, "imds-switch", str(len(node.sessions))),
            "Internal",
            SWITCH_NOTES,
        )
        node.switch = created
        switch = created
    if switch.name != HOST_SWITCH:
        # `Get-VMNetworkAdapter -ManagementOS -SwitchName AZSHCI_HOST-IMDS_DO_NOT_MODIFY` finds nothing on a
        # renamed switch: "Missing host adapter."; the catch removes the switch it was given.
        node.switch = None
        node.host_vnic_address = None
        _log_error(call, "Unable to configure IMDS Service on host. Missing host adapter.")
        raise PSError(ErrorRecord("ScriptHalted", "ScriptHalted", "OperationStopped"), "throw")
    node.host_vnic_address = HOST_IMDS_ADDRESS
    node.host_vnic_alias = HOST_SWITCH
    return switch.id


@cmdlet(
    "Enable-AzStackHCIAttestation",
    module="Az.StackHCI",
    source=SOURCE.format("enable-azstackhciattestation", "8"),
    available=has_module,
    should_process=True,
    params=[
        P("ComputerName", "string", 0),
        P("Credential", "credential"),
        P("AddVM", "switch"),
        P("Force", "switch"),
    ],
)
def enable_az_stack_hci_attestation(call: Call) -> None:
    function = "Enable-AzStackHCIAttestation"
    context = _begin(call, function, force_sets_none=True)
    machine = context.machine
    here = machine.node
    target = call.params["ComputerName"]
    if target is not None and target.casefold() != here.name.casefold():
        session = connect(call.runspace, target, suffix="PSSessionOpenFailed")
        if isinstance(session, ErrorRecord):
            _rethrow(call, session, f"Exception occurred in {function}")
    cluster = machine.cluster
    if cluster.registration != "Registered":
        _throw(call, NOT_REGISTERED)
    if not call.params["Force"]:
        _should_continue(call, function, ENABLE_QUESTION)
    with call.state.lock:
        nodes = [call.state.node(n) for n in cluster.nodes]
        if any(n.state != "Up" or n.faults.down for n in nodes):
            _throw(call, NODES_OFFLINE)
    outputs: list[PSObject] = []
    for node in nodes:
        if node is not here:
            # Invoke-Command -ComputerName <node>: the second hop (issue 8 item 3).
            session = connect(call.runspace, node.name, suffix="PSSessionStateBroken")
            if isinstance(session, ErrorRecord):
                _rethrow(call, session, f"Exception occurred in {function}")
        with call.state.lock:
            had_id = node.attestation_switch_id != EMPTY_GUID
            try:
                switch_id = _host_devices(call, node)
            except PSError as exc:
                _rethrow(call, exc.record, f"Exception occurred in {function}")
            call.machine.clock.sleep(10)
            if not had_id:
                node.attestation_switch_id = switch_id  # Set-AzureStackHCIAttestation -SwitchId
                if cluster.registration == "Registered":
                    renew(call, node)
            # Set-AttestationFirewallRules -Enabled $true: creates the Block rules, enables all five.
            node.firewall_enabled = dict.fromkeys(FIREWALL_RULES, True)
            info = attestation_object(call, node)
            legacy = info.get("LegacyOsSupport")
            outputs.append(
                PSObject(
                    props=[
                        ("ComputerName", info.get("ComputerName")),
                        ("Status", NODE_STATUS(node.attestation)),
                        ("Expiration", info.get("Expiration")),
                        # Pre-V2 hosts have no LegacyOsSupport: the function reports the constant Enabled (9.8).
                        ("LegacyOsSupport", LEGACY("Enabled") if legacy is MISSING else legacy),
                    ]
                )
            )
    with call.state.lock:
        # Sync-AzureStackHCI through the last node's session.
        cluster.last_sync = call.machine.clock.now()
        for node in nodes:
            if node.attestation in ("Active", "Expired") and node.attestation_switch_id != EMPTY_GUID:
                renew(call, node)
    for output in outputs:
        call.emit(output)
