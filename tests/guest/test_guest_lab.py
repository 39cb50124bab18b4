"""`hcibenefit guest check|kick` against the lab over real WinRM/PSRP, as a user runs them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

import hcibenefit.cli.context as cli_context
from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.fleet import GUEST_PASSWORD_ENV
from hcibenefit.lab.spec import default_fleet
from tests.guest.conftest import GUEST_PASSWORD, by_vm
from tests.integration.conftest import LabClient

ALL_VMS = [vm.name for cluster in default_fleet().clusters for vm in cluster.vms]
EXPECTED_DEFAULT = {
    "avd-ok-01": ("activated", "licensed"),
    "avd-missing-nic": ("not-activated", "benefits-missing"),
    "avd-gen1-running": ("not-activated", "benefits-missing"),
    "azedition-task-disabled": ("not-activated", "task-disabled"),
    "avd-on-expired-node": ("at-risk", "node-not-serving"),
    "sql-01": ("activated", "licensed"),
    "avd-chain-broken": ("not-activated", "missing-intermediate"),
    "avd-twice": ("not-activated", "task-never-ran"),
    "avd-bad-guest-creds": ("auth-failed", "bad-credentials"),
    "avd-tampered": ("not-activated", "bad-signature"),
    "avd-wrong-nonce": ("at-risk", "nonce-mismatch"),
    "avd-imds-blocked": ("not-activated", "imds-unreachable"),
    "avd-off": ("not-assessable", "vm-off"),
    "avd-saved": ("not-assessable", "vm-saved"),
    "w11ms-v2-ok": ("activated", "licensed"),
    "w11ms-gsi-off": ("not-activated", "benefits-missing"),
    "w10ms-legacy-ok": ("activated", "licensed"),
    "w10ms-no-switch": ("not-activated", "node-not-serving"),
    "azedition-kvp-off": ("activated", "licensed"),
    "w11ms-direct-fails": ("not-assessable", "powershell-direct-unavailable"),
    "w11ms-paused": ("not-assessable", "vm-paused"),
    "w11-single-session": ("activated", "licensed"),
    "w11ms-24h2-v2-ok": ("activated", "licensed"),
    "w10ms-24h2-legacy-off": ("not-activated", "imds-path-broken"),
    "w10ms-24h2-leftover": ("activated", "licensed"),
    "w10ms-24h2-imds-500": ("not-activated", "imds-unreachable"),
    "w11ms-24h2-no-clip-log": ("activated", "licensed"),
    "w11ms-24h2-slow-task": ("not-activated", "task-never-ran"),
}
# The default fleet's guest faults: each must read differently.
GUEST_FAULT_VMS = [
    "azedition-task-disabled", "avd-chain-broken", "avd-twice", "avd-bad-guest-creds", "avd-tampered",
    "avd-wrong-nonce", "avd-imds-blocked", "avd-off", "avd-saved", "w11ms-direct-fails", "w11ms-paused",
]  # fmt: skip


def vm_args(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--vm", name)]


def guest_invocations(lab: LabClient) -> dict[str, dict[str, int]]:
    return {
        n["name"]: {k: v for k, v in n["invocations"].items() if k.startswith("guest-")}
        for n in lab.state()["nodes"]
    }


def test_check_gives_every_vm_of_the_default_fleet_its_verdict(lab: LabClient) -> None:
    result = lab.cli("guest", "check", *vm_args(*ALL_VMS), "--format", "json")
    assert result.code == ExitCode.FINDINGS_AND_INCOMPLETE, result.err
    records = result.json()["vms"]
    assert [r["vm"] for r in records] == ALL_VMS
    assert {r["vm"]: (r["verdict"], r["reason"]) for r in records} == EXPECTED_DEFAULT
    for record in records:
        assert {"vm", "cluster", "verdict", "reason", "evidence", "detail", "fix", "node", "access"} <= set(
            record
        )
        assert " " not in record["verdict"]
    faults = [EXPECTED_DEFAULT[name] for name in GUEST_FAULT_VMS]
    assert len(set(faults)) == len(faults)


def test_check_costs_one_probe_call_per_owner_node(lab: LabClient) -> None:
    lab.cli("guest", "check", *vm_args(*ALL_VMS), "--format", "json")
    for node in lab.state()["nodes"]:
        assert node["invocations"] == {"host-facts": 1, "guest-probe": 1}, node["name"]


def test_check_asks_each_node_through_one_session_of_at_most_nine_requests(lab: LabClient) -> None:
    """Host facts, then the probes, on one session: Create, Receive; Command, Receive (host facts);
    Send, Receive (session key for the guest credential); Command, Receive (probes); Delete."""
    from hcibenefit.remoting import pypsrp_fixes

    server = lab.lab.server
    assert server is not None
    names = [n["name"] for n in lab.state()["nodes"]]
    before = {name: dict(server.stats(name).actions) for name in names}
    result = lab.cli("guest", "check", *vm_args("avd-ok-01", "sql-01"), "--format", "json")
    assert result.code in (ExitCode.OK, ExitCode.FINDINGS), result.err
    keys = pypsrp_fixes.exchange_keys_generated()
    probed = {r["node"] for r in result.json()["vms"]}
    for name in names:
        after = server.stats(name).actions
        sent = {k: after.get(k, 0) - before[name].get(k, 0) for k in after}
        sent = {k: v for k, v in sent.items() if v}
        receives = sent.pop("Receive", 0)
        if name in probed:
            assert sent == {"Create": 1, "Command": 2, "Send": 1, "Delete": 1}, name
            # 4 Receives (pool opened, host facts, session key, probes); on a loaded machine a Receive
            # that times out before the lab answers is one more, as with a slow host.
            assert receives >= 4 and receives + 5 <= 10, (name, receives)
        else:
            assert sent == {"Create": 1, "Command": 1, "Delete": 1}, name
            assert receives >= 2, name
    lab.cli("guest", "check", *vm_args("avd-ok-01"), "--format", "json")
    assert pypsrp_fixes.exchange_keys_generated() == keys == 1  # one RSA key pair per process


def test_one_probe_call_however_many_vms_a_node_has(small_lab: Any) -> None:
    vms = "\n".join(f"      - {{name: vm{i:02d}, node: n1, benefits: v1}}" for i in range(12))
    lab = small_lab(
        f"clusters:\n  - name: c\n    nodes: [n1, n2]\n    vms:\n{vms}\n      - {{name: solo, node: n2, benefits: v1}}\n"
    )
    result = lab.cli(
        "guest", "check", *vm_args(*[f"vm{i:02d}" for i in range(12)], "solo"), "--format", "json"
    )
    assert result.code == ExitCode.OK, result.out + result.err
    assert {r["verdict"] for r in result.json()["vms"]} == {"activated"}
    assert guest_invocations(lab) == {"n1": {"guest-probe": 1}, "n2": {"guest-probe": 1}}


def test_evidence_carries_what_the_guest_saw(lab: LabClient) -> None:
    record = lab.cli("guest", "check", "--vm", "avd-ok-01", "--format", "json").json()["vms"][0]
    evidence = record["evidence"]
    assert evidence["os"]["edition_id"] == "ServerRdsh" and evidence["license"]["status_name"] == "Licensed"
    assert evidence["task"]["present"] is True and evidence["task"]["state"] == "Ready"
    assert [(a["address"], a["reachable"]) for a in evidence["imds"]] == [
        ("169.254.169.254", False),
        ("169.254.169.253", True),
    ]
    assert evidence["imds_addresses"] and evidence["imds_addresses"][0].startswith("169.254.")
    document = evidence["document"]
    assert document["verification"]["ok"] is True and document["vm_id_matches"] is True
    sent = document["nonce_sent"]
    assert len(sent) == 10 and sent.isdigit() and document["verification"]["payload"]["nonce"] == sent
    assert evidence["transports"] == ["V1"] and evidence["owner_attestation"] == "Active"


def test_nonces_are_fresh_per_call(lab: LabClient) -> None:
    nonces = {
        lab.cli("guest", "check", "--vm", "avd-ok-01", "--format", "json").json()["vms"][0]["evidence"][
            "document"
        ]["nonce_sent"]
        for _ in range(3)
    }
    assert len(nonces) == 3


def test_vms_that_are_not_running_are_never_sent(lab: LabClient) -> None:
    result = lab.cli("guest", "check", *vm_args("avd-off", "avd-saved", "w11ms-paused"), "--format", "json")
    assert result.code == ExitCode.INCOMPLETE
    assert {r["reason"] for r in result.json()["vms"]} == {"vm-off", "vm-saved", "vm-paused"}
    assert all(not calls for calls in guest_invocations(lab).values())


def test_bad_guest_credentials_fail_only_that_vm(lab: LabClient) -> None:
    result = lab.cli(
        "guest", "check", *vm_args("avd-bad-guest-creds", "avd-ok-01", "avd-twice"), "--format", "json"
    )
    assert result.code == ExitCode.FINDINGS_AND_INCOMPLETE
    records = by_vm(result.json()["vms"])
    assert (records["avd-bad-guest-creds"]["verdict"], records["avd-bad-guest-creds"]["reason"]) == (
        "auth-failed",
        "bad-credentials",
    )
    assert "credential is invalid" in records["avd-bad-guest-creds"]["detail"]
    assert (
        records["avd-ok-01"]["verdict"] == "activated" and records["avd-twice"]["verdict"] == "not-activated"
    )


def test_a_wrong_guest_password_is_an_authentication_problem_per_vm(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GUEST_PASSWORD_ENV, "not-the-guest-password")
    result = lab.cli("guest", "check", *vm_args("avd-ok-01", "w11ms-v2-ok", "avd-off"), "--format", "json")
    assert result.code == ExitCode.INCOMPLETE
    records = by_vm(result.json()["vms"])
    assert records["avd-ok-01"]["verdict"] == records["w11ms-v2-ok"]["verdict"] == "auth-failed"
    assert records["avd-off"]["reason"] == "vm-off"  # not sent at all
    assert "guest_credentials" in records["avd-ok-01"]["fix"]


def test_table_output(lab: LabClient) -> None:
    result = lab.cli("guest", "check", *vm_args("avd-ok-01", "azedition-task-disabled"))
    assert result.code == ExitCode.FINDINGS
    assert "VERDICT" in result.out and "task-disabled" in result.out and "--enable-task" in result.out
    assert "guests: activated 1, not-activated 1" in result.out


def test_unknown_vm_is_a_usage_error_and_nothing_reaches_a_guest(lab: LabClient) -> None:
    result = lab.cli("guest", "check", "--vm", "avd-ok-0l", "--vm", "avd-twice")
    assert result.code == ExitCode.USAGE
    assert "did you mean avd-ok-01" in result.err
    assert all(not calls for calls in guest_invocations(lab).values())
    assert lab.cli("guest", "kick").code == ExitCode.USAGE  # changing guests needs a selection


def test_missing_guest_credentials_is_a_usage_error(lab: LabClient) -> None:
    text = lab.inventory.read_text()
    start = text.index("  guest_credentials:")
    end = text.index("clusters:")
    lab.inventory.write_text(text[:start] + text[end:])
    result = lab.cli("guest", "check", "--vm", "avd-ok-01")
    assert result.code == ExitCode.USAGE and "guest_credentials" in result.err
    assert all(not calls for calls in guest_invocations(lab).values())


def test_an_unreachable_owner_node_leaves_only_its_vms_unassessed(lab: LabClient) -> None:
    lab.lab.set_faults("lab01-n3", down=True)
    try:
        result = lab.cli("guest", "check", *vm_args("avd-on-expired-node", "avd-ok-01"), "--format", "json")
    finally:
        lab.lab.set_faults("lab01-n3", down=False)
    assert result.code == ExitCode.INCOMPLETE
    records = by_vm(result.json()["vms"])
    assert records["avd-on-expired-node"]["verdict"] == "not-assessable"
    assert records["avd-on-expired-node"]["reason"] == "node-unreachable"
    assert "lab01-n3" in records["avd-on-expired-node"]["detail"]
    assert records["avd-ok-01"]["verdict"] == "activated"


def test_an_expired_document_is_its_own_reason(small_lab: Any) -> None:
    lab = small_lab(
        "clusters:\n  - name: c\n    nodes: [n1]\n    vms:\n"
        "      - {name: stale, node: n1, benefits: v1, guest: {license_status: 5, document: expired}}\n"
    )
    record = lab.cli("guest", "check", "--vm", "stale", "--format", "json").json()["vms"][0]
    assert (record["verdict"], record["reason"]) == ("not-activated", "document-expired")
    assert record["evidence"]["document"]["verification"]["failure_kind"] == "expired"


# --- kick -----------------------------------------------------------------------------------------


def test_kick_runs_the_task_twice_when_activation_needs_two_runs(lab: LabClient) -> None:
    result = lab.cli("guest", "kick", "--vm", "avd-twice", "--format", "json")
    assert result.code == ExitCode.OK, result.out + result.err
    record = result.json()["vms"][0]
    assert record["result"] == "kicked"
    assert record["before"] == {"verdict": "not-activated", "reason": "task-never-ran", "license_status": 5}
    assert record["after"] == {"verdict": "activated", "reason": "licensed", "license_status": 1}
    assert [r["license_status"] for r in record["runs"]] == [5, 1]
    guest = lab.vm("avd-twice")["guest"]
    assert guest["runs"] == 2 and guest["license_status"] == 1
    assert guest_invocations(lab)["lab01-n1"] == {"guest-probe": 2, "guest-kick": 1}


def test_kick_reports_a_disabled_task_with_the_fix_and_enables_it_only_when_asked(lab: LabClient) -> None:
    refused = lab.cli("guest", "kick", "--vm", "azedition-task-disabled", "--format", "json")
    assert refused.code == ExitCode.FINDINGS
    record = refused.json()["vms"][0]
    assert record["result"] == "refused" and record["fix"].endswith("--enable-task")
    assert lab.vm("azedition-task-disabled")["guest"]["task"] == "Disabled"
    assert lab.invocations("guest-kick") == 0
    fixed = lab.cli("guest", "kick", "--vm", "azedition-task-disabled", "--enable-task", "--format", "json")
    assert fixed.code == ExitCode.OK, fixed.out
    record = fixed.json()["vms"][0]
    assert record["result"] == "kicked" and record["task_enabled"] is True
    assert record["after"]["verdict"] == "activated"
    assert lab.vm("azedition-task-disabled")["guest"]["task"] == "Ready"


def test_kick_what_if_sends_nothing_mutating(lab: LabClient) -> None:
    before = lab.state()["vms"]
    names = ("avd-twice", "avd-imds-blocked", "azedition-task-disabled", "avd-ok-01", "avd-off")
    result = lab.cli("guest", "kick", *vm_args(*names), "--what-if", "--enable-task")
    assert result.code == ExitCode.FINDINGS_AND_INCOMPLETE
    assert lab.invocations("guest-kick") == 0 and lab.state()["vms"] == before
    ids = ", ".join(repr(lab.vm(name)["id"]) for name in ("avd-twice", "avd-imds-blocked"))
    assert (
        "- guest-kick/2 on lab01-n1 (powershell-direct) for 'avd-twice', 'avd-imds-blocked'\n"
        f"    -VMId @({ids})\n"
    ) in result.out
    assert (
        "    -EnableTask $true\n" in result.out
        and "-KickScript <the text of guest-kick-body/1>" in result.out
    )
    assert "- guest-kick/2 on lab01-n2" in result.out and "would kick" in result.out
    records = by_vm(lab.cli("guest", "kick", *vm_args(*names), "--what-if", "--format", "json").json()["vms"])
    assert records["avd-ok-01"]["result"] == "already" and records["avd-off"]["result"] == "skipped"
    assert records["azedition-task-disabled"]["result"] == "refused"


def test_kick_of_several_vms_needs_yes_without_a_terminal(lab: LabClient) -> None:
    result = lab.cli("guest", "kick", *vm_args("avd-twice", "avd-imds-blocked"))
    assert result.code == ExitCode.USAGE and "--yes" in result.err
    assert lab.invocations("guest-kick") == 0
    result = lab.cli("guest", "kick", *vm_args("avd-twice", "avd-imds-blocked"), "--yes", "--format", "json")
    records = by_vm(result.json()["vms"])
    assert records["avd-twice"]["after"]["verdict"] == "activated"
    assert records["avd-imds-blocked"]["after"]["reason"] == "imds-unreachable"
    assert [r["last_result_hex"] for r in records["avd-imds-blocked"]["runs"]] == ["0x80072EE2", "0x80072EE2"]
    assert result.code == ExitCode.FINDINGS


def test_a_vm_that_gets_its_nic_activates_after_a_kick(lab: LabClient) -> None:
    before = lab.cli("guest", "check", "--vm", "avd-missing-nic", "--format", "json").json()["vms"][0]
    assert (
        before["reason"] == "benefits-missing"
        and before["fix"]
        == "hcibenefit enable --vm avd-missing-nic; then hcibenefit guest kick --vm avd-missing-nic"
    )
    planned = lab.cli("guest", "kick", "--vm", "avd-missing-nic", "--what-if", "--format", "json").json()[
        "vms"
    ][0]
    assert "it will fail until the host side is fixed" in planned["why"]
    assert lab.cli("enable", "--vm", "avd-missing-nic").code == ExitCode.OK
    kicked = lab.cli("guest", "kick", "--vm", "avd-missing-nic", "--format", "json").json()["vms"][0]
    assert kicked["before"]["reason"] == "task-never-ran"
    assert kicked["after"]["verdict"] == "activated"


def test_kick_is_audited_without_secrets(lab: LabClient, tmp_path: Path) -> None:
    lab.cli("guest", "kick", "--vm", "avd-twice")
    lines = (tmp_path / "audit.log").read_text().splitlines()
    intended, entry = [json.loads(line) for line in lines]
    assert intended["phase"] == "intended" and intended["change"] == entry["change"]
    assert intended["remote_user"] == "labadmin" and intended["guest_user"] == "Administrator"
    assert entry["action"] == "guest-kick" and entry["vm"] == "avd-twice" and entry["runs"] == 2
    assert entry["before"]["verdict"] == "not-activated" and entry["after"]["verdict"] == "activated"
    assert GUEST_PASSWORD not in "\n".join(lines)


# --- secrets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("verbosity", ["-vv", "-vvv"])
def test_the_guest_password_never_appears_anywhere(
    lab: LabClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    verbosity: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    configure = cli_context.configure_logging

    def configure_and_capture_raw(verbose: int, quiet: bool) -> None:
        configure(verbose, quiet)
        # First in line, before the redacting handler rewrites the record: what our code really logged.
        logging.getLogger("hcibenefit").handlers.insert(0, caplog.handler)

    monkeypatch.setattr(cli_context, "configure_logging", configure_and_capture_raw)
    report = tmp_path / "report.json"
    names = vm_args("avd-ok-01", "avd-bad-guest-creds", "avd-twice", "w11ms-direct-fails")
    outputs = []
    for argv in (
        (verbosity, "--output-file", str(report), "guest", "check", *names, "--format", "json"),
        (verbosity, "guest", "kick", *names, "--yes", "--format", "json"),
        (verbosity, "guest", "kick", *names, "--what-if"),
    ):
        result = lab.cli(*argv)
        assert result.code in (
            ExitCode.FINDINGS,
            ExitCode.INCOMPLETE,
            ExitCode.FINDINGS_AND_INCOMPLETE,
            ExitCode.OK,
        )
        outputs += [result.out, result.err]
    assert any(r.name.startswith("hcibenefit") for r in caplog.records), "the raw log capture is broken"
    # caplog.text is formatted as each record arrives; the records themselves are redacted in place later.
    raw_logs = caplog.text
    for text in (*outputs, raw_logs, report.read_text(), (tmp_path / "audit.log").read_text()):
        assert GUEST_PASSWORD not in text
    assert json.loads(report.read_text())["vms"][0]["vm"] == "avd-ok-01"
