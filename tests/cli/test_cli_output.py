"""What the CLI shows: names from hosts escaped, unambiguous what-if, every VM accounted for (issues 9, 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.spec import parse_fleet
from tests.integration.conftest import LabClient, client_for, start_lab

ESCAPED = "avd-esc\x1b[31mRED\x1b[0m\x1b]0;pwned\x07"
FORGED = "avd-nl\nhci-lab-01  lab01-n1  forged-vm  ok"
COMMA = "avd-x,sql-target"
FLEET = f"""
clusters:
  - name: c
    nodes: [n1]
    vms:
      - {{name: {json.dumps(ESCAPED)}, node: n1, benefits: none}}
      - {{name: {json.dumps(FORGED)}, node: n1, benefits: none}}
      - {{name: {json.dumps(COMMA)}, node: n1, benefits: none}}
      - {{name: avd-a, node: n1, benefits: none}}
      - {{name: sql-target, node: n1, benefits: none}}
"""


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    lab = start_lab(parse_fleet(FLEET, "hostile-names.yaml"))
    try:
        yield client_for(lab, tmp_path, monkeypatch, capsys)
    finally:
        lab.stop()


def test_control_characters_in_names_are_escaped_in_tables_and_exact_in_json(hostile: LabClient) -> None:
    table = hostile.cli("status", "--fail-on", "none")
    assert "\x1b" not in table.out + table.err and "\x07" not in table.out + table.err
    assert "avd-esc\\x1b[31mRED\\x1b[0m\\x1b]0;pwned\\x07" in table.out
    # The newline is shown as \n: it cannot start a line that looks like a row of its own.
    assert "avd-nl\\nhci-lab-01  lab01-n1  forged-vm  ok" in table.out
    assert not any(line.startswith("hci-lab-01  lab01-n1  forged-vm") for line in table.out.splitlines())
    names = {v["name"] for v in hostile.cli("status", "-o", "json", "--fail-on", "none").json()["vms"]}
    assert {ESCAPED, FORGED, COMMA} <= names


def test_what_if_shows_each_target_separately_and_quoted(hostile: LabClient) -> None:
    result = hostile.cli("enable", "--vm", COMMA, "--vm", "avd-a", "--what-if")
    assert result.code == ExitCode.OK, result.err
    ids = [hostile.vm(COMMA)["id"], hostile.vm("avd-a")["id"]]
    # The VMs travel by id (a name is a Hyper-V wildcard pattern); the call names them, each quoted.
    assert "vm-benefits-enable/2 on n1 for 'avd-x,sql-target', 'avd-a'\n" in result.out
    assert f"-NicVMId @('{ids[0]}', '{ids[1]}')" in result.out
    assert hostile.invocations("vm-benefits-enable") == 0
    data = hostile.cli("enable", "--vm", COMMA, "--vm", "avd-a", "--what-if", "-o", "json").json()
    assert data["calls"][0]["parameters"] == {"NicVMId": ids}
    assert data["calls"][0]["vms"] == [COMMA, "avd-a"]
    assert "sql-target" not in [v["vm"] for v in data["vms"]]


def test_what_if_with_v_shows_the_script_text(lab: LabClient) -> None:
    from hcibenefit.remoting.catalog import VM_BENEFITS_ENABLE

    plain = lab.cli("enable", "--vm", "avd-missing-nic", "--what-if")
    verbose = lab.cli("enable", "--vm", "avd-missing-nic", "--what-if", "-v")
    first_line = VM_BENEFITS_ENABLE.text().splitlines()[0]
    assert first_line not in plain.out and first_line in verbose.out
    assert "param(" in verbose.out
    assert lab.invocations("vm-benefits-enable") == 0


def test_all_eligible_what_if_lists_what_it_would_do_and_every_vm_it_would_not_touch(lab: LabClient) -> None:
    result = lab.cli("enable", "--all-eligible", "--what-if", "-o", "json")
    records = {v["vm"]: v for v in result.json()["vms"]}
    model = {v["name"] for v in lab.state()["vms"]}
    assert set(records) == model  # every VM of the selection, none silently left out
    assert records["avd-missing-nic"]["result"] == "planned"
    assert records["w11ms-gsi-off"]["result"] == "planned"
    gen1 = records["avd-gen1-running"]
    assert gen1["result"] == "refused" and "Generation 1" in gen1["reason"] and "Stop-VM" in gen1["fix"]
    assert (
        records["sql-01"]["result"] == "skipped" and "without Azure Benefits" in records["sql-01"]["reason"]
    )
    assert records["avd-ok-01"]["result"] == "already"
    table = lab.cli("enable", "--all-eligible", "--what-if")
    assert "would change" in table.out and "not touched" in table.out and "fix:" in table.out
    assert lab.invocations("vm-benefits-enable") == 0


def test_excluded_vms_are_reported_as_excluded_with_the_rule(lab: LabClient) -> None:
    lab.inventory.write_text(lab.inventory.read_text() + 'policy:\n  exclude_globs: ["sql-*", "avd-twice"]\n')
    document = lab.cli("status", "-o", "json", "--fail-on", "none").json()
    assert {v["name"] for v in document["vms"]}.isdisjoint({"sql-01", "avd-twice"})
    assert {(e["name"], e["rule"]) for e in document["excluded"]} == {
        ("sql-01", "sql-*"),
        ("avd-twice", "avd-twice"),
    }
    table = lab.cli("status", "--fail-on", "none")
    assert (
        "excluded by policy.exclude_globs" in table.out
        and "activates without Azure Benefits" not in table.out
    )
    named = lab.cli("status", "--vm", "sql-01", "-o", "json", "--fail-on", "none").json()["vms"]
    assert named[0]["verdict"] == "excluded" and "sql-*" in named[0]["reason"]
    refused = lab.cli("enable", "--vm", "avd-twice", "-o", "json").json()["vms"][0]
    assert refused["result"] == "refused" and "policy.exclude_globs" in refused["reason"]
    assert "avd-twice" not in {
        r["vm"] for r in lab.cli("guest", "check", "--all", "-o", "json").json()["vms"]
    }


def test_vms_on_unreachable_nodes_are_listed_as_not_assessed(lab: LabClient) -> None:
    lab.lab.set_faults("lab01-n3", down=True)
    document = lab.cli("status", "-o", "json", "--fail-on", "none").json()
    assert document["summary"]["incomplete"] is True
    (node,) = [n for n in document["not_assessed"] if "node" in n]
    assert node["node"] == "lab01-n3" and node["cluster"] == "hci-lab-01"
    # The other nodes of hci-lab-01 name the VM roles lab01-n3 owns (Get-ClusterGroup): listed by name.
    assert node["vm_names"] == ["avd-on-expired-node"]
    listed = {v["name"]: v for v in document["vms"]}["avd-on-expired-node"]
    assert listed["verdict"] == "not-assessed" and "lab01-n3 was not reached" in listed["reason"]
    named = lab.cli("status", "--vm", "avd-on-expired-node", "-o", "json", "--fail-on", "none")
    assert named.code == ExitCode.INCOMPLETE
    assert [(v["name"], v["verdict"]) for v in named.json()["vms"]] == [
        ("avd-on-expired-node", "not-assessed")
    ]
    # A name no answering node knows is still reported as possibly on the unreachable node.
    unknown = lab.cli("status", "--vm", "avd-nowhere", "-o", "json", "--fail-on", "none").json()
    assert {"vm": "avd-nowhere"}.items() <= next(i for i in unknown["not_assessed"] if "vm" in i).items()


def test_completion_offers_cluster_and_vm_names_from_the_inventory(lab: LabClient, tmp_path: Path) -> None:
    lab.cli("status", "--fail-on", "none")  # remembers the VM names it saw
    env = {
        **os.environ,
        "HCIBENEFIT_INVENTORY": str(lab.inventory),
        "_HCIBENEFIT_COMPLETE": "complete_bash",
    }

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        result = subprocess.run(
            [sys.executable, "-m", "hcibenefit"],
            env={**env, "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        return [w.split(",", 1)[-1] for w in result.stdout.split()]

    assert set(complete("hcibenefit status --cluster hci-lab-")) >= {"hci-lab-01", "hci-lab-02"}
    assert set(complete("hcibenefit enable --vm avd-m")) == {"avd-missing-nic"}
    assert "missing" in complete("hcibenefit status --verdict mis")
