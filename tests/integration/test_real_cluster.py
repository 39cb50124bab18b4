"""What would fail on the first real cluster, run end to end against the lab (issue 8).

Each test drives hcibenefit as a user would (or our client code over WinRM) against the lab, whose cmdlets
behave as Windows does where our earlier code assumed otherwise: Az.StackHCI's 22H2 prompt in a pool that
has no host to show it, the second hop every cluster-wide Az.StackHCI function makes, PowerShell Direct
errors that name no VM. Each failed against the code before the fix (see the report of issue 8).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.exitcodes import ExitCode
from hcibenefit.inventory import CredentialResolver, load_inventory
from hcibenefit.lab.engine import LabEngine
from hcibenefit.lab.spec import parse_fleet
from hcibenefit.lab.wsman.executor import PipelineCall, PipelineOutput
from hcibenefit.operations.gather import connections
from hcibenefit.remoting.catalog import HOST_FACTS
from hcibenefit.remoting.session import run_script
from tests.integration.conftest import LabClient, client_for, start_lab


def _host_facts(lab: LabClient, node: str) -> dict[str, Any]:
    inventory = load_inventory(lab.inventory)
    (connection,) = connections([inventory.node(node)], CredentialResolver())
    document = run_script(connection.endpoint, HOST_FACTS, {"IncludeGuestOs": True})
    assert isinstance(document, dict)
    return document


def test_host_facts_on_a_22h2_node_lose_nothing_to_the_modules_prompt(lab: LabClient) -> None:
    """On build 20349 every Az.StackHCI attestation function asks "continue?" unless $ConfirmPreference is
    None, and a WinRM pool has no host to ask: the prompt throws. Host facts read the same facts from
    Hyper-V and the in-box AzureStackHCI cmdlets instead, so a 22H2 node reports them all."""
    for node in ("lab01-n1", "lab01-n2"):
        document = _host_facts(lab, node)
        assert document["problems"] == [], document["problems"]
        assert document["os"]["build"] == "20349"
        assert document["attestation"]["status"] == "Active"
        vm = next(
            v for v in document["vms"] if v["name"] == ("avd-ok-01" if node == "lab01-n1" else "avd-tampered")
        )
        assert any(nic["name"] == "AZSHCI_GUEST-IMDS_DO_NOT_MODIFY" for nic in vm["network_adapters"]), vm
    status = lab.cli("status", "--cluster", "hci-lab-01", "-o", "json", "--fail-on", "none").json()
    assert {v["name"]: v["verdict"] for v in status["vms"]}["avd-ok-01"] == "ok"


NEW_NODE = """
clusters:
  - name: c
    version: 23H2
    nodes:
      - {name: n1}
      - {name: n2, attestation: Inactive, switch: missing}   # added after benefits were turned on
    vms: [{name: moved, node: n2, benefits: v1}]
"""


@pytest.fixture
def new_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    lab = start_lab(parse_fleet(NEW_NODE, "new-node"))
    try:
        yield client_for(lab, tmp_path, monkeypatch, capsys)
    finally:
        lab.stop()


def test_host_enable_refuses_a_session_that_cannot_make_the_second_hop(new_node: LabClient) -> None:
    """Enable-AzStackHCIAttestation opens a session back to its own node and Invoke-Command -ComputerName
    to the others: second hops, refused (AccessDenied) unless the WinRM session can delegate. The lab's
    WinRM speaks Basic, as the inventory says: the plan refuses and says what to set, nothing is sent."""
    lab = new_node
    result = lab.cli("host", "enable", "--cluster", "c", "--yes", "-o", "json")
    document = result.json()
    (outcome,) = document["nodes"]
    assert outcome["result"] == "refused", outcome
    assert "second hop" in outcome["reason"] and "cannot delegate" in outcome["reason"]
    assert "auth: credssp" in outcome["fix"] and "docs/host-enable.md" in outcome["fix"]
    assert lab.invocations("host-attestation-enable") == 0
    assert result.code != ExitCode.OK


def test_a_vm_that_stops_before_powershell_direct_is_told_apart(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PowerShell Direct's error for a VM that is not running names no VM (no TargetObject, no origin):
    the probe finds the VMs by id first and reports the ones it skipped itself, so the VM that stopped
    between host facts and the probe gets its own verdict and the others are unaffected."""
    honest = LabEngine.execute

    def execute(self: LabEngine, call: PipelineCall, out: PipelineOutput) -> Any:
        if call.commands and "hcibenefit-script: guest-probe/" in call.commands[0].text:
            vm = self.state.vm("avd-twice")
            assert vm is not None
            vm.state = "Off"
        return honest(self, call, out)

    monkeypatch.setattr(LabEngine, "execute", execute)
    names = ["avd-ok-01", "avd-twice", "avd-wrong-nonce"]
    result = lab.cli("guest", "check", *[a for n in names for a in ("--vm", n)], "--format", "json")
    records = {r["vm"]: r for r in result.json()["vms"]}
    assert (records["avd-ok-01"]["verdict"], records["avd-ok-01"]["reason"]) == ("activated", "licensed")
    assert (records["avd-wrong-nonce"]["verdict"], records["avd-wrong-nonce"]["reason"]) == (
        "at-risk",
        "nonce-mismatch",
    )
    stopped = records["avd-twice"]
    assert (stopped["verdict"], stopped["reason"]) == ("not-assessable", "vm-not-running"), stopped
    assert "not Running" in stopped["detail"], stopped["detail"]
