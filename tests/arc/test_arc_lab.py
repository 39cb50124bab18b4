"""transport: arc against the lab's ARM: the same scripts, the same results as over WinRM, nothing left."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.cli.sweep_cmd import lab_waivers
from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.fleet import Lab
from tests.integration.conftest import LabClient, client_for, default_lab

__all__ = ["default_lab"]

pytestmark = pytest.mark.lab


@pytest.fixture
def arc_lab(default_lab: Lab) -> Lab:
    """The session's default fleet (tests/integration/conftest.py), reset by each test."""
    return default_lab


@pytest.fixture
def clients(
    arc_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[tuple[LabClient, LabClient]]:
    """(over WinRM, over Arc): the same lab, two inventories; hci-lab-01 on Arc in the second."""
    arc_lab.reset()
    winrm = client_for(arc_lab, tmp_path, monkeypatch, capsys)
    arc = LabClient(
        arc_lab, arc_lab.write_inventory(tmp_path / "arc.yaml", arc_clusters=["hci-lab-01"]), capsys
    )
    yield winrm, arc
    assert arc_lab.open_shells() == 0
    assert _left(arc_lab) == ([], []), "a run command or an output blob was left behind"


def _left(lab: Lab) -> tuple[list[str], list[str]]:
    """Run commands and blobs that still exist (a deleted run command goes shortly after its DELETE)."""
    for _ in range(40):
        azure = lab.snapshot()["azure"]
        left = (azure["run_commands"]["existing"], azure["blobs"]["blobs"])
        if left == ([], []):
            break
        time.sleep(0.05)
    return left


def _results(document: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    # Nonces are fresh on every run: the planted wrong-nonce guest names two different ones each time.
    return {
        r["id"]: (r["status"], re.sub(r"'\d{6,}'", "'<nonce>'", r["message"]), r["remediation"])
        for r in document["findings"]
    }


def _sweep(client: LabClient) -> dict[str, Any]:
    result = client.cli("sweep", "--waivers", str(lab_waivers()), "--no-history", "-o", "json")
    assert result.code == ExitCode.FINDINGS, result.err
    return result.json()


def test_a_sweep_over_arc_finds_what_a_sweep_over_winrm_finds(clients: tuple[LabClient, LabClient]) -> None:
    winrm, arc = clients
    over_winrm = _sweep(winrm)
    # No reset in between: the lab's clock-relative dates (last sync, expiries) stay as they were.
    sent_over_winrm = winrm.invocations("host-facts")
    shells = {n["name"]: n["shells_created"] for n in arc.lab.snapshot()["nodes"]}
    over_arc = _sweep(arc)
    assert _results(over_arc) == _results(over_winrm)
    assert (over_winrm["run"]["source"], over_arc["run"]["source"]) == ("winrm", "arc+winrm")
    assert over_arc["run"]["targets"] == over_winrm["run"]["targets"]
    # hci-lab-01's nodes were not touched over WinRM: their scripts went through run commands.
    arc_nodes = [n for n in arc.lab.snapshot()["nodes"] if n["cluster"] == "hci-lab-01"]
    assert arc_nodes and all(n["shells_created"] == shells[n["name"]] for n in arc_nodes)
    # Over Arc the node's PowerShell runs arc-run.ps1, which runs host-facts in a runspace of its own.
    assert arc.invocations("host-facts") == 2 * sent_over_winrm - len(arc_nodes)
    commands = arc.lab.snapshot()["azure"]["run_commands"]
    nodes = len(arc_nodes)
    assert commands["requests"]["put"] == commands["scripts_run"] == commands["requests"]["delete"]
    assert arc.invocations("arc-run") == commands["scripts_run"]
    assert commands["requests"]["put"] >= nodes, "host facts on every node, guest probes where needed"
    assert commands["requests"]["list"] == nodes, "one check per node that nothing was left"


def _vm_record(result: Any) -> dict[str, Any]:
    record = dict(result.json()["vms"][0])
    return {k: v for k, v in record.items() if k not in ("seconds", "duration_s")}


def test_enable_and_disable_over_arc_do_what_they_do_over_winrm(
    clients: tuple[LabClient, LabClient], tmp_path: Path
) -> None:
    winrm, arc = clients
    over_winrm = winrm.cli("enable", "--vm", "avd-missing-nic", "-o", "json")
    assert over_winrm.code == ExitCode.OK, over_winrm.err
    winrm.lab.reset()
    (tmp_path / "audit.log").unlink()
    plan = arc.cli("enable", "--vm", "avd-missing-nic", "--what-if")
    assert plan.code == ExitCode.OK and arc.invocations("vm-benefits-enable") == 0, "what-if only reads"
    over_arc = arc.cli("enable", "--vm", "avd-missing-nic", "-o", "json")
    assert over_arc.code == ExitCode.OK, over_arc.err
    assert _vm_record(over_arc) == _vm_record(over_winrm)
    assert arc.vm("avd-missing-nic")["benefits"] == "v1"
    audit = (tmp_path / "audit.log").read_text()
    assert '"intended"' in audit and '"done"' in audit and "vm-benefits-enable" in audit
    again = arc.cli("enable", "--vm", "avd-missing-nic", "-o", "json")
    assert again.code == ExitCode.OK and again.json()["vms"][0]["result"] == "already"

    off = arc.cli("disable", "--vm", "avd-missing-nic", "--yes", "-o", "json")
    assert off.code == ExitCode.OK, off.err
    assert off.json()["vms"][0]["result"] == "changed"
    assert arc.vm("avd-missing-nic")["benefits"] != "v1"
    assert arc.invocations("vm-benefits-disable") == 0, "sent through a run command: arc-run.ps1 ran it"
    assert arc.lab.snapshot()["azure"]["run_commands"]["scripts_run"] >= 4


def test_an_answer_longer_than_the_instance_view_keeps_needs_an_output_container(
    clients: tuple[LabClient, LabClient],
) -> None:
    _, arc = clients
    text = arc.inventory.read_text()
    without = "\n".join(
        line for line in text.splitlines() if "output_container" not in line or "arc:" not in line
    )
    without = without.replace("    transport: arc", "    transport: arc\n    arc: {poll_interval: 0.05}")
    arc.inventory.write_text(without + "\n")
    result = arc.cli("status", "--cluster", "hci-lab-01", "-o", "json")
    assert result.code & ExitCode.INCOMPLETE
    assert "longer than the 4096 bytes" in result.err and "arc.output_container" in result.err
    assert arc.lab.snapshot()["azure"]["blobs"]["written"] == 0


def test_a_throttled_run_command_is_sent_again_after_the_wait_arm_asks_for(
    clients: tuple[LabClient, LabClient],
) -> None:
    _, arc = clients
    assert arc.lab.arm is not None
    arc.lab.arm.control({"throttle": {"target": "arm", "count": 1, "retry_after": 0.1}})
    result = arc.cli("status", "--cluster", "hci-lab-01", "-o", "json")
    assert not result.code & ExitCode.INCOMPLETE, result.err
    azure = arc.lab.snapshot()["azure"]
    assert azure["arm_throttled"] == 1
    assert azure["run_commands"]["scripts_run"] == 3, "each node's host facts ran exactly once"


def test_a_node_whose_arc_machine_is_disconnected_is_not_sent_anything(
    arc_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    arc_lab.reset()
    client_for(arc_lab, tmp_path, monkeypatch, capsys)
    arc = LabClient(
        arc_lab, arc_lab.write_inventory(tmp_path / "arc.yaml", arc_clusters=["hci-lab-02"]), capsys
    )
    result = arc.cli("status", "--cluster", "hci-lab-02", "-o", "json")
    assert result.code & ExitCode.INCOMPLETE
    assert "lab02-n2: unreachable: its Arc machine is Disconnected" in result.err
    assert arc.lab.snapshot()["azure"]["run_commands"]["by_machine"].get("lab02-n2") is None
    assert _left(arc_lab) == ([], [])


def test_a_run_command_stopped_by_the_deadline_is_deleted(clients: tuple[LabClient, LabClient]) -> None:
    _, arc = clients
    assert arc.lab.arm is not None
    commands = arc.lab.arm.run_commands
    commands.agent_delay_s = 3.0  # a real agent takes seconds to pick a command up
    try:
        started = time.monotonic()
        result = arc.cli("sweep", "--cluster", "hci-lab-01", "--deadline", "1s", "--no-history", "-o", "json")
        assert time.monotonic() - started < 2.9, "the deadline stopped the waiting, not the agent"
    finally:
        commands.agent_delay_s = 0.05
    assert result.code & ExitCode.INCOMPLETE
    assert result.json()["run"]["deadline_reached"] is True
    snapshot = arc.lab.snapshot()["azure"]["run_commands"]
    assert snapshot["created"] == 3 and snapshot["requests"]["delete"] == 3
    assert snapshot["scripts_run"] == 0, "deleted before the agent ran them"
