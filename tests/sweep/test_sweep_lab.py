"""`hcibenefit sweep` against the lab over real WinRM: results, exit codes, failing nodes, history, waivers."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from pathlib import Path

import pytest

from hcibenefit.cli.app import run
from hcibenefit.cli.sweep_cmd import lab_waivers
from tests.integration.conftest import LabClient, requests_when_azure_opens
from tests.sweep.conftest import by_id, sweep, sweep_json, validate

pytestmark = pytest.mark.lab


def test_default_fleet_results(lab: LabClient) -> None:
    code, doc = sweep_json(lab, "--no-history")
    validate(doc)
    assert code == 1, "planted findings, the planted unassessable guests waived"
    results = by_id(doc)
    # Every planted failure mode shows up as a FAIL under its stable id.
    expected_fail = {
        "node.attestation-expired/hci-lab-01/lab01-n3/-",
        "node.attestation-expiring/hci-lab-01/lab01-n2/-",
        "node.attestation-inactive/hci-lab-02/lab02-n3/-",
        "node.switch-missing/hci-lab-02/lab02-n3/-",
        "node.switch-altered/hci-lab-02/lab02-n2/-",
        "node.module-missing/hci-lab-02/lab02-n3/-",
        "vm.benefits-missing/hci-lab-01/lab01-n1/avd-missing-nic",
        "vm.benefits-missing/hci-lab-02/lab02-n1/w11ms-gsi-off",
        "vm.guest-nic-disconnected/hci-lab-02/lab02-n3/w10ms-no-switch",
        "vm.data-exchange-off/hci-lab-02/lab02-n1/azedition-kvp-off",
        "guest.license-task/hci-lab-01/lab01-n2/azedition-task-disabled",
        "guest.attested-document/hci-lab-01/lab01-n2/avd-chain-broken",
        "guest.attested-document/hci-lab-01/lab01-n2/avd-tampered",
        "guest.attested-document/hci-lab-01/lab01-n1/avd-wrong-nonce",
        "guest.imds-reachable/hci-lab-01/lab01-n1/avd-imds-blocked",
        "guest.activated/hci-lab-01/lab01-n1/avd-twice",
    }
    assert {i for i in expected_fail if results[i]["status"] == "FAIL"} == expected_fail
    # Healthy targets pass; checks that are not about a target say why.
    assert results["guest.activated/hci-lab-01/lab01-n1/avd-ok-01"]["status"] == "PASS"
    assert results["guest.attested-document/hci-lab-01/lab01-n1/avd-ok-01"]["status"] == "PASS"
    assert results["node.attestation-expired/hci-lab-01/lab01-n1/-"]["status"] == "PASS"
    na = results["guest.activated/hci-lab-01/lab01-n1/sql-01"]
    assert na["status"] == "N/A" and "does not need Azure Benefits" in na["message"]
    off = results["guest.activated/hci-lab-01/lab01-n2/avd-off"]
    assert off["status"] == "N/A" and "off" in off["message"].lower()
    v2 = results["guest.imds-reachable/hci-lab-02/lab02-n1/w11ms-v2-ok"]
    assert v2["status"] == "N/A" and "V2" in v2["message"]
    # The planted unassessable guests are ERRORs with why, waived by the lab's waivers file.
    creds = results["guest.activated/hci-lab-01/lab01-n1/avd-bad-guest-creds"]
    assert creds["status"] == "ERROR" and creds["waived"] and "credential" in creds["message"]
    # Every check gives one result per target: no duplicate ids, one record per (check, target).
    assert len(results) == len(doc["findings"])
    assert doc["run"]["targets"]["assessed"] == {"nodes": 8, "vms": 28, "guests": 20}
    assert doc["summary"]["FAIL"] == sum(
        1 for r in doc["findings"] if r["status"] == "FAIL" and not r["waived"]
    )
    assert sum(doc["summary"][k] for k in ("FAIL", "ERROR", "PASS", "N/A", "waived")) == len(doc["findings"])


def test_a_failing_check_without_waivers_is_incomplete(lab: LabClient, tmp_path: Path) -> None:
    empty = tmp_path / "none.yaml"
    empty.write_text("waivers: []\n")
    code, doc = sweep_json(lab, "--no-history", waivers=empty)
    assert code == 5
    assert doc["summary"]["waived"] == 0


def test_sweep_lab_flag_exits_1_and_writes_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HCIBENEFIT_HISTORY", str(tmp_path / "h.sqlite"))
    code = run(["sweep", "--lab", "--report-dir", str(tmp_path / "reports")])
    out = capsys.readouterr().out
    assert code == 1
    assert "hci-lab-01" in out and "fix: hcibenefit enable --vm avd-missing-nic" in out
    names = sorted(p.name for p in (tmp_path / "reports").iterdir())
    stamp = names[0].split(".")[0]
    assert stamp.startswith("hcibenefit-sweep-") and stamp.endswith("Z")
    for ext in ("txt", "json", "csv", "md", "html", "junit.xml"):
        assert f"{stamp}.{ext}" in names
        assert f"hcibenefit-sweep-latest.{ext}" in names
    validate(json.loads((tmp_path / "reports" / f"{stamp}.json").read_text()))


def _impatient(lab: LabClient) -> None:
    """A 2 s read timeout, so a hanging node costs the test 2 s, not the lab's usual 6."""
    text = lab.inventory.read_text()
    text = text.replace(f"read_timeout: {lab.lab.read_timeout:g}", "read_timeout: 2")
    text = text.replace(f"operation_timeout: {max(1.0, lab.lab.read_timeout - 5):g}", "operation_timeout: 1")
    lab.inventory.write_text(text)


def test_one_node_down_one_hanging(lab: LabClient, tmp_path: Path) -> None:
    lab.lab.set_faults("lab01-n2", down=True)
    lab.lab.set_faults("lab02-n1", hang=True)
    _impatient(lab)
    code, doc = sweep_json(lab, "--no-history", "--report-dir", str(tmp_path / "r"))
    assert code == 5
    missing = {t["node"]: t["reason"] for t in doc["run"]["targets"]["not_assessed"] if t["vm"] is None}
    assert set(missing) == {"lab01-n2", "lab02-n1"}
    assert "unreachable" in missing["lab01-n2"]
    assert "timeout" in missing["lab02-n1"] or "did not answer" in missing["lab02-n1"]
    results = by_id(doc)
    for node in ("lab01-n2", "lab02-n1"):
        cluster = "hci-lab-01" if node.startswith("lab01") else "hci-lab-02"
        assert results[f"node.attestation-expired/{cluster}/{node}/-"]["status"] == "ERROR"
    # Every other node and its guests were still assessed.
    assert doc["run"]["targets"]["assessed"]["nodes"] == 6
    assert results["node.attestation-expired/hci-lab-01/lab01-n3/-"]["status"] == "FAIL"
    assert results["guest.activated/hci-lab-01/lab01-n1/avd-ok-01"]["status"] == "PASS"
    assert results["guest.license-task/hci-lab-02/lab02-n3/w10ms-no-switch"]["status"] == "FAIL"
    table = (tmp_path / "r" / "hcibenefit-sweep-latest.txt").read_text()
    assert "lab01-n2" in table and "lab02-n1" in table and "not assessed" in table


def test_deadline_reports_what_is_not_done(lab: LabClient) -> None:
    lab.lab.set_faults("lab02-n1", hang=True)
    _impatient(lab)
    code, doc = sweep_json(lab, "--no-history", "--deadline", "1s", "--parallel", "1")
    assert code & 4
    assert doc["run"]["deadline_reached"] is True
    reasons = " ".join(t["reason"] for t in doc["run"]["targets"]["not_assessed"])
    assert "deadline" in reasons


def test_two_sweeps_one_change_history_diff_shows_it(lab: LabClient) -> None:
    first = sweep(lab)
    assert first.code == 1
    # One change on the fleet between the runs: a node that synced (its attestation no longer expiring).
    with lab.lab.state.lock:
        node = lab.lab.state.node("lab01-n2")
        node.expiration = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=25)
    code, doc = sweep_json(lab)
    assert code == 1
    changes = doc["changes"]
    assert [r["id"] for r in changes["resolved"]] == ["node.attestation-expiring/hci-lab-01/lab01-n2/-"]
    assert changes["new"] == [] and changes["changed"] == []
    diff = lab.cli("history", "diff", "-o", "json")
    data = json.loads(diff.out)
    assert [r["id"] for r in data["resolved"]] == ["node.attestation-expiring/hci-lab-01/lab01-n2/-"]
    assert data["new"] == [] and data["changed"] == []
    assert diff.code == 0
    listed = json.loads(lab.cli("history", "list", "-o", "json").out)
    assert [r["id"] for r in listed["runs"]] == [2, 1] and listed["command"] == "history list"
    shown = json.loads(lab.cli("history", "show", "1", "-o", "json").out)
    validate(shown)
    assert shown["run"]["id"] == 1


def test_a_waiver_silences_exactly_its_target_until_it_expires(lab: LabClient, tmp_path: Path) -> None:
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n"
        "  - check: node.attestation-expired\n"
        "    target: hci-lab-01/lab01-n3\n"
        "    reason: node is being replaced (CHG0042)\n"
        "    owner: alice\n"
        f"    expires: {tomorrow}\n"
        "  - check: node.switch-*\n"
        "    target: hci-lab-02/lab02-n2\n"
        "    reason: switch rename accepted until the maintenance window\n"
        f"    expires: {yesterday}\n"
        "  - check: guest.*\n"
        "    target: '*/*/avd-bad-guest-creds'\n"
        "    reason: planted\n"
        "  - check: guest.*\n"
        "    target: '*/*/w11ms-direct-fails'\n"
        "    reason: planted\n"
    )
    code, doc = sweep_json(lab, "--no-history", waivers=waivers)
    validate(doc)
    waived = {r["id"] for r in doc["findings"] if r["waived"] and not r["id"].startswith("guest.")}
    assert waived == {"node.attestation-expired/hci-lab-01/lab01-n3/-"}
    record = by_id(doc)["node.attestation-expired/hci-lab-01/lab01-n3/-"]
    assert record["waiver_reason"] == "node is being replaced (CHG0042)" and record["waiver_owner"] == "alice"
    expired = by_id(doc)["node.switch-altered/hci-lab-02/lab02-n2/-"]
    assert expired["status"] == "FAIL" and not expired["waived"] and expired["waiver_expired"] is True
    uses = {w["check"]: w for w in doc["waivers"]}
    assert uses["node.switch-*"]["expired"] and uses["node.switch-*"]["matched"]
    text = sweep(lab, "--no-history", waivers=waivers)
    assert "expired" in text.err or "expired" in text.out
    assert code == 1


def test_bad_waivers_file_changes_nothing(lab: LabClient, tmp_path: Path) -> None:
    waivers = tmp_path / "w.yaml"
    waivers.write_text("waivers:\n  - check: node.atestation-expired\n    target: x\n")
    before = lab.state()["nodes"]
    result = sweep(lab, "--no-history", waivers=waivers)
    assert result.code == 2
    assert f"{waivers}:2:12: waivers[0].check: no check matches" in result.err
    assert 'did you mean "node.attestation-expired"' in result.err
    assert f"{waivers}:2:5: waivers[0].reason: missing required key" in result.err
    after = lab.state()["nodes"]
    assert [n["requests"] for n in after] == [n["requests"] for n in before], "nothing was sent"


def test_one_session_per_node(lab: LabClient) -> None:
    before = {n["name"]: (n["requests"], n["shells_created"]) for n in lab.state()["nodes"]}
    sweep(lab, "--no-history")
    after = {n["name"]: (n["requests"], n["shells_created"]) for n in lab.state()["nodes"]}
    shells = {k: after[k][1] - before[k][1] for k in after}
    requests = {k: after[k][0] - before[k][0] for k in after}
    # Host facts and the guest probe through one runspace pool per node: the shell, two pipelines and the
    # session-key exchange for the guest credential. Issue 14's target for a sweep: at most 10 per node.
    assert set(shells.values()) == {1}, shells
    assert max(requests.values()) <= 10, requests


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_on_a_terminal_only(lab: LabClient, monkeypatch: pytest.MonkeyPatch, quiet: bool) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    args = ["-q"] if quiet else []
    code = run([*args, "-i", str(lab.inventory), "sweep", "--no-history", "--waivers", str(lab_waivers())])
    assert code == 1
    shown = terminal.getvalue()
    if quiet:
        assert "sweep: nodes" not in shown
    else:
        assert "\rsweep: nodes 8/8 · guests 22/22 · 2 guest(s) not asked" in shown
        assert shown.endswith("\r"), "the progress line is cleared before the report"


def test_no_progress_when_stderr_is_not_a_terminal(lab: LabClient) -> None:
    result = sweep(lab, "--no-history")
    assert "sweep: nodes" not in result.err


def test_the_selection_is_the_one_every_command_uses(lab: LabClient) -> None:
    code, doc = sweep_json(
        lab, "--no-history", "--cluster", "HCI-LAB-02", "--vm", "w11*", "--node", "lab02-n1"
    )
    assert {r["cluster"] for r in doc["findings"]} == {"hci-lab-02"}
    hosts = [r for r in doc["findings"] if r["scope"] != "azure"]
    assert {r["node"] for r in hosts} == {"lab02-n1"}
    assert {r["vm"] for r in hosts if r["vm"]} == {"w11ms-v2-ok", "w11ms-gsi-off"}
    azure = [r for r in doc["findings"] if r["scope"] == "azure"]
    assert azure and {r["node"] for r in azure} <= {None, "lab02-n1"}
    assert code == 1
    unknown = sweep(lab, "--no-history", "--vm", "avd-ok-1")
    assert unknown.code == 2 and "avd-ok-01" in unknown.err, unknown.out + unknown.err
    bad_cluster = sweep(lab, "--no-history", "--cluster", "hci-lab-9")
    assert bad_cluster.code == 2 and "hci-lab-0" in bad_cluster.err


def test_global_options_after_the_subcommand(lab: LabClient, tmp_path: Path) -> None:
    out = tmp_path / "r.xml"
    result = lab.cli(
        "sweep", "--no-history", "--waivers", str(lab_waivers()), "-o", "JUNIT", "--output-file", str(out)
    )
    assert result.code == 1 and result.out == ""
    assert out.read_text().startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_a_wrong_password_costs_one_failed_logon(lab: LabClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from hcibenefit.lab.fleet import PASSWORD_ENV

    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    code, doc = sweep_json(lab, "--no-history")
    assert code & 4, "no node could be assessed"
    assert sum(n["failed_logons"] for n in lab.state()["nodes"]) == 1
    reasons = [t["reason"] for t in doc["run"]["targets"]["not_assessed"] if t["vm"] is None]
    assert len(reasons) == 8
    assert sum("not tried" in r for r in reasons) == 7
    assert doc["run"]["targets"]["assessed"]["nodes"] == 0


def test_azure_reconciliation_is_part_of_the_sweep(lab: LabClient) -> None:
    code, doc = sweep_json(lab, "--no-history")
    results = by_id(doc)
    assert results["azure.imds-enabled-node-not-active/hci-lab-01/lab01-n3/-"]["status"] == "FAIL"
    assert results["azure.arc-vm-orphaned/hci-lab-02/-/w11ms-deleted"]["status"] == "FAIL"
    assert results["azure.vm-host-node-differs/hci-lab-02/-/w10ms-legacy-ok"]["status"] == "FAIL"
    assert code == 1


def test_azure_is_read_once_the_nodes_were_asked_not_before_them(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Azure SDK's imports and the Resource Graph query take the interpreter for some 0.25 s: begun
    first, they held back every node's first request. They now start in the nodes' first round trip."""
    asked_when_azure_began = requests_when_azure_opens(lab, monkeypatch)
    code, doc = sweep_json(lab, "--no-history")
    assert code == 1
    assert len(asked_when_azure_began) == 1 and asked_when_azure_began[0] > 0
    assert by_id(doc)["azure.arc-vm-orphaned/hci-lab-02/-/w11ms-deleted"]["status"] == "FAIL"


def test_azure_that_cannot_be_read_is_not_assessed_not_fatal(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hcibenefit.lab.fleet import AZURE_TOKEN_ENV

    monkeypatch.delenv(AZURE_TOKEN_ENV)
    result = sweep(lab, "--no-history", "-o", "json")
    doc = json.loads(result.out)
    azure = [r for r in doc["findings"] if r["scope"] == "azure"]
    # Nothing is claimed about what Azure says when it could not be read: no FAIL, ERRORs with why.
    assert azure and not [r for r in azure if r["status"] == "FAIL"]
    errors = [r for r in azure if r["status"] == "ERROR"]
    assert {r["cluster"] for r in errors} == {"hci-lab-01", "hci-lab-02", "hci-lab-04"}
    assert all("could not be read" in r["message"] for r in errors)
    assert AZURE_TOKEN_ENV in result.err
    assert by_id(doc)["node.attestation-expired/hci-lab-01/lab01-n3/-"]["status"] == "FAIL"
    assert result.code == 5


def test_policy_exclusions_are_left_out_and_said(lab: LabClient) -> None:
    text = lab.inventory.read_text() + "policy:\n  exclude_globs: ['avd-t*']\n"
    lab.inventory.write_text(text)
    _, doc = sweep_json(lab, "--no-history")
    assert not [r for r in doc["findings"] if (r["vm"] or "").startswith("avd-t") and r["scope"] != "azure"]
    excluded = {e["vm"]: e["rule"] for e in doc["run"]["targets"]["excluded"]}
    assert excluded == {"avd-twice": "avd-t*", "avd-tampered": "avd-t*"}
    validate(doc)
