"""Issue 10: VMs on a node that cannot be reached do not vanish. Another node of the cluster names them
(Get-ClusterGroup, read in the same host-facts call) and `status` and `sweep` list each by name as not
assessed, with why; nothing else about them is made up. A cluster none of whose nodes answered keeps its
per-node reporting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.spec import parse_fleet
from tests.integration.conftest import LabClient, fresh_client, running_lab

SPLIT = """
clusters:
  - name: split
    nodes:
      - s-ok
      - {name: s-down, faults: {down: true}}
      - {name: s-auth, faults: {auth_fail: true}}
    vms:
      - {name: vm-ok, node: s-ok, benefits: v1}
      - {name: avd-down-1, node: s-down, benefits: v1}
      - {name: avd-down-2, node: s-down, state: Off}
      - {name: sql-auth, node: s-auth, edition: ServerDatacenter, os: Windows Server 2022 Datacenter}
  - name: dark
    nodes:
      - {name: d-1, faults: {down: true}}
    vms:
      - {name: dark-vm, node: d-1}
"""
NAMED = {"avd-down-1": "s-down", "avd-down-2": "s-down", "sql-auth": "s-auth"}


@pytest.fixture(scope="module")
def split_lab() -> Iterator[Lab]:
    yield from running_lab(parse_fleet(SPLIT, "split.yaml"), read_timeout=3.0)


@pytest.fixture
def split(
    split_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    yield from fresh_client(split_lab, tmp_path, monkeypatch, capsys)


def test_status_names_each_vm_of_an_unreachable_node_as_not_assessed(split: LabClient) -> None:
    result = split.cli("status", "-o", "json", "--fail-on", "none")
    assert result.code == ExitCode.INCOMPLETE, result.err
    document = result.json()
    vms = {v["name"]: v for v in document["vms"]}
    assert set(vms) == {"vm-ok", *NAMED}  # dark-vm: no node of its cluster answered
    for name, node in NAMED.items():
        vm = vms[name]
        assert (vm["verdict"], vm["node"], vm["cluster"], vm["named_by"]) == (
            "not-assessed",
            node,
            "split",
            "s-ok",
        )
        assert vm["reason"].startswith(f"not assessed: its node {node} was not reached (")
        # Nothing the node would have told is invented.
        assert vm["state"] is vm["generation"] is vm["needs_benefits"] is vm["v1_nic"] is vm["id"] is None
        assert vm["findings"] == []
    assert "authentication" in vms["sql-auth"]["reason"] and vms["sql-auth"]["role_state"] == "Online"
    # The lab does not fail roles over: the Down node's roles stay there, Failed (docs/lab.md).
    assert vms["avd-down-1"]["role_state"] == "Failed"
    assert document["summary"]["vm_verdicts"]["not-assessed"] == 3 and document["summary"]["incomplete"]
    nodes = {n["node"]: n for n in document["not_assessed"]}
    assert nodes["s-down"]["vm_names"] == ["avd-down-1", "avd-down-2"]
    assert "listed under vms as not-assessed" in nodes["s-down"]["vms"]
    assert (
        nodes["d-1"]["vm_names"] == []
        and nodes["d-1"]["vms"] == "the VMs on this node could not be listed or assessed"
    )
    assert {n["name"]: n["verdict"] for n in document["nodes"]}["s-down"] == "unreachable"


def test_selection_applies_to_the_named_vms(split: LabClient) -> None:
    globbed = split.cli("status", "-o", "json", "--fail-on", "none", "--vm", "avd-down-*")
    assert globbed.code == ExitCode.INCOMPLETE, globbed.err
    assert [v["name"] for v in globbed.json()["vms"]] == ["avd-down-1", "avd-down-2"]
    exact = split.cli("status", "-o", "json", "--fail-on", "none", "--vm", "sql-auth")
    assert [v["name"] for v in exact.json()["vms"]] == ["sql-auth"]
    assert not [n for n in exact.json()["not_assessed"] if n.get("vm")]  # found: not "not found"
    by_verdict = split.cli("status", "-o", "json", "--fail-on", "none", "--verdict", "not-assessed")
    assert {v["name"] for v in by_verdict.json()["vms"]} == set(NAMED)
    healthy = split.cli("status", "-o", "json", "--fail-on", "none", "--verdict", "ok")
    assert [v["name"] for v in healthy.json()["vms"]] == ["vm-ok"]


def test_the_status_table_shows_them_with_why(split: LabClient) -> None:
    result = split.cli("status", "--wide", "--fail-on", "none")
    rows = [line for line in result.out.splitlines() if "avd-down-1" in line]
    assert rows and "not-assessed" in rows[0], result.out
    assert "its node s-down was not reached" in " ".join(result.out.split())


def test_sweep_reports_every_check_of_each_named_vm_as_error_with_why(split: LabClient) -> None:
    result = split.cli("sweep", "-o", "json", "--no-history", "--fail-on", "none")
    assert result.code == ExitCode.INCOMPLETE, result.err
    document = result.json()
    mine = [f for f in document["findings"] if f["vm"] == "avd-down-1"]
    assert mine and all(f["status"] == "ERROR" and f["node"] == "s-down" for f in mine)
    assert {f["scope"] for f in mine} == {"vm", "guest"}
    assert all("its node s-down was not reached" in f["message"] for f in mine)
    assert "vm.benefits-missing/split/s-down/avd-down-1" in {f["id"] for f in mine}
    not_assessed = {(t["node"], t["vm"]) for t in document["run"]["targets"]["not_assessed"]}
    assert {
        ("s-down", "avd-down-1"),
        ("s-down", "avd-down-2"),
        ("s-auth", "sql-auth"),
        ("d-1", None),
    } <= not_assessed
    assert not any(f["vm"] == "dark-vm" for f in document["findings"])
    only = split.cli("sweep", "-o", "json", "--no-history", "--fail-on", "none", "--vm", "avd-down-2")
    assert {f["vm"] for f in only.json()["findings"] if f["vm"]} == {"avd-down-2"}


def test_policy_exclusions_apply_to_them_too(split: LabClient) -> None:
    split.inventory.write_text(split.inventory.read_text() + 'policy:\n  exclude_globs: ["avd-down-2"]\n')
    status = split.cli("status", "-o", "json", "--fail-on", "none").json()
    assert "avd-down-2" not in {v["name"] for v in status["vms"]}
    assert {(e["name"], e["node"], e["rule"]) for e in status["excluded"]} == {
        ("avd-down-2", "s-down", "avd-down-2")
    }
    sweep = split.cli("sweep", "-o", "json", "--no-history", "--fail-on", "none").json()
    assert not any(f["vm"] == "avd-down-2" for f in sweep["findings"])
    excluded = sweep["run"]["targets"]["excluded"]
    assert [(e["vm"], e["node"], e["rule"]) for e in excluded] == [("avd-down-2", "s-down", "avd-down-2")]


# --- the same selection in guest check, guest kick, enable and disable -------------------------------


def _guest_records(document: dict[str, object]) -> dict[str, dict[str, object]]:
    vms = document["vms"]
    assert isinstance(vms, list)
    return {str(v["vm"]): v for v in vms}


def test_guest_check_glob_names_the_vms_of_an_unreachable_node(split: LabClient) -> None:
    result = split.cli("guest", "check", "-o", "json", "--cluster", "split", "--vm", "avd-down-*")
    assert result.code & ExitCode.INCOMPLETE, result.err
    records = _guest_records(result.json())
    assert set(records) == {"avd-down-1", "avd-down-2"}
    for record in records.values():
        assert (record["verdict"], record["reason"], record["node"], record["cluster"]) == (
            "not-assessable",
            "node-unreachable",
            "s-down",
            "split",
        )
        assert "its node s-down was not reached" in str(record["detail"])
        assert "s-ok names it" in str(record["detail"])
    assert "s-down" in result.json()["unreachable_nodes"]


def test_guest_check_of_the_whole_cluster_lists_them_too(split: LabClient) -> None:
    result = split.cli("guest", "check", "-o", "json", "--cluster", "split", "--all")
    records = _guest_records(result.json())
    assert {"avd-down-1", "avd-down-2", "sql-auth"} <= set(records)
    assert records["sql-auth"]["node"] == "s-auth" and "authentication" in str(records["sql-auth"]["detail"])


def test_guest_kick_of_a_vm_on_an_unreachable_node_says_so_and_sends_nothing(split: LabClient) -> None:
    result = split.cli("guest", "kick", "-o", "json", "--vm", "avd-down-1", "--yes")
    assert result.code == ExitCode.INCOMPLETE, result.err
    document = result.json()
    (record,) = document["vms"]
    assert (record["vm"], record["node"], record["result"]) == ("avd-down-1", "s-down", "skipped")
    assert "its node s-down was not reached" in record["why"]
    assert document["calls"] == []


@pytest.mark.parametrize("action", ["enable", "disable"])
def test_enable_and_disable_name_a_vm_on_an_unreachable_node_and_change_nothing(
    split: LabClient, action: str
) -> None:
    result = split.cli(action, "-o", "json", "--vm", "avd-down-1", "--yes")
    assert result.code == ExitCode.INCOMPLETE, result.err
    document = result.json()
    assert document["vms"] == [] and document["calls"] == []
    assert document["not_assessed"]["avd-down-1"].startswith("not assessed: its node s-down was not reached")
    (vm,) = document["not_assessed_vms"]
    assert (vm["name"], vm["cluster"], vm["node"], vm["named_by"]) == (
        "avd-down-1",
        "split",
        "s-down",
        "s-ok",
    )
    table = split.cli(action, "--vm", "avd-down-1", "--yes")
    row = next(line for line in table.out.splitlines() if "avd-down-1" in line)
    assert "s-down" in row and "not assessed" in row, table.out


def test_enable_glob_lists_the_vms_of_an_unreachable_node_as_not_assessed(split: LabClient) -> None:
    result = split.cli("enable", "-o", "json", "--vm", "avd-down-*", "--what-if")
    assert result.code == ExitCode.INCOMPLETE, result.err
    document = result.json()
    assert set(document["not_assessed"]) == {"avd-down-1", "avd-down-2"}
    assert "avd-down-*" not in document["not_assessed"]
