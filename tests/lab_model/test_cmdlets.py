"""The lab's cmdlets behave as their documentation and module source say (docs/lab.md), including where
that surprises: Az.StackHCI's listing and debris, PowerShell Direct's anonymous errors, Hyper-V's pipeline
binding, enums."""

from __future__ import annotations

import json
from typing import Any

from hcibenefit.lab.state import GUEST_NIC
from hcibenefit.lab.wsman.executor import CommandSpec, PipelineCall
from tests.conftest import CollectingOutput, EngineDriver

CREDSSP = {"auth": "credssp", "can_delegate": True}
CREDENTIAL = (
    "$secure = ConvertTo-SecureString -String 'x' -AsPlainText -Force\n"
    "$cred = New-Object -TypeName System.Management.Automation.PSCredential -ArgumentList 'Administrator', $secure\n"
)


def run(driver: EngineDriver, node: str, text: str, **call: Any) -> CollectingOutput:
    out = CollectingOutput()
    command = CommandSpec(text, True, ())
    out.output += driver.engine.execute(
        PipelineCall(node, "u", "Microsoft.PowerShell", (command,), (), **call), out
    )
    return out


def test_get_azstackhcivmattestation_says_connected_and_joins_versions_with_a_space(
    default_driver: EngineDriver,
) -> None:
    """Status means "configured" (always Connected); SupportedVersions is an enum array: [string] joins the
    names with a space, ConvertTo-Json writes the numbers."""
    text = (
        "$ConfirmPreference = 'None'\n"
        "$listed = @(Get-AzStackHCIVMAttestation -Local)\n"
        '$listed | ForEach-Object { "$($_.Name)|$($_.Status)|$([string]$_.SupportedVersions)" }\n'
        "ConvertTo-Json -Compress -InputObject $listed[0]"
    )
    out = run(default_driver, "lab02-n1", text, **CREDSSP)
    assert not out.errors, out.errors
    *rows, document = out.output
    assert rows and all(row.split("|")[1] == "Connected" for row in rows), rows
    assert {row.split("|")[2] for row in rows} <= {"V1", "V2", "V1 V2"}
    assert all(isinstance(v, int) for v in json.loads(document)["SupportedVersions"])


def test_a_22h2_node_lists_its_v1_vms_only_while_active(default_driver: EngineDriver) -> None:
    count = "$ConfirmPreference = 'None'; @(Get-AzStackHCIVMAttestation -Local).Count"
    assert run(default_driver, "lab01-n1", count, **CREDSSP).output == [5]  # Active
    assert run(default_driver, "lab01-n3", count, **CREDSSP).output == [0]  # Expired: nothing listed


def test_add_on_a_running_generation_1_vm_halts_and_leaves_a_nic(default_driver: EngineDriver) -> None:
    """The module's own cleanup calls Remove-VMNetworkAdapter -Force, a parameter that cmdlet lacks: the
    failure surfaces as ScriptHalted and the half-made NIC stays."""
    text = (
        "try { Add-AzStackHCIVMAttestation -VMName 'avd-gen1-running' -Force } catch { $_.FullyQualifiedErrorId }\n"
        "(Get-VM -Name 'avd-gen1-running' | Get-VMNetworkAdapter).Name"
    )
    out = run(default_driver, "lab01-n2", text, **CREDSSP)
    assert out.output[0] == "ScriptHalted"
    assert GUEST_NIC in out.output[1:]
    vm = default_driver.state.vm("avd-gen1-running")
    assert vm is not None and any(n.name == GUEST_NIC and not n.connected for n in vm.nics)


def test_add_with_legacy_support_off_throws_instead_of_returning(default_driver: EngineDriver) -> None:
    """A `return` in the function's begin block does not skip process: on 23H2+ with legacy OS support
    off, Add throws 'Did not validate host configuration'."""
    text = "try { Add-AzStackHCIVMAttestation -VMName 'w10ms-24h2-legacy-off' -Force } catch { $_.FullyQualifiedErrorId }"
    assert run(default_driver, "lab04-n1", text, **CREDSSP).output == ["Did not validate host configuration"]


def test_remove_fails_on_a_vm_without_the_nic(default_driver: EngineDriver) -> None:
    text = "try { Remove-AzStackHCIVMAttestation -VMName 'avd-missing-nic' -Force; 'removed' } catch { $_.FullyQualifiedErrorId }"
    out = run(default_driver, "lab01-n1", text, **CREDSSP)
    assert out.output and out.output[0] != "removed"
    assert out.output[0].startswith("ObjectNotFound")


def test_every_module_function_opens_a_loopback_session_that_needs_delegation(
    default_driver: EngineDriver,
) -> None:
    text = "$ConfirmPreference = 'None'; try { Get-AzStackHCIVMAttestation -Local | Out-Null; 'ok' } catch { $_.FullyQualifiedErrorId }"
    assert run(default_driver, "lab02-n1", text).output == ["AccessDenied,PSSessionOpenFailed"]
    assert run(default_driver, "lab02-n1", text, **CREDSSP).output == ["ok"]
    assert default_driver.state.node("lab02-n1").sessions  # and the session is never removed


def test_powershell_direct_errors_for_stopped_and_unknown_vms_name_no_vm(
    default_driver: EngineDriver,
) -> None:
    text = CREDENTIAL + (
        "Invoke-Command -VMName 'avd-off', 'no-such-vm' -Credential $cred -ScriptBlock { 1 } "
        "-ErrorAction SilentlyContinue -ErrorVariable failed\n"
        'foreach ($f in $failed) { "$($f.FullyQualifiedErrorId)|$($null -eq $f.TargetObject)|$($null -eq $f.OriginInfo)|$($f.CategoryInfo.Category)" }'
    )
    out = run(default_driver, "lab01-n2", text)
    # The internal Get-VM runs in the caller's scope: its error for the unknown name goes to the caller's
    # error stream, not to -ErrorVariable (the reason our scripts find VMs with Get-VM -Id first).
    assert [e["error_id"] for e in out.errors] == [
        "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    ]
    ids = [row.split("|")[0] for row in out.output]
    assert any(i.startswith("InvalidVMState") for i in ids) and any(
        i.startswith("InvalidVMNameNotSingle") for i in ids
    )
    assert all(row.endswith("|True|True|InvalidArgument") for row in out.output), out.output


def test_a_vm_object_piped_binds_to_vm_not_vmname(default_driver: EngineDriver) -> None:
    """By value first: a VM object goes to -VM; a name never becomes a wildcard pattern by accident."""
    out = run(default_driver, "lab01-n1", "(Get-VM -Name 'avd-ok-01' | Get-VMNetworkAdapter).Name")
    assert not out.errors and GUEST_NIC in out.output
    named = run(
        default_driver, "lab01-n1", "('avd-ok-01' | Get-VMIntegrationService | Select-Object -First 1).VMName"
    )
    assert named.output == ["avd-ok-01"]


def test_a_pattern_windows_cannot_read_is_an_error_not_a_crash(default_driver: EngineDriver) -> None:
    out = run(default_driver, "lab01-n1", "Get-VM -Name 'x[d-5]'; 'after'")
    assert out.output == ["after"] and out.errors


def test_failover_cluster_networks_interfaces_and_vm_roles(make_driver: Any) -> None:
    """Get-ClusterNetwork/-NetworkInterface/-Group as FailoverClusters 2.0.0.0 types them: enums print as
    names and convert to their numbers; an interface's Network is the network object (printing as its
    name); a group's OwnerNode a ClusterNode. The planted Partitioned network is the TSG's picture."""
    driver = make_driver(
        """
clusters:
  - name: c
    version: 23H2
    imds_cluster_network: partitioned
    nodes: [n1, {name: n2, faults: {down: true}}]
    vms:
      - {name: vm-a, node: n1}
      - {name: vm-b, node: n2, state: Off}
"""
    )
    text = (
        'Get-ClusterNetwork | ForEach-Object { "$($_.Name)|$($_.Role)|$([int]$_.Role)|$($_.State)|$($_.Address)/$($_.AddressMask)" }\n'
        'Get-ClusterNetworkInterface -Node N1 | ForEach-Object { "$($_.Name)|$($_.Network)|$($_.Network.Role)|$($_.Adapter)|$($_.State)" }\n'
        'Get-ClusterGroup | ForEach-Object { "$($_.Name)|$($_.GroupType)|$($_.OwnerNode.Name)|$($_.State)" }\n'
        "@(Get-ClusterNetwork -Name 'Cluster Network 2').Count\n"
        "@(Get-ClusterGroup -Name 'vm-*').Count"
    )
    out = run(driver, "n1", text)
    assert not out.errors, out.errors
    assert out.output == [
        "Cluster Network 1|ClusterAndClient|3|Up|10.0.0.0/255.255.255.0",
        "Cluster Network 2|Cluster|1|Partitioned|169.254.0.0/255.255.0.0",
        "N1 - vEthernet (ConvergedSwitch(management))|Cluster Network 1|ClusterAndClient|Hyper-V Virtual Ethernet Adapter|Up",
        "N1 - AZSHCI_HOST-IMDS_DO_NOT_MODIFY|Cluster Network 2|Cluster|Hyper-V Virtual Ethernet Adapter #2|Unreachable",
        "Cluster Group|Cluster|N1|Online",
        "Available Storage|AvailableStorage|N1|Offline",
        "vm-a|VirtualMachine|N1|Online",
        # The lab does not fail roles over: a Down owner's role is Failed (an assumption, docs/lab.md).
        "vm-b|VirtualMachine|N2|Failed",
        1,
        2,
    ]
