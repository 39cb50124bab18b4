"""The lab engine runs the script text it receives: parameters bound like PowerShell, effects on the model."""

from __future__ import annotations

import json

import pytest

from hcibenefit.lab.state import GUEST_NIC, HOST_SWITCH
from hcibenefit.lab.wsman.executor import CommandSpec, PipelineCall, TerminatingError
from hcibenefit.remoting.catalog import (
    HOST_ATTESTATION_ENABLE,
    HOST_FACTS,
    HOST_SYNC,
    VM_BENEFITS_DISABLE,
    VM_BENEFITS_ENABLE,
)
from tests.conftest import CollectingOutput, EngineDriver

HOSTILE = "x'; Remove-VM -Name * -Force; '"


def _run_text(
    driver: EngineDriver, node: str, text: str, params: tuple = (), is_script: bool = True, **call: object
) -> CollectingOutput:
    out = CollectingOutput()
    out.output += driver.engine.execute(
        PipelineCall(node, "u", "Microsoft.PowerShell", (CommandSpec(text, is_script, params),), (), **call),  # type: ignore[arg-type]
        out,
    )
    return out


def test_an_unknown_command_in_a_script_is_powershells_command_not_found(
    default_driver: EngineDriver,
) -> None:
    out = _run_text(default_driver, "lab01-n1", "Get-Foo -Bar 1\n'after'")
    # A statement-terminating error under the default Continue: written, and the script goes on.
    assert out.output == ["after"]
    assert out.errors[0]["error_id"] == "CommandNotFoundException"
    assert "The term 'Get-Foo' is not recognized" in out.errors[0]["message"]


def test_an_unknown_cmdlet_sent_alone_is_a_terminating_error(default_driver: EngineDriver) -> None:
    with pytest.raises(TerminatingError) as caught:
        _run_text(default_driver, "lab01-n1", "Remove-Foo", is_script=False)
    assert caught.value.error_id == "CommandNotFoundException"


def test_a_construct_outside_the_subset_is_named_with_its_line(default_driver: EngineDriver) -> None:
    with pytest.raises(TerminatingError) as caught:
        _run_text(default_driver, "lab01-n1", "$a = 1\nswitch ($a) { 1 { 'one' } }")
    assert caught.value.error_id == "LabUnsupportedConstruct"
    assert "line 2" in caught.value.message and "switch" in caught.value.message


def test_parameters_are_bound_like_powershell(default_driver: EngineDriver) -> None:
    # The scripts are advanced ([CmdletBinding()]): an unknown parameter is an error, not a silent $args.
    with pytest.raises(TerminatingError) as unknown:
        default_driver.call("lab01-n1", HOST_FACTS, {"NoSuchParameter": 1})
    assert unknown.value.error_id == "NamedParameterNotFound"
    with pytest.raises(TerminatingError) as wrong_type:
        default_driver.call("lab01-n1", HOST_FACTS, {"IncludeGuestOs": "yes please"})
    assert wrong_type.value.error_id == "ParameterArgumentTransformationError"
    assert "Boolean parameters accept only Boolean values and numbers" in wrong_type.value.message
    # A unique prefix binds, as in PowerShell.
    document = default_driver.document("lab01-n1", HOST_FACTS, {"Include": False})
    assert all(vm["kvp"] is None for vm in document["vms"])


def test_enable_adds_a_configured_guest_nic(default_driver: EngineDriver) -> None:
    vm_id = default_driver.id_of("avd-missing-nic")
    document = default_driver.document("lab01-n1", VM_BENEFITS_ENABLE, {"NicVMId": [vm_id]})
    assert document["results"] == [
        {
            "vm_id": vm_id,
            "vm": "avd-missing-nic",
            "action": "add-guest-nic",
            "ok": True,
            "leftover_nic": False,
            "error": None,
        }
    ]
    vm = default_driver.state.vm("avd-missing-nic")
    assert vm is not None
    nic = vm.imds_nic()
    assert nic is not None and nic.switch_name == HOST_SWITCH and nic.vlan == "Isolated 10/200" and nic.guards


def test_a_running_generation_1_vm_keeps_a_half_configured_nic_and_says_so(
    default_driver: EngineDriver,
) -> None:
    document = default_driver.document(
        "lab01-n2", VM_BENEFITS_ENABLE, {"NicVMId": [default_driver.id_of("avd-gen1-running")]}
    )
    result = document["results"][0]
    assert result["ok"] is False and "current state" in result["error"]["message"]
    assert result["leftover_nic"] is True
    vm = default_driver.state.vm("avd-gen1-running")
    assert vm is not None and [n.connected for n in vm.imds_nics()] == [False]


def test_a_vm_owned_by_another_node_is_invisible(default_driver: EngineDriver) -> None:
    document = default_driver.document(
        "lab01-n2", VM_BENEFITS_ENABLE, {"NicVMId": [default_driver.id_of("avd-missing-nic")]}
    )
    result = document["results"][0]
    assert (
        result["vm"] is None
        and result["error"]["error_id"] == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    )


def test_a_hostile_value_is_only_ever_a_value(default_driver: EngineDriver) -> None:
    before = json.dumps(default_driver.document("lab01-n1", HOST_FACTS), sort_keys=True)
    document = default_driver.document("lab01-n1", VM_BENEFITS_ENABLE, {"NicVMId": [HOSTILE]})
    result = document["results"][0]
    assert result["vm_id"] == HOSTILE and result["ok"] is False
    assert (
        result["error"]["error_id"]
        == "CannotConvertArgumentNoMessage,Microsoft.HyperV.PowerShell.Commands.GetVM"
    )
    after = json.dumps(default_driver.document("lab01-n1", HOST_FACTS), sort_keys=True)
    assert _without_times(before) == _without_times(after)
    assert len(default_driver.state.vms) == 28


def _without_times(text: str) -> dict:
    document = json.loads(text)
    document.pop("collected_at")
    return document


def test_disable_removes_nic_and_gsi(default_driver: EngineDriver) -> None:
    default_driver.document(
        "lab02-n1",
        VM_BENEFITS_DISABLE,
        {
            "NicVMId": [default_driver.id_of("w10ms-legacy-ok")],
            "GsiVMId": [default_driver.id_of("w11ms-v2-ok")],
        },
    )
    w10, w11 = default_driver.state.vm("w10ms-legacy-ok"), default_driver.state.vm("w11ms-v2-ok")
    assert w10 is not None and w10.imds_nic() is None
    assert w11 is not None and w11.gsi is False


def test_disabling_a_vm_without_the_nic_is_already_done(default_driver: EngineDriver) -> None:
    """Remove-AzStackHCIVMAttestation would fail here (no NIC); the Hyper-V cmdlets just find nothing to do."""
    document = default_driver.document(
        "lab01-n1", VM_BENEFITS_DISABLE, {"NicVMId": [default_driver.id_of("avd-missing-nic")]}
    )
    assert document["results"][0]["ok"] is True


def test_host_enable_without_the_module_fails_cleanly(default_driver: EngineDriver) -> None:
    document = default_driver.document("lab02-n3", HOST_ATTESTATION_ENABLE)
    assert document["ok"] is False and document["error"]["error_id"] == "CommandNotFoundException"
    assert document["status"]["status"] == "Inactive"


def test_host_enable_needs_a_session_that_can_delegate(make_driver) -> None:  # type: ignore[no-untyped-def]
    spec = """
clusters:
  - name: c
    version: 23H2
    nodes: [{name: n1}, {name: n2, attestation: Inactive, switch: missing}]
    vms: [{name: moved, node: n2, benefits: v1}]
"""
    driver = make_driver(spec)
    # NTLM (or Basic, or Kerberos without delegation): the module's loopback session is refused first.
    out = _run_text(driver, "n2", HOST_ATTESTATION_ENABLE.text(), auth="ntlm", can_delegate=False)
    document = json.loads(out.output[0])
    assert document["error"]["error_id"] == "AccessDenied,PSSessionOpenFailed"
    assert driver.state.node("n2").attestation == "Inactive"
    # CredSSP: every node is configured, the loopback session is left behind.
    out = _run_text(driver, "n2", HOST_ATTESTATION_ENABLE.text(), auth="credssp", can_delegate=True)
    document = json.loads(out.output[0])
    assert document["ok"] is True, document
    assert [n["computer_name"] for n in document["nodes"]] == ["N1", "N2"]
    assert document["status"]["status"] == "Active"
    assert driver.state.node("n2").sessions == ["Enable-AzStackHCIAttestation loopback"]
    vm = driver.state.vm("moved")
    assert vm is not None
    driver.document("n2", VM_BENEFITS_ENABLE, {"ReconnectVMId": [vm.id]})
    nic = vm.imds_nic()
    assert nic is not None and nic.name == GUEST_NIC and nic.switch_name == HOST_SWITCH
    assert driver.state.v1_path_works(vm)


def test_sync_renews_an_expired_node(default_driver: EngineDriver) -> None:
    document = default_driver.document("lab01-n3", HOST_SYNC)
    assert document["ok"] is True and document["status"]["status"] == "Active"


def test_invocations_are_counted_per_node_and_script(default_driver: EngineDriver) -> None:
    default_driver.call("lab01-n1", HOST_FACTS)
    default_driver.call("lab01-n1", HOST_FACTS)
    _run_text(default_driver, "lab01-n1", "whoami")
    assert default_driver.engine.counts("lab01-n1") == {"host-facts": 2, "unknown": 1}


# --- a pool without a host (what pypsrp opens) ---------------------------------------------------------

HOSTLESS_22H2 = """
clusters:
  - name: old
    version: 22H2
    nodes: [{name: o1}, {name: o2, attestation: Inactive, switch: missing}]
"""


def test_a_hostless_pool_drops_host_writes_and_throws_on_prompts(default_driver: EngineDriver) -> None:
    text = (
        "$Host.UI.WriteLine('to nobody'); $Host.UI.WriteWarningLine('nor this'); 'still here'\n"
        "try { $Host.UI.PromptForChoice('t', 'm', $null, 0) } "
        "catch { $_.FullyQualifiedErrorId; $_.Exception.GetType().FullName; $_.Exception.InnerException.GetType().FullName }"
    )
    out = _run_text(default_driver, "lab01-n1", text)
    # A method call that throws arrives wrapped (MethodInvocationException), the HostException inside.
    assert out.output == [
        "still here",
        "HostException",
        "System.Management.Automation.MethodInvocationException",
        "System.Management.Automation.Host.HostException",
    ]
    assert not out.errors and not out.warnings and not out.information


def test_the_modules_22h2_prompt_throws_without_a_host(make_driver) -> None:  # type: ignore[no-untyped-def]
    """On build 20349 each Az.StackHCI attestation function asks before it acts unless $ConfirmPreference
    is None (Get-AzStackHCIVMAttestation has no -Force to say so); with no host to ask, the question throws.
    The shipped scripts avoid it: host facts read Hyper-V, host enable passes -Force."""
    driver = make_driver(HOSTLESS_22H2)
    text = (
        "try { Get-AzStackHCIVMAttestation -Local | Out-Null; 'listed' } catch { $_.FullyQualifiedErrorId }"
    )
    asked = _run_text(driver, "o1", text, auth="credssp", can_delegate=True)
    assert asked.output and asked.output[0] != "listed", asked.output
    assert "Host" in asked.output[0] or "Aborting" in asked.output[0], asked.output
    quiet = _run_text(driver, "o1", "$ConfirmPreference = 'None'\n" + text, auth="credssp", can_delegate=True)
    assert quiet.output == ["listed"], quiet.output + [e["message"] for e in quiet.errors]
    out = _run_text(driver, "o2", HOST_ATTESTATION_ENABLE.text(), auth="credssp", can_delegate=True)
    document = json.loads(out.output[0])
    assert document["ok"] is True, document
    assert driver.state.node("o2").attestation == "Active"


def test_host_facts_on_22h2_need_no_host_to_answer_a_prompt(default_driver: EngineDriver) -> None:
    """Even where the module's loopback session works (CredSSP), its 22H2 prompt finds no host in a WinRM
    pool: host facts must not go through it (they read Hyper-V and the in-box cmdlets)."""
    out = _run_text(default_driver, "lab01-n1", HOST_FACTS.text(), auth="credssp", can_delegate=True)
    document = json.loads(out.output[0])
    assert document["problems"] == [], document["problems"]
    assert document["os"]["build"] == "20349" and document["attestation"]["status"] == "Active"
