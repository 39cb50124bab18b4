"""Guests reached straight over WinRM (inventory clusters[].guests), beside PowerShell Direct ones.

A second WSManServer plays the guests: its user and password are the guests', its endpoints are named
after the VMs, and `GuestEndpointExecutor` answers the probe and kick bodies from the same fleet model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.engine import GuestEndpointExecutor
from hcibenefit.lab.fleet import LAB_GUEST_USER, Lab
from hcibenefit.lab.wsman import NodeFaults, WSManServer
from tests.guest.conftest import GUEST_PASSWORD, by_vm
from tests.integration.conftest import LabClient

WINRM_VMS = ("avd-twice", "avd-bad-guest-creds", "avd-off")


@pytest.fixture
def guests(lab: LabClient, guest_lab: Lab) -> Iterator[tuple[LabClient, GuestEndpointExecutor, WSManServer]]:
    executor = GuestEndpointExecutor(guest_lab.state, guest_lab.engine)
    server = WSManServer(executor, auth="basic", username=LAB_GUEST_USER, password=GUEST_PASSWORD)
    # The guest that refuses our credential does so at the WinRM door: HTTP 401.
    endpoints = {
        name: server.add_node(name, NodeFaults(auth_fail=name == "avd-bad-guest-creds")) for name in WINRM_VMS
    }
    server.start()
    try:
        lines = [
            "    guests:",
            "      winrm:",
            "        transport: https",
            "        auth: basic",
            f"        cert_validation: {json.dumps(server.ca_bundle_path)}",
            "        connection_timeout: 5",
            "        read_timeout: 6",
            "        operation_timeout: 1",
            "      vms:",
            *(
                f"        {name}: {{access: winrm, address: {ep.address}, port: {ep.port}}}"
                for name, ep in endpoints.items()
            ),
        ]
        text = lab.inventory.read_text()
        anchor = "  - name: hci-lab-01\n    site: lab\n"
        lab.inventory.write_text(text.replace(anchor, anchor + "\n".join(lines) + "\n", 1))
        yield lab, executor, server
        assert all(server.stats(name).open_shells == 0 for name in WINRM_VMS)
    finally:
        server.stop()


def test_check_reaches_winrm_guests_directly_and_the_rest_through_their_node(
    guests: tuple[LabClient, GuestEndpointExecutor, WSManServer],
) -> None:
    lab, executor, _ = guests
    result = lab.cli(
        "guest", "check", *[a for n in (*WINRM_VMS, "avd-ok-01") for a in ("--vm", n)], "--format", "json"
    )
    assert result.code == ExitCode.FINDINGS_AND_INCOMPLETE, result.err
    records = by_vm(result.json()["vms"])
    assert {n: r["access"] for n, r in records.items()} == {
        "avd-twice": "winrm",
        "avd-bad-guest-creds": "winrm",
        "avd-off": "winrm",
        "avd-ok-01": "powershell-direct",
    }
    assert (records["avd-twice"]["verdict"], records["avd-twice"]["reason"]) == (
        "not-activated",
        "task-never-ran",
    )
    assert records["avd-twice"]["evidence"]["document"]["verification"]["ok"] is True
    assert (records["avd-bad-guest-creds"]["verdict"], records["avd-bad-guest-creds"]["reason"]) == (
        "auth-failed",
        "bad-credentials",
    )
    assert records["avd-off"]["reason"] == "vm-off" and records["avd-ok-01"]["verdict"] == "activated"
    # The node probes only its PowerShell Direct guest; each WinRM guest is its own single call.
    node = next(n for n in lab.state()["nodes"] if n["name"] == "lab01-n1")
    assert node["invocations"]["guest-probe"] == 1
    assert executor.invocations == {"avd-twice:guest-probe-body/2": 1}


def test_kick_over_winrm_activates_the_guest(
    guests: tuple[LabClient, GuestEndpointExecutor, WSManServer],
) -> None:
    lab, executor, _ = guests
    what_if = lab.cli("guest", "kick", "--vm", "avd-twice", "--what-if")
    assert "- guest-kick-body/1 on avd-twice (winrm)\n    -EnableTask $false\n    -MaxRuns 2\n" in what_if.out
    assert "avd-twice:guest-kick-body/1" not in executor.invocations
    result = lab.cli("guest", "kick", "--vm", "avd-twice", "--format", "json")
    assert result.code == ExitCode.OK, result.out + result.err
    record = result.json()["vms"][0]
    assert record["access"] == "winrm" and record["after"]["verdict"] == "activated"
    assert executor.invocations["avd-twice:guest-kick-body/1"] == 1
    assert lab.invocations("guest-kick") == 0


def test_an_unreachable_winrm_guest_is_not_assessable_and_the_rest_go_on(
    guests: tuple[LabClient, GuestEndpointExecutor, WSManServer],
) -> None:
    lab, _, server = guests
    server.set_faults("avd-twice", down=True)
    result = lab.cli("guest", "check", "--vm", "avd-twice", "--vm", "avd-ok-01", "--format", "json")
    assert result.code == ExitCode.INCOMPLETE
    records = by_vm(result.json()["vms"])
    assert (records["avd-twice"]["verdict"], records["avd-twice"]["reason"]) == (
        "not-assessable",
        "guest-unreachable",
    )
    assert records["avd-ok-01"]["verdict"] == "activated"
