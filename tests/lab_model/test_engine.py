"""The lab engine: scripts recognised by header, parameters bound like PowerShell, effects on the model."""

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
    driver: EngineDriver, node: str, text: str, params: tuple = (), is_script: bool = True
) -> CollectingOutput:
    out = CollectingOutput()
    driver.engine.execute(
        PipelineCall(node, "u", "Microsoft.PowerShell", (CommandSpec(text, is_script, params),), ()), out
    )
    return out


def test_unknown_script_gets_powershells_command_not_found(default_driver: EngineDriver) -> None:
    out = _run_text(default_driver, "lab01-n1", "Get-Foo -Bar 1")
    assert out.output == []
    assert out.errors[0]["error_id"] == "CommandNotFoundException"
    assert "The term 'Get-Foo' is not recognized" in out.errors[0]["message"]


def test_unknown_cmdlet_is_a_terminating_error(default_driver: EngineDriver) -> None:
    with pytest.raises(TerminatingError) as caught:
        _run_text(default_driver, "lab01-n1", "Remove-VM", is_script=False)
    assert caught.value.error_id == "CommandNotFoundException"


def test_parameters_are_bound_like_powershell(default_driver: EngineDriver) -> None:
    with pytest.raises(TerminatingError) as unknown:
        default_driver.call("lab01-n1", HOST_FACTS, {"NoSuchParameter": 1})
    assert unknown.value.error_id == "NamedParameterNotFound"
    with pytest.raises(TerminatingError) as wrong_type:
        default_driver.call("lab01-n1", HOST_FACTS, {"IncludeGuestOs": "yes please"})
    assert wrong_type.value.error_id == "ParameterArgumentTransformationError"
    # A unique prefix binds, as in PowerShell.
    document = default_driver.document("lab01-n1", HOST_FACTS, {"Include": False})
    assert all(vm["kvp"] is None for vm in document["vms"])


def test_enable_adds_a_connected_guest_nic(default_driver: EngineDriver) -> None:
    document = default_driver.document("lab01-n1", VM_BENEFITS_ENABLE, {"NicVMName": ["avd-missing-nic"]})
    assert document["results"] == [
        {"vm": "avd-missing-nic", "action": "add-guest-nic", "ok": True, "error": None}
    ]
    vm = default_driver.state.vm("avd-missing-nic")
    assert vm is not None and vm.imds_nic() is not None and vm.imds_nic().switch_name == HOST_SWITCH  # type: ignore[union-attr]


def test_running_generation_1_vm_refuses_the_nic(default_driver: EngineDriver) -> None:
    document = default_driver.document("lab01-n2", VM_BENEFITS_ENABLE, {"NicVMName": ["avd-gen1-running"]})
    result = document["results"][0]
    assert result["ok"] is False and "current state" in result["error"]["message"]
    vm = default_driver.state.vm("avd-gen1-running")
    assert vm is not None and vm.imds_nic() is None


def test_a_vm_owned_by_another_node_is_invisible(default_driver: EngineDriver) -> None:
    document = default_driver.document("lab01-n2", VM_BENEFITS_ENABLE, {"NicVMName": ["avd-missing-nic"]})
    assert document["results"][0]["error"]["error_id"].startswith("InvalidParameter")


def test_hostile_name_is_only_ever_a_value(default_driver: EngineDriver) -> None:
    before = json.dumps(default_driver.document("lab01-n1", HOST_FACTS), sort_keys=True)
    document = default_driver.document("lab01-n1", VM_BENEFITS_ENABLE, {"NicVMName": [HOSTILE]})
    assert document["results"][0]["vm"] == HOSTILE and document["results"][0]["ok"] is False
    after = json.dumps(default_driver.document("lab01-n1", HOST_FACTS), sort_keys=True)
    assert _without_times(before) == _without_times(after)
    assert len(default_driver.state.vms) == 22


def _without_times(text: str) -> dict:
    document = json.loads(text)
    document.pop("collected_at")
    return document


def test_legacy_off_23h2_node_ignores_add_like_az_stackhci(make_driver) -> None:  # type: ignore[no-untyped-def]
    driver = make_driver(
        """
clusters:
  - name: c
    version: 23H2
    nodes: [{name: n1, legacy_os_support: false}]
    vms: [{name: w10, node: n1, os: Windows 10 Enterprise multi-session}]
"""
    )
    out = driver.call("n1", VM_BENEFITS_ENABLE, {"NicVMName": ["w10"]})
    assert json.loads(out.output[0])["results"][0]["ok"] is True
    assert any("Legacy OS Support" in line for line in out.verbose)
    vm = driver.state.vm("w10")
    assert vm is not None and vm.imds_nic() is None  # nothing changed: the verification has to catch it


def test_disable_removes_nic_and_gsi(default_driver: EngineDriver) -> None:
    default_driver.document(
        "lab02-n1", VM_BENEFITS_DISABLE, {"NicVMName": ["w10ms-legacy-ok"], "GsiVMName": ["w11ms-v2-ok"]}
    )
    w10, w11 = default_driver.state.vm("w10ms-legacy-ok"), default_driver.state.vm("w11ms-v2-ok")
    assert w10 is not None and w10.imds_nic() is None
    assert w11 is not None and w11.gsi is False


def test_host_enable_on_inactive_node_with_module_missing_fails_cleanly(default_driver: EngineDriver) -> None:
    document = default_driver.document("lab02-n3", HOST_ATTESTATION_ENABLE)
    assert document["ok"] is False and document["error"]["error_id"] == "CommandNotFoundException"
    assert document["status"]["status"] == "Inactive"


def test_host_enable_creates_switch_and_reconnect_fixes_moved_vm(make_driver) -> None:  # type: ignore[no-untyped-def]
    driver = make_driver(
        """
clusters:
  - name: c
    version: 22H2
    nodes: [{name: n1}, {name: n2, attestation: Inactive, switch: missing}]
    vms: [{name: moved, node: n2, benefits: v1}]
"""
    )
    vm = driver.state.vm("moved")
    assert vm is not None and vm.imds_nic() is not None and not vm.imds_nic().connected  # type: ignore[union-attr]
    assert driver.document("n2", HOST_ATTESTATION_ENABLE)["status"]["status"] == "Active"
    driver.document("n2", VM_BENEFITS_ENABLE, {"ReconnectVMName": ["moved"]})
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
