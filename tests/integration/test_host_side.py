"""Host side against the lab over real WinRM: status, enable/disable, host enable/sync, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.spec import parse_fleet
from hcibenefit.lab.state import GUEST_NIC
from tests.checks.test_default_fleet_verdicts import EXPECTED_NODES, EXPECTED_VMS
from tests.integration.conftest import LabClient, client_for, start_lab

HOSTILE = "x'; Remove-VM -Name * -Force; '"


def _model_without(state: dict, names: set[str]) -> list[dict]:
    return [v for v in state["vms"] if v["name"] not in names]


def test_status_matches_the_lab_model_for_every_vm(lab: LabClient) -> None:
    result = lab.cli("status", "--format", "json")
    assert result.code == ExitCode.FINDINGS, result.err
    report = result.json()
    by_name = {v["name"]: v for v in report["vms"]}
    model = lab.state()
    assert set(by_name) == {v["name"] for v in model["vms"]}
    for vm in model["vms"]:
        record = by_name[vm["name"]]
        assert record["cluster"] == vm["cluster"] and record["node"] == vm["node"]
        assert record["generation"] == vm["generation"] and record["state"] == vm["state"]
        has_nic = any(n["name"] == GUEST_NIC for n in vm["nics"])
        assert (record["v1_nic"] is not None) == has_nic
        if record["v2_gsi"] is not None:
            assert record["v2_gsi"] == vm["gsi"]
        assert record["verdict"] == EXPECTED_VMS[vm["name"]], vm["name"]
    assert {n["name"]: n["verdict"] for n in report["nodes"]} == EXPECTED_NODES
    assert all({"name", "cluster", "verdict"} <= set(n) for n in report["nodes"] + report["vms"])


def test_status_costs_one_host_facts_call_per_node(lab: LabClient) -> None:
    lab.cli("status", "--format", "json")
    for node in lab.state()["nodes"]:
        assert node["invocations"] == {"host-facts": 1}


def test_status_table_and_filters(lab: LabClient) -> None:
    result = lab.cli("status", "--cluster", "hci-lab-02", "--vm", "w11*", "--fail-on", "none")
    assert result.code == ExitCode.OK
    assert "w11ms-gsi-off" in result.out and "avd-ok-01" not in result.out
    assert "missing" in result.out and "Guest Service Interface" in result.out


def test_enable_changes_exactly_the_targeted_vm_and_is_idempotent(lab: LabClient) -> None:
    before = lab.state()
    result = lab.cli("enable", "--vm", "avd-missing-nic", "--format", "json")
    assert result.code == ExitCode.OK, result.out + result.err
    record = result.json()["vms"][0]
    assert record["result"] == "changed" and record["steps"] == ["add-guest-nic"]
    assert record["after"]["v1_nic"] == {"switch": "AZSHCI_HOST-IMDS_DO_NOT_MODIFY", "connected": True}
    after = lab.state()
    assert _model_without(after, {"avd-missing-nic"}) == _model_without(before, {"avd-missing-nic"})
    assert lab.vm("avd-missing-nic")["benefits"] == "v1"
    sent = lab.invocations("vm-benefits-enable")
    again = lab.cli("enable", "--vm", "avd-missing-nic", "--format", "json")
    assert again.code == ExitCode.OK and again.json()["vms"][0]["result"] == "already"
    assert lab.invocations("vm-benefits-enable") == sent


def test_enable_v2_on_23h2_turns_on_the_guest_service_interface(lab: LabClient) -> None:
    result = lab.cli("enable", "--vm", "w11ms-gsi-off", "--format", "json")
    assert result.code == ExitCode.OK, result.out
    assert result.json()["vms"][0]["transport"] == "V2"
    assert lab.vm("w11ms-gsi-off")["gsi"] is True
    assert not any(n["name"] == GUEST_NIC for n in lab.vm("w11ms-gsi-off")["nics"])


def test_what_if_sends_nothing_and_prints_the_exact_call(lab: LabClient) -> None:
    before = lab.state()["vms"]
    result = lab.cli("enable", "--vm", "avd-missing-nic", "--vm", "w11ms-gsi-off", "--what-if")
    assert result.code == ExitCode.OK
    assert lab.invocations("vm-benefits-enable") == 0
    assert lab.state()["vms"] == before
    # VMs travel by id (a name would be a Hyper-V wildcard pattern); the call names them too.
    missing, gsi_off = lab.vm("avd-missing-nic")["id"], lab.vm("w11ms-gsi-off")["id"]
    assert (
        f"- vm-benefits-enable/2 on lab01-n1 for 'avd-missing-nic'\n    -NicVMId @('{missing}')\n"
        in result.out
    )
    assert (
        f"- vm-benefits-enable/2 on lab02-n1 for 'w11ms-gsi-off'\n    -GsiVMId @('{gsi_off}')\n" in result.out
    )


def test_several_changes_need_yes_without_a_terminal(lab: LabClient) -> None:
    result = lab.cli("enable", "--vm", "avd-missing-nic", "--vm", "w11ms-gsi-off")
    assert result.code == ExitCode.USAGE and "--yes" in result.err
    assert lab.invocations("vm-benefits-enable") == 0
    result = lab.cli(
        "enable", "--vm", "avd-missing-nic", "--vm", "w11ms-gsi-off", "--yes", "--format", "json"
    )
    assert result.code == ExitCode.OK
    assert [v["result"] for v in result.json()["vms"]] == ["changed", "changed"]


def test_refusals_say_why_and_change_nothing(lab: LabClient) -> None:
    before = lab.state()["vms"]
    result = lab.cli(
        "enable", "--vm", "avd-gen1-running", "--vm", "avd-on-expired-node", "--yes", "--format", "json"
    )
    assert result.code == ExitCode.INCOMPLETE
    records = {v["vm"]: v for v in result.json()["vms"]}
    assert records["avd-gen1-running"]["result"] == "refused"
    assert (
        "Generation 1" in records["avd-gen1-running"]["reason"]
        and "Stop-VM" in records["avd-gen1-running"]["fix"]
    )
    assert "Expired" in records["avd-on-expired-node"]["reason"]
    assert records["avd-on-expired-node"]["fix"] == (
        "first hcibenefit host sync --cluster hci-lab-01 --node lab01-n3; then hcibenefit enable --vm avd-on-expired-node"
    )
    assert lab.state()["vms"] == before and lab.invocations("vm-benefits-enable") == 0


def test_v1_enable_is_refused_where_a_node_lacks_the_switch(lab: LabClient) -> None:
    result = lab.cli("enable", "--vm", "w10ms-no-switch", "--format", "json")
    assert result.code == ExitCode.INCOMPLETE
    record = result.json()["vms"][0]
    assert record["result"] == "refused" and "Inactive" in record["reason"]


def test_disable_removes_the_guest_nic(lab: LabClient) -> None:
    refused = lab.cli("disable", "--vm", "avd-ok-01")
    assert refused.code == ExitCode.USAGE and "will lose Windows activation" in refused.err
    assert lab.vm("avd-ok-01")["benefits"] == "v1"
    result = lab.cli("disable", "--vm", "avd-ok-01", "--yes", "--format", "json")
    assert result.code == ExitCode.OK, result.out
    assert lab.vm("avd-ok-01")["benefits"] == "none"
    assert lab.cli("disable", "--vm", "avd-ok-01", "--format", "json").json()["vms"][0]["result"] == "already"


def test_host_sync_renews_expired_node_then_vm_is_ok(lab: LabClient) -> None:
    plan = lab.cli("host", "sync", "--cluster", "hci-lab-01", "--what-if", "--format", "json")
    assert [n["node"] for n in plan.json()["nodes"]] == ["lab01-n3"] and lab.invocations("host-sync") == 0
    result = lab.cli("host", "sync", "--cluster", "hci-lab-01", "--yes", "--format", "json")
    assert result.code == ExitCode.OK, result.out
    assert result.json()["nodes"][0]["after"] == "Active"
    status = lab.cli("status", "--vm", "avd-on-expired-node", "--format", "json").json()
    assert status["vms"][0]["verdict"] == "ok"


def test_host_enable_refuses_a_node_without_the_module(lab: LabClient) -> None:
    result = lab.cli("host", "enable", "--cluster", "hci-lab-02", "--format", "json")
    assert result.code == ExitCode.INCOMPLETE
    node = result.json()["nodes"][0]
    assert node["node"] == "lab02-n3" and node["result"] == "refused" and "Az.StackHCI" in node["reason"]
    assert lab.invocations("host-attestation-enable") == 0


def test_audit_log_records_who_what_before_after(lab: LabClient, tmp_path: Path) -> None:
    lab.cli("enable", "--vm", "avd-missing-nic")
    entries = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    intended, done = entries
    assert intended["phase"] == "intended" and done["phase"] == "done"
    assert intended["change"] == done["change"]
    for entry in entries:
        assert entry["vm"] == "avd-missing-nic" and entry["who"] and entry["remote_user"] == "labadmin"
        assert entry["before"]["v1_nic"] is None
    assert intended["script"] == "vm-benefits-enable/2"
    assert intended["parameters"] == {"NicVMId": [lab.vm("avd-missing-nic")["id"]]}
    assert done["result"] == "changed" and done["after"]["v1_nic"]["connected"] is True
    text = (tmp_path / "audit.log").read_text()
    assert "Pa55word" not in text


def test_unknown_vm_exits_2_with_close_matches(lab: LabClient) -> None:
    result = lab.cli("enable", "--vm", "avd-missing-nik")
    assert result.code == ExitCode.USAGE
    assert "avd-missing-nik" in result.err and "did you mean avd-missing-nic" in result.err
    assert lab.invocations("vm-benefits-enable") == 0


def test_unknown_cluster_exits_2(lab: LabClient) -> None:
    result = lab.cli("status", "--cluster", "hci-lab-3")
    assert result.code == ExitCode.USAGE and "hci-lab-0" in result.err


def test_hostile_name_is_never_script_text(lab: LabClient) -> None:
    before = lab.state()["vms"]
    result = lab.cli("enable", "--vm", HOSTILE)
    assert result.code == ExitCode.USAGE
    assert lab.state()["vms"] == before
    from hcibenefit.remoting.catalog import ALL_SCRIPTS

    assert all(HOSTILE not in s.text() for s in ALL_SCRIPTS)


def test_hostile_vm_name_is_a_parameter_value_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = parse_fleet(
        f"""
clusters:
  - name: c
    nodes: [n1]
    vms:
      - {{name: {json.dumps(HOSTILE)}, node: n1}}
      - {{name: bystander, node: n1}}
""",
        "hostile.yaml",
    )
    lab = start_lab(spec)
    try:
        client = client_for(lab, tmp_path, monkeypatch, capsys)
        result = client.cli("enable", "--vm", HOSTILE, "--format", "json")
        assert result.code == ExitCode.OK, result.out + result.err
        assert client.vm(HOSTILE)["benefits"] == "v1"
        assert client.vm("bystander")["benefits"] == "none"
        assert len(client.state()["vms"]) == 2
        assert lab.open_shells() == 0
    finally:
        lab.stop()


def test_wrong_password_is_an_authentication_error_per_node(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HCIBENEFIT_LAB_PASSWORD", "Wrong-Pa55word-123")
    failed_before = sum(n["failed_logons"] for n in lab.state()["nodes"])
    result = lab.cli("-vv", "status", "--format", "json")
    # Unreachable nodes are a high finding (cluster.node-unreachable) and make the sweep incomplete.
    assert result.code == ExitCode.FINDINGS_AND_INCOMPLETE
    nodes = result.json()["nodes"]
    # Tried once: the first node refuses, every other node sharing the credential is skipped (lockout).
    refused = [n for n in nodes if n["verdict"] == "unreachable"]
    assert len(refused) == 1 and refused[0]["reason"].startswith("authentication:")
    skipped = [n for n in nodes if n["verdict"] == "skipped"]
    assert len(skipped) == len(nodes) - 1
    assert all(f"was refused by {refused[0]['name']}" in n["reason"] for n in skipped)
    assert sum(n["failed_logons"] for n in lab.state()["nodes"]) - failed_before == 1
    warnings = [
        line for line in result.err.splitlines() if line.startswith("WARNING") and "not tried" in line
    ]
    assert len(warnings) == 1, result.err  # one line for all skipped nodes
    assert "Wrong-Pa55word-123" not in result.out + result.err


def test_unset_password_variable_changes_nothing(lab: LabClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCIBENEFIT_LAB_PASSWORD")
    result = lab.cli("enable", "--vm", "avd-missing-nic")
    assert result.code == ExitCode.USAGE and "HCIBENEFIT_LAB_PASSWORD" in result.err
    assert sum(n["requests"] for n in lab.state()["nodes"]) >= 0 and lab.invocations("host-facts") == 0
