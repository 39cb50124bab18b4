"""`checklist avd --fix`: the plan in order with what people must do (--what-if sends nothing), and --yes carrying
it out through host sync, enable and guest kick (audited, verified), then the checklist again: the fixable items
PASS, the rest keep their reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.lab.fleet import Lab
from tests.checklist.conftest import HEALTHY, checklist, planted, run_cli, statuses
from tests.integration.conftest import LabClient

pytestmark = pytest.mark.lab


def _plant_fixable(lab: Lab) -> None:
    with lab.state.lock:
        lab.state.node("avd-n2").attestation = "Expired"  # host sync
        lab.state.vms["sh-w11-01"].gsi = False  # enable (V2)
        guest = lab.state.vms["sh-w11-02"].guest
        guest.task = "Disabled"  # guest kick --enable-task
        guest.license_status = 5


def _unfixable(lab: Lab) -> Any:
    return next(v for v in lab.spec.clusters[0].vms if v.name == "sh-w10-01").azure


def _vms() -> list[str]:
    return [a for vm in HEALTHY for a in ("--vm", vm)]


def test_what_if_plans_in_order_and_sends_nothing(avd: LabClient) -> None:
    with planted(avd.lab, _unfixable(avd.lab), session_status="NeedsAssistance"):
        _plant_fixable(avd.lab)
        code, document = checklist(avd, *_vms(), "--fix", "--what-if")
        assert avd.invocations("host-sync") == 0 and avd.invocations("vm-benefits-enable") == 0
        assert avd.invocations("guest-kick") == 0
    assert code == 1 and document["go"] is False
    fix = document["fix"]
    assert fix["what_if"] is True
    steps = [(s["kind"], s["targets"]) for s in fix["steps"]]
    assert steps == [
        ("host-sync", ["avd-n2"]),
        ("vm-enable", ["sh-w11-01"]),
        ("guest-kick", ["sh-w11-02"]),
    ]
    assert fix["steps"][2]["command"] == "hcibenefit guest kick --vm sh-w11-02 --enable-task"
    for step in fix["steps"]:
        assert [o["result"] for o in step["outcomes"]] == ["would change"], step
    left = {(c["item"], c["owner"]) for c in fix["cannot_fix"]}
    assert ("session-host", "AVD admin") in left
    assert all(c["item"] != "verification-active" for c in fix["cannot_fix"])
    # The 23H2 warning is one line for every VM it concerns.
    release = next(c for c in fix["cannot_fix"] if c["item"] == "cluster-release")
    assert release["vms"] == list(HEALTHY)


def test_what_if_reads_as_a_plan(avd: LabClient) -> None:
    _plant_fixable(avd.lab)
    result = run_cli(avd, "--vm", "sh-w11-01", "--vm", "sh-w11-02", "--fix", "--what-if")
    assert result.code == 1
    out = result.out
    plan = out.index("plan: would run 3 step(s)")
    first = out.index("step 1: hcibenefit host sync --cluster hci-avd --node avd-n2")
    second = out.index("step 2: hcibenefit enable --vm sh-w11-01")
    third = out.index("step 3: hcibenefit guest kick --vm sh-w11-02 --enable-task")
    assert plan < first < second < third
    assert "left to HCI admin: sh-w11-01, sh-w11-02: Cluster on a supported Azure Local release" in out


def test_fix_yes_fixes_what_it_can_and_leaves_the_rest_with_their_reason(
    avd: LabClient, tmp_path: Path
) -> None:
    with planted(avd.lab, _unfixable(avd.lab), session_status="NeedsAssistance"):
        _plant_fixable(avd.lab)
        code, document = checklist(avd, *_vms(), "--fix", "--yes")
        assert avd.invocations("host-sync") == 1
    before, after = statuses(document["before"]), statuses(document)
    fixed = {
        ("sh-w11-01", "verification-active"),
        ("sh-w11-02", "verification-active"),
        ("sh-w10-01", "verification-active"),
        ("sh-w11-01", "benefits-configured"),
        ("sh-w11-02", "license-task"),
        ("sh-w11-02", "guest-activated"),
    }
    for key in fixed:
        assert (before[key], after[key]) == ("FAIL", "PASS"), key
    assert after[("sh-w10-01", "session-host")] == "FAIL"
    left = next(
        i
        for vm in document["vms"]
        if vm["vm"] == "sh-w10-01"
        for i in vm["items"]
        if i["item"] == "session-host"
    )
    assert "status NeedsAssistance" in left["evidence"] and left["owner"] == "AVD admin"
    assert {k for k, v in after.items() if v == "FAIL"} == {("sh-w10-01", "session-host")}
    assert code == 1 and document["go"] is False
    assert [[o["result"] for o in s["outcomes"]] for s in document["fix"]["steps"]] == [
        ["changed"],
        ["changed"],
        ["kicked"],
    ]
    assert document["fix"]["summary"].endswith("after: NO-GO")
    # Every change went through the audit log, written ahead of sending and closed after.
    lines = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    phases = [(r["action"], r["phase"]) for r in lines if "phase" in r]
    for action in ("host-sync", "enable", "guest-kick"):
        assert (action, "intended") in phases and (action, "done") in phases, (action, phases)
    assert avd.lab.open_shells() == 0


def test_fix_without_yes_and_without_a_terminal_changes_nothing(avd: LabClient) -> None:
    _plant_fixable(avd.lab)
    result = run_cli(avd, "--vm", "sh-w11-01", "--vm", "sh-w11-02", "--fix")
    assert result.code == 2 and "without confirmation" in result.err
    assert avd.invocations("host-sync") == 0
    result = run_cli(avd, "--vm", "sh-w11-01", "--what-if")
    assert result.code == 2 and "--what-if and --yes go with --fix" in result.err


def test_nothing_to_fix_says_so(avd: LabClient) -> None:
    code, document = checklist(avd, "--vm", "sh-w11-01", "--fix", "--yes")
    assert code == 0 and document["go"] is True
    assert document["fix"]["steps"] == [] and document["fix"]["summary"].startswith(
        "nothing hcibenefit can fix"
    )
