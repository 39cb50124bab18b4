"""The guest scripts run in the lab: PowerShell Direct from the owner node, the bodies inside the guests."""

from __future__ import annotations

import json
from typing import Any

from hcibenefit.lab.engine import GuestEndpointExecutor
from hcibenefit.lab.guestos import CLIP_LOG, SPP_PROVIDER
from hcibenefit.lab.wsman.executor import CommandSpec, PipelineCall
from hcibenefit.remoting.catalog import (
    GUEST_KICK_BODY,
    GUEST_PROBE,
    GUEST_PROBE_BODY,
    HOST_SYNC,
    VM_BENEFITS_ENABLE,
)
from tests.conftest import CollectingOutput
from tests.guest.conftest import GUEST_PASSWORD, FakeCredential, body_of


def _failures(document: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {f["vm"] or f["vm_id"]: (f["error_id"].split(",")[0], f["skipped"]) for f in document["failures"]}


def test_one_probe_call_answers_for_every_vm_of_the_node(guest_driver: Any) -> None:
    driver = guest_driver()
    vms = ["avd-ok-01", "avd-missing-nic", "sql-01", "avd-twice", "avd-wrong-nonce", "avd-imds-blocked"]
    document = driver.probe("lab01-n1", vms)
    assert document["schema"] == GUEST_PROBE.key
    assert sorted(r["vm"] for r in document["results"]) == sorted(vms)
    assert {r["vm_id"] for r in document["results"]} == set(driver.ids(vms))
    assert driver.engine.counts("lab01-n1") == {"guest-probe": 1}
    body = body_of(document, "avd-ok-01")
    assert body["schema"] == "guest-probe-body/2" and body["nonce"] == "0123456789"
    assert json.loads(body["document"]["raw"])["data"]  # the HCI envelope


def test_vms_that_cannot_be_reached_are_named_by_id_and_never_stop_the_others(guest_driver: Any) -> None:
    driver = guest_driver()
    names = ["avd-ok-01", "avd-bad-guest-creds", "w11ms-v2-ok", "no-such-vm"]
    document = driver.probe("lab01-n1", names)
    assert [r["vm"] for r in document["results"]] == ["avd-ok-01"]
    other_node, unknown = driver.ids(names)[2:]
    assert _failures(document) == {
        "avd-bad-guest-creds": (
            "PSSessionStateBroken",
            False,
        ),  # PSDirectException "The credential is invalid."
        other_node: ("InvalidParameter", True),  # it lives on lab02-n1: Get-VM -Id does not find it here
        unknown: ("InvalidParameter", True),
    }
    # A stopped VM: PowerShell Direct's own InvalidVMState has no TargetObject, so the fan-out skips it
    # itself and names it (powershell51.md 8.3).
    stopped = driver.probe("lab01-n2", ["avd-off", "avd-saved"])
    assert _failures(stopped) == {"avd-off": ("VMNotRunning", True), "avd-saved": ("VMNotRunning", True)}
    broken = driver.probe("lab02-n2", ["w11ms-direct-fails"])
    assert _failures(broken) == {"w11ms-direct-fails": ("PSSessionStateBroken", False)}


def test_a_wrong_guest_password_is_refused_for_every_vm(guest_driver: Any) -> None:
    driver = guest_driver()
    document = driver.probe("lab01-n1", ["avd-ok-01", "avd-twice"], password=GUEST_PASSWORD + "x")
    assert document["results"] == []
    assert {f["message"] for f in document["failures"]} == {"The credential is invalid."}
    driver.engine.guest_password = None  # a lab that knows no guest password accepts nobody
    assert driver.probe("lab01-n1", ["avd-ok-01"])["results"] == []


def test_the_guest_runs_the_text_it_is_given_and_validates_the_nonce(guest_driver: Any) -> None:
    driver = guest_driver()
    credential = FakeCredential("Administrator", GUEST_PASSWORD)
    params = {
        "VMId": driver.ids(["avd-ok-01"]),
        "Credential": credential,
        "ProbeScript": "Get-NoSuchThing -Force",
    }
    document = json.loads(driver.call("lab01-n1", GUEST_PROBE, params).output[0])
    assert _failures(document) == {"avd-ok-01": ("CommandNotFoundException", False)}
    hostile = {**params, "ProbeScript": GUEST_PROBE_BODY.text(), "Nonce": "1&x=2"}
    document = json.loads(driver.call("lab01-n1", GUEST_PROBE, hostile).output[0])
    assert _failures(document) == {"avd-ok-01": ("ParameterArgumentValidationError", False)}


def test_imds_reachability_follows_the_host_model(guest_driver: Any) -> None:
    driver = guest_driver()

    def host_imds(node: str, vm: str) -> dict[str, Any]:
        attempts = body_of(driver.probe(node, [vm]), vm)["imds"]
        assert attempts[0]["address"] == "169.254.169.254" and attempts[0]["ok"] is False  # never on HCI
        return next(a for a in attempts if a["address"] == "169.254.169.253")

    assert host_imds("lab01-n1", "avd-ok-01")["ok"] is True
    assert host_imds("lab01-n1", "avd-imds-blocked")["error"] == "The operation has timed out."
    assert host_imds("lab01-n3", "avd-on-expired-node")["ok"] is False
    driver.document("lab01-n3", HOST_SYNC)
    assert host_imds("lab01-n3", "avd-on-expired-node")["ok"] is True
    missing = body_of(driver.probe("lab01-n1", ["avd-missing-nic"]), "avd-missing-nic")
    assert missing["imds"][1]["ok"] is False and not [
        a for a in missing["addresses"] if a["address"].startswith("169.254.")
    ]
    driver.document("lab01-n1", VM_BENEFITS_ENABLE, {"NicVMId": driver.ids(["avd-missing-nic"])})
    after = body_of(driver.probe("lab01-n1", ["avd-missing-nic"]), "avd-missing-nic")
    assert after["imds"][1]["ok"] is True and any(
        a["address"].startswith("169.254.") for a in after["addresses"]
    )


GUEST_FAILURES = """
clusters:
  - name: c
    nodes: [n1]
    vms:
      - {name: http-500, node: n1, benefits: v1, guest: {license_status: 5, imds_status: 500}}
      - {name: no-clip-log, node: n1, benefits: v1, guest: {clip_log: false}}
      - {name: slow-task, node: n1, benefits: v1, guest: {license_status: 5, task_run_seconds: 600}}
      - {name: behind-proxy, node: n1, benefits: v1, guest: {system_proxy: true}}
"""


def test_guest_side_failures_arrive_as_a_real_guest_reports_them(guest_driver: Any) -> None:
    driver = guest_driver(GUEST_FAILURES)
    out = driver.call(
        "n1",
        GUEST_PROBE,
        {
            "VMId": driver.ids(["http-500", "no-clip-log", "behind-proxy"]),
            "Credential": FakeCredential("Administrator", GUEST_PASSWORD),
            "ProbeScript": GUEST_PROBE_BODY.text(),
            "TimeoutSec": 3,
        },
    )
    document = json.loads(out.output[0])
    failing = body_of(document, "http-500")["imds"][1]
    assert failing["ok"] is False and failing["status_code"] == 500
    assert failing["error"] == "The remote server returned an error: (500) Internal Server Error."
    no_log = body_of(document, "no-clip-log")
    assert [p["error_id"] for p in no_log["problems"]] == [
        "NoMatchingLogsFound,Microsoft.PowerShell.Commands.GetWinEventCommand"
    ]
    # The probe bypasses the machine-wide proxy ([System.Net.WebRequest]::DefaultWebProxy = $null).
    assert body_of(document, "behind-proxy")["imds"][1]["ok"] is True
    # The probe silences 5.1's progress records ($ProgressPreference): none reaches the client...
    assert out.progress == []
    # ...which Invoke-RestMethod writes otherwise, and which come back through PowerShell Direct and WinRM.
    noisy = driver.call(
        "n1",
        GUEST_PROBE,
        {
            "VMId": driver.ids(["behind-proxy"]),
            "Credential": FakeCredential("Administrator", GUEST_PASSWORD),
            "ProbeScript": GUEST_PROBE_BODY.text().replace("$ProgressPreference = 'SilentlyContinue'", ""),
            "TimeoutSec": 3,
        },
    )
    assert "Reading web response" in [activity for activity, _, _ in noisy.progress]


def test_a_kick_that_has_not_finished_says_so(guest_driver: Any) -> None:
    driver = guest_driver(GUEST_FAILURES)
    document = driver.kick("n1", ["slow-task"])
    body = body_of(document, "slow-task")
    assert [(r["finished"], r["state_after"]) for r in body["runs"]] == [
        (False, "Running"),
        (False, "Running"),
    ]
    assert body["license_after"] == 5
    probe = body_of(driver.probe("n1", ["slow-task"]), "slow-task")
    assert (
        probe["task"]["state"] == "Running" and probe["task"]["last_task_result"] == 267009
    )  # 0x41301 running


def test_kick_runs_until_activated_and_writes_events(guest_driver: Any) -> None:
    driver = guest_driver()
    twice = body_of(driver.kick("lab01-n1", ["avd-twice"]), "avd-twice")
    assert [r["license_status"] for r in twice["runs"]] == [5, 1] and twice["license_after"] == 1
    assert all(r["finished"] for r in twice["runs"])
    assert driver.state.vm("avd-twice").guest.runs == 2  # type: ignore[union-attr]
    blocked = body_of(driver.kick("lab01-n1", ["avd-imds-blocked"]), "avd-imds-blocked")
    assert [r["last_task_result"] for r in blocked["runs"]] == [0x80072EE2, 0x80072EE2]
    events = body_of(driver.probe("lab01-n1", ["avd-imds-blocked"]), "avd-imds-blocked")["events"]
    assert [e["id"] for e in events["security_spp"]] == [8198, 8198]
    assert "hr=0x80072EE2" not in events["security_spp"][0]["message"]  # only the first line is reported
    assert events["clip"] and all(e["level"] == "Error" for e in events["clip"])
    vm = driver.state.vm("avd-imds-blocked")
    assert vm is not None and any(p == SPP_PROVIDER for _, _, p, _ in vm.guest.events)
    assert any(p == CLIP_LOG for _, _, p, _ in vm.guest.events)
    assert "hr=0x80072EE2" in next(t for i, _, _, t in vm.guest.events if i == 8198)


def test_kick_leaves_a_disabled_task_alone_unless_asked(guest_driver: Any) -> None:
    driver = guest_driver()
    refused = body_of(driver.kick("lab01-n2", ["azedition-task-disabled"]), "azedition-task-disabled")
    assert refused["error"]["message"].startswith("The LicenseImdsIntegration task is disabled")
    assert refused["runs"] == [] and driver.state.vm("azedition-task-disabled").guest.task == "Disabled"  # type: ignore[union-attr]
    enabled = body_of(
        driver.kick("lab01-n2", ["azedition-task-disabled"], enable_task=True), "azedition-task-disabled"
    )
    assert enabled["enabled_task"] is True and enabled["license_after"] == 1
    assert driver.state.vm("azedition-task-disabled").guest.task == "Ready"  # type: ignore[union-attr]


def test_kick_reports_a_missing_task_as_not_found(guest_driver: Any) -> None:
    driver = guest_driver(
        "clusters:\n  - name: c\n    nodes: [n1]\n    vms:\n"
        "      - {name: v, node: n1, benefits: v1, guest: {license_status: 5, task: Missing}}\n"
    )
    result = body_of(driver.kick("n1", ["v"]), "v")
    assert result["task_present"] is False
    assert result["error"]["error_id"] == "CmdletizationQuery_NotFound,Get-ScheduledTask"
    assert driver.state.vm("v").guest.runs == 0  # type: ignore[union-attr]


def test_kick_activates_only_when_the_path_works(guest_driver: Any) -> None:
    driver = guest_driver()
    driver.kick("lab01-n1", ["avd-missing-nic"])
    assert driver.state.vm("avd-missing-nic").guest.license_status == 5  # type: ignore[union-attr]
    driver.document("lab01-n1", VM_BENEFITS_ENABLE, {"NicVMId": driver.ids(["avd-missing-nic"])})
    driver.kick("lab01-n1", ["avd-missing-nic"])
    assert driver.state.vm("avd-missing-nic").guest.license_status == 1  # type: ignore[union-attr]


def test_guest_endpoint_executor_answers_the_bodies_for_its_vm(guest_driver: Any) -> None:
    driver = guest_driver()
    executor = GuestEndpointExecutor(driver.state, driver.engine)
    out = CollectingOutput()
    probe = CommandSpec(GUEST_PROBE_BODY.text(), True, (("Nonce", "9999999999"),))
    out.output += executor.execute(
        PipelineCall("avd-twice", "Administrator", "Microsoft.PowerShell", (probe,), ()), out
    )
    body = json.loads(out.output[0])
    assert body["schema"] == "guest-probe-body/2" and body["nonce"] == "9999999999"
    kick = CommandSpec(GUEST_KICK_BODY.text(), True, ())
    out.output += executor.execute(
        PipelineCall("avd-twice", "Administrator", "Microsoft.PowerShell", (kick,), ()), out
    )
    assert json.loads(out.output[1])["license_after"] == 1
    assert executor.invocations == {"avd-twice:guest-probe-body/2": 1, "avd-twice:guest-kick-body/1": 1}
