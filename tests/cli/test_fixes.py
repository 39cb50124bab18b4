"""Every fix shown is an exact command that fixes that finding (issue 10, "Fixes that fix")."""

from __future__ import annotations

import re
import shlex

from hcibenefit.exitcodes import ExitCode
from tests.integration.conftest import LabClient

PLACEHOLDER = re.compile(r"<node>|<vm>|<cluster>|--\w[\w-]* \?|\{\w+\}|for each node")


def _all_fixes(lab: LabClient) -> list[str]:
    fixes = [
        f["remediation"] for f in lab.cli("status", "-o", "json", "--fail-on", "none").json()["findings"]
    ]
    fixes += [r["fix"] for r in lab.cli("guest", "check", "-o", "json").json()["vms"] if r["fix"]]
    fixes += [
        v["fix"] for v in lab.cli("enable", "--all", "--what-if", "-o", "json").json()["vms"] if v["fix"]
    ]
    for action in ("enable", "sync"):
        plan = lab.cli("host", action, "--all", "--what-if", "-o", "json").json()
        fixes += [n["fix"] for n in plan["nodes"] if n["fix"]]
    return fixes


def test_no_fix_holds_a_placeholder_and_every_hcibenefit_command_in_one_parses(lab: LabClient) -> None:
    from hcibenefit.cli.app import cli_command

    fixes = _all_fixes(lab)
    assert len(fixes) > 20
    for fix in fixes:
        assert not PLACEHOLDER.search(fix), fix
        for command in re.findall(r"hcibenefit [^;(]+", fix):
            argv = shlex.split(command.split("  (")[0].strip())[1:]
            # The command line is one hcibenefit accepts (resilient parsing: no side effects).
            cli_command().make_context("hcibenefit", list(argv), resilient_parsing=True)


def test_the_fix_for_an_expiring_node_syncs_that_node_and_clears_the_warning(lab: LabClient) -> None:
    findings = lab.cli("status", "-o", "json", "--fail-on", "none").json()["findings"]
    (expiring,) = [f for f in findings if f["check"] == "node.attestation-expiring"]
    assert expiring["target"] == "lab01-n2"
    assert expiring["remediation"] == "hcibenefit host sync --cluster hci-lab-01 --node lab01-n2"
    done = lab.cli(*shlex.split(expiring["remediation"])[1:], "--yes")
    assert done.code == ExitCode.OK, done.out + done.err
    after = lab.cli("status", "--node", "lab01-n2", "-o", "json", "--fail-on", "none").json()
    assert after["nodes"][0]["verdict"] == "ok"


def test_a_fix_that_cannot_work_yet_says_what_to_do_first(lab: LabClient) -> None:
    findings = lab.cli("status", "-o", "json", "--fail-on", "none").json()["findings"]
    inactive = next(f for f in findings if f["check"] == "node.attestation-inactive")
    assert inactive["target"] == "lab02-n3"  # Az.StackHCI is missing there: host enable would be refused
    assert inactive["remediation"].startswith("first on lab02-n3: Install-Module -Name Az.StackHCI")
    assert inactive["remediation"].endswith(
        "then hcibenefit host enable --cluster hci-lab-02 --node lab02-n3"
    )
    gen1 = next(f for f in findings if f["target"] == "avd-gen1-running")
    # The VM by id: Stop-VM -Name takes a wildcard pattern.
    vm_id = lab.vm("avd-gen1-running")["id"]
    assert gen1["remediation"] == (
        f"on lab01-n2: Get-VM -Id {vm_id} | Stop-VM; then hcibenefit enable --vm avd-gen1-running; "
        f"then on lab01-n2: Get-VM -Id {vm_id} | Start-VM"
    )


def test_following_the_fixes_for_the_expired_node_makes_its_vm_ok(lab: LabClient) -> None:
    vm = next(
        f
        for f in lab.cli("status", "--vm", "avd-on-expired-node", "-o", "json").json()["findings"]
        if f["target"] == "avd-on-expired-node"
    )
    for step in vm["remediation"].split("  (")[0].removeprefix("first ").split("; then "):
        assert step.startswith("hcibenefit "), step
        assert lab.cli(*shlex.split(step)[1:], "--yes").code == ExitCode.OK, step
    after = lab.cli("status", "--vm", "avd-on-expired-node", "-o", "json").json()
    assert after["vms"][0]["verdict"] == "ok"
