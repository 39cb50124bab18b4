"""Hyper-V's -Name/-VMName take wildcard patterns, case-insensitive (issue 9, "Wildcards").

A VM may be called `avd-[ab]` or `*`; passed by name to Get-VM, Add-VMNetworkAdapter or Invoke-Command
-VMName, that name selects other VMs. The lab's Hyper-V cmdlets match names the way Hyper-V does, so these
tests show that every script selects exactly the VM it was asked about (our scripts take VM ids).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.spec import parse_fleet
from tests.conftest import EngineDriver
from tests.integration.conftest import LabClient, client_for, start_lab

# Every name here is also a pattern that matches others: [ab] matches avd-a and avd-b, * matches all.
FLEET = """
clusters:
  - name: c
    version: 23H2
    nodes: [n1]
    vms:
      - {name: "avd-[ab]", node: n1, edition: ServerRdsh, os: Windows 11 Enterprise multi-session}
      - {name: avd-a, node: n1, edition: ServerRdsh, os: Windows 11 Enterprise multi-session}
      - {name: AVD-B, node: n1, edition: ServerRdsh, os: Windows 11 Enterprise multi-session}
      - {name: "*", node: n1, edition: ServerRdsh, os: Windows 11 Enterprise multi-session}
      - {name: other, node: n1, edition: ServerRdsh, os: Windows 11 Enterprise multi-session, benefits: v2}
"""
NAMES = ["avd-[ab]", "avd-a", "AVD-B", "*", "other"]


def _names(driver: EngineDriver, text: str) -> list[str]:
    out = driver.call_text("n1", text)
    assert not out.errors, out.errors
    return [str(v) for v in out.output]


def test_the_labs_hyperv_matches_names_as_patterns_case_insensitively() -> None:
    from hcibenefit.lab.spec import parse_fleet as parse

    driver = EngineDriver(parse(FLEET, "wildcards.yaml"))
    assert sorted(_names(driver, "(Get-VM -Name 'avd-[ab]').Name")) == ["AVD-B", "avd-a"]
    assert _names(driver, "(Get-VM -Name 'avd-B').Name") == ["AVD-B"]
    assert sorted(_names(driver, "(Get-VM -Name '*').Name")) == sorted(NAMES)
    assert sorted(_names(driver, "(Get-VM -VMName 'AVD-?').Name")) == ["AVD-B", "avd-a"]
    # Escaped (WildcardPattern::Escape, in 5.1), or by id: exactly one VM.
    escaped = "(Get-VM -Name ([System.Management.Automation.WildcardPattern]::Escape('{}'))).Name"
    assert _names(driver, escaped.format("avd-[ab]")) == ["avd-[ab]"]
    assert _names(driver, escaped.format("*")) == ["*"]
    star = driver.id_of("*")
    assert _names(driver, f"(Get-VM -Id '{star}').Name") == ["*"]
    # A pattern that matches nothing is no error; a plain name that matches nothing is.
    assert _names(driver, "(Get-VM -Name 'zz*').Count") == ["0"]
    missing = driver.call_text("n1", "Get-VM -Name 'zz'")
    assert missing.errors[0]["error_id"].startswith("InvalidParameter")


@pytest.fixture
def wild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    lab = start_lab(parse_fleet(FLEET, "wildcards.yaml"))
    try:
        yield client_for(lab, tmp_path, monkeypatch, capsys)
    finally:
        lab.stop()


def _nics(lab: LabClient) -> dict[str, list[Any]]:
    return {vm["name"]: vm["nics"] for vm in lab.state()["vms"]}


def _gsi(lab: LabClient) -> dict[str, bool]:
    return {vm["name"]: vm["gsi"] for vm in lab.state()["vms"]}


@pytest.mark.parametrize("target", ["avd-[ab]", "*", "avd-a"])
def test_enable_and_disable_change_exactly_the_named_vm(wild: LabClient, target: str) -> None:
    before_nics, before_gsi = _nics(wild), _gsi(wild)
    result = wild.cli("enable", "--vm", target, "--transport", "V1", "--yes", "-o", "json")
    assert result.code == ExitCode.OK, result.err
    after = _nics(wild)
    assert [n["name"] for n in after[target]][-1] == "AZSHCI_GUEST-IMDS_DO_NOT_MODIFY"
    assert {name: nics for name, nics in after.items() if name != target} == {
        name: nics for name, nics in before_nics.items() if name != target
    }
    result = wild.cli("disable", "--vm", target, "--yes", "-o", "json")
    assert result.code == ExitCode.OK, result.err
    assert _nics(wild) == before_nics and _gsi(wild) == before_gsi
    # V2 as well: the Guest Service Interface of the named VM only.
    wild.cli("enable", "--vm", target, "--transport", "V2", "--yes")
    assert {name for name, on in _gsi(wild).items() if on} == {target, "other"}
    wild.cli("disable", "--vm", "other", "--yes")
    assert {name for name, on in _gsi(wild).items() if on} == {target}


def test_guest_check_asks_exactly_the_named_guest(wild: LabClient) -> None:
    wild.cli("enable", "--vm", "*", "--transport", "V1", "--yes")
    result = wild.cli("guest", "check", "--vm", "*", "--format", "json")
    records = result.json()["vms"]
    assert [r["vm"] for r in records] == ["*"]
    # The probe body ran in that guest alone (one guest, whatever the name matches as a pattern).
    assert records[0]["verdict"] not in ("not-assessable",), records[0]
    assert json.dumps(records[0]).count("avd-a") == 0
