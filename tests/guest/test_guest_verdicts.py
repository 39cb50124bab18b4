"""Verdicts and reasons from guest facts plus the owner node's view: pure logic, the lab engine in-process.

The engine plays the owner node and the guests (no sockets); parsing, verification and verdicts are the
real code. Every guest fault the lab spec can express must come out as its own (verdict, reason) pair.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from hcibenefit.attestation import verify_document
from hcibenefit.checks.eligibility import requirement
from hcibenefit.checks.guest_checks import (
    REASONS,
    VERDICTS,
    DocumentCheck,
    GuestContext,
    GuestVerdict,
    NotProbed,
    assess_failure,
    assess_not_probed,
    assess_probe,
    classify_failure,
    not_running,
)
from hcibenefit.facts.guest import GuestError, body_document, parse_fan_out, parse_probe_body
from hcibenefit.facts.host import parse_host_facts
from hcibenefit.inventory.model import Policy
from hcibenefit.lab.signing import LAB_SAN_PATTERN
from hcibenefit.operations.guests.check import document_check
from hcibenefit.remoting.catalog import GUEST_KICK, GUEST_KICK_BODY, GUEST_PROBE, GUEST_PROBE_BODY, HOST_FACTS
from tests.guest.conftest import GUEST_PASSWORD, FakeCredential, GuestDriver, signing_chain

FAULTS = """
clusters:
  - name: c1
    version: 22H2
    nodes: [n1]
    vms:
      - {name: ok, node: n1, benefits: v1}
      - {name: never-ran, node: n1, benefits: v1, guest: {license_status: 5}}
      - {name: task-disabled, node: n1, benefits: v1, guest: {license_status: 5, task: Disabled}}
      - {name: task-missing, node: n1, benefits: v1, guest: {license_status: 5, task: Missing}}
      - {name: imds-blocked, node: n1, benefits: v1, guest: {license_status: 5, imds: unreachable}}
      - {name: doc-expired, node: n1, benefits: v1, guest: {license_status: 5, document: expired}}
      - {name: doc-tampered, node: n1, benefits: v1, guest: {license_status: 5, document: tampered}}
      - {name: doc-chain, node: n1, benefits: v1, guest: {license_status: 5, document: missing-intermediate}}
      - {name: doc-nonce, node: n1, benefits: v1, guest: {license_status: 5, document: wrong-nonce}}
      - {name: direct-fail, node: n1, benefits: v1, guest: {powershell_direct: fail}}
      - {name: bad-creds, node: n1, benefits: v1, guest: {powershell_direct: bad-credentials}}
      - {name: twice, node: n1, benefits: v1, guest: {license_status: 5, runs_needed: 2}}
      - {name: off, node: n1, state: Off, benefits: v1}
      - {name: saved, node: n1, state: Saved, benefits: v1}
      - {name: paused, node: n1, state: Paused, benefits: v1}
      - {name: lic-imds-blocked, node: n1, benefits: v1, guest: {imds: unreachable}}
      - {name: lic-doc-expired, node: n1, benefits: v1, guest: {document: expired}}
      - {name: lic-doc-tampered, node: n1, benefits: v1, guest: {document: tampered}}
      - {name: lic-doc-chain, node: n1, benefits: v1, guest: {document: missing-intermediate}}
      - {name: lic-doc-nonce, node: n1, benefits: v1, guest: {document: wrong-nonce}}
      - {name: lic-task-disabled, node: n1, benefits: v1, guest: {task: Disabled}}
      - {name: lic-task-missing, node: n1, benefits: v1, guest: {task: Missing}}
"""
EXPECTED = {
    "ok": ("activated", "licensed"),
    "never-ran": ("not-activated", "task-never-ran"),
    "task-disabled": ("not-activated", "task-disabled"),
    "task-missing": ("not-activated", "task-missing"),
    "imds-blocked": ("not-activated", "imds-unreachable"),
    "doc-expired": ("not-activated", "document-expired"),
    "doc-tampered": ("not-activated", "bad-signature"),
    "doc-chain": ("not-activated", "missing-intermediate"),
    "doc-nonce": ("not-activated", "nonce-mismatch"),
    "direct-fail": ("not-assessable", "powershell-direct-unavailable"),
    "bad-creds": ("auth-failed", "bad-credentials"),
    "twice": ("not-activated", "task-never-ran"),
    "off": ("not-assessable", "vm-off"),
    "saved": ("not-assessable", "vm-saved"),
    "paused": ("not-assessable", "vm-paused"),
    "lic-imds-blocked": ("at-risk", "imds-unreachable"),
    "lic-doc-expired": ("at-risk", "document-expired"),
    "lic-doc-tampered": ("at-risk", "bad-signature"),
    "lic-doc-chain": ("at-risk", "missing-intermediate"),
    "lic-doc-nonce": ("at-risk", "nonce-mismatch"),
    "lic-task-disabled": ("at-risk", "task-disabled"),
    "lic-task-missing": ("at-risk", "task-missing"),
}
NONCE = "4242424242"


def judge_all(driver: GuestDriver, node: str) -> dict[str, GuestVerdict]:
    """What `guest check` decides for every VM of a node, minus the sockets: same parsing, verification, logic."""
    cluster = driver.state.node(node).cluster
    host = parse_host_facts(
        driver.document(node, HOST_FACTS, {"IncludeGuestOs": True}), node=node, cluster=cluster
    )
    running = [vm.name for vm in host.vms if vm.running]
    fan = parse_fan_out(driver.probe(node, running, nonce=NONCE), schema=GUEST_PROBE.key)
    verdicts = {}
    for vm in host.vms:
        ctx = GuestContext(vm.name, cluster, node, vm, host, requirement(vm, host, Policy()))
        if not vm.running:
            verdicts[vm.name] = assess_not_probed(ctx, NotProbed(not_running(vm.state), vm.state))
        elif fan.failures_of(vm.name):
            verdicts[vm.name] = assess_failure(ctx, fan.failures_of(vm.name))
        else:
            probe = parse_probe_body(body_document(fan.output_of(vm.name), schema="guest-probe-body/2"))
            check = None
            if probe.document_raw is not None:
                report = verify_document(
                    probe.document_raw,
                    nonce=NONCE,
                    trust=signing_chain().trust_store(),
                    san_pattern=LAB_SAN_PATTERN,
                )
                check = document_check(report)
            verdicts[vm.name] = assess_probe(ctx, probe, check)
    return verdicts


def test_every_guest_fault_has_its_own_verdict_and_reason(guest_driver: Any) -> None:
    verdicts = judge_all(guest_driver(FAULTS), "n1")
    assert {name: (v.verdict, v.reason) for name, v in verdicts.items()} == EXPECTED
    faults = [pair for name, pair in EXPECTED.items() if name != "twice"]  # twice only shows once run
    assert len(set(faults)) == len(faults)
    for verdict in verdicts.values():
        assert verdict.verdict in VERDICTS and verdict.reason in REASONS
        assert verdict.problems[0] == verdict.reason and verdict.detail
        if verdict.verdict != "activated":
            assert verdict.fix, verdict.reason


def test_runs_needed_two_shows_as_pending_after_one_run(guest_driver: Any) -> None:
    driver = guest_driver(FAULTS)
    out = driver.call(
        "n1",
        GUEST_KICK,
        {
            "VMId": driver.ids(["twice"]),
            "Credential": FakeCredential("Administrator", GUEST_PASSWORD),
            "KickScript": GUEST_KICK_BODY.text(),
            "MaxRuns": 1,
        },
    )
    assert not out.errors
    verdict = judge_all(driver, "n1")["twice"]
    assert (verdict.verdict, verdict.reason) == ("not-activated", "activation-pending")
    assert "second run" in (verdict.fix or "")


def test_fixes_name_the_vm_and_the_flag_that_helps(guest_driver: Any) -> None:
    verdicts = judge_all(guest_driver(FAULTS), "n1")
    assert verdicts["task-disabled"].fix == "hcibenefit guest kick --vm task-disabled --enable-task"
    assert verdicts["never-ran"].fix == "hcibenefit guest kick --vm never-ran"
    assert "guest_credentials" in (verdicts["bad-creds"].fix or "") and "c1" in (
        verdicts["bad-creds"].fix or ""
    )
    assert (
        "169.254.169.253" in verdicts["imds-blocked"].detail
        and "timed out" in verdicts["imds-blocked"].detail
    )


def test_host_side_causes_come_before_what_the_guest_sees(guest_driver: Any) -> None:
    driver = guest_driver(
        """
clusters:
  - name: c1
    version: 22H2
    nodes: [{name: n1, attestation: Expired, expires_in_days: -2}, {name: n2, switch: missing}]
    vms:
      - {name: expired-node, node: n1, benefits: v1, guest: {license_status: 5}}
      - {name: expired-node-licensed, node: n1, benefits: v1}
      - {name: no-nic, node: n1, benefits: none, guest: {license_status: 5}}
      - {name: datacenter, node: n1, edition: ServerDatacenter, os: Windows Server 2022 Datacenter, guest: {license_status: 5}}
      - {name: nic-unplugged, node: n2, benefits: v1, guest: {license_status: 5}}
"""
    )
    verdicts = {**judge_all(driver, "n1"), **judge_all(driver, "n2")}
    got = {name: (v.verdict, v.reason) for name, v in verdicts.items()}
    assert got == {
        "expired-node": ("not-activated", "node-not-serving"),
        "expired-node-licensed": ("at-risk", "node-not-serving"),
        "no-nic": ("not-activated", "benefits-missing"),
        "datacenter": ("not-activated", "other-channel"),
        "nic-unplugged": ("not-activated", "imds-path-broken"),
    }
    assert "Expired" in verdicts["expired-node"].detail
    # The exact way out, in order: the owner node serves again, the VM gets its NIC, the task runs.
    assert verdicts["no-nic"].fix == (
        "first hcibenefit host sync --cluster c1 --node n1; then hcibenefit enable --vm no-nic; "
        "then hcibenefit guest kick --vm no-nic"
    )
    assert verdicts["expired-node"].fix == (
        "hcibenefit host sync --cluster c1 --node n1; then hcibenefit guest kick --vm expired-node"
    )
    # The guest also saw IMDS fail, but the host-side cause is what to fix; it is the only problem listed.
    assert "imds-unreachable" not in verdicts["expired-node"].problems


def test_v2_guests_are_not_blamed_for_having_no_http_path(guest_driver: Any) -> None:
    driver = guest_driver(
        """
clusters:
  - name: c2
    version: 23H2
    nodes: [n1]
    vms:
      - {name: v2-ok, node: n1, benefits: v2}
      - {name: v2-never-ran, node: n1, benefits: v2, guest: {license_status: 5}}
"""
    )
    verdicts = judge_all(driver, "n1")
    assert (verdicts["v2-ok"].verdict, verdicts["v2-ok"].reason) == ("activated", "licensed")
    assert "VMBus" in verdicts["v2-ok"].detail
    assert verdicts["v2-never-ran"].reason == "task-never-ran"


def test_a_failed_task_run_names_the_result_and_the_spp_event(guest_driver: Any) -> None:
    driver = guest_driver(FAULTS)
    driver.kick("n1", ["imds-blocked"])
    verdict = judge_all(driver, "n1")["imds-blocked"]
    assert verdict.reason == "imds-unreachable"
    assert verdict.problems == ("imds-unreachable", "task-failed")


def _ctx() -> GuestContext:
    return GuestContext("vm1", "c1", "n1", None, None, None)


@pytest.mark.parametrize(
    ("error_id", "message", "expected"),
    [
        ("InvalidCredential,Microsoft.PowerShell.Commands.InvokeCommandCommand", "The credential is invalid.",
         ("auth-failed", "bad-credentials")),
        ("AccessDenied", "Logon failure: unknown user name or bad password.", ("auth-failed", "bad-credentials")),
        ("InvalidVMState,Microsoft.PowerShell.Commands.InvokeCommandCommand", "The virtual machine x is not in running state.",
         ("not-assessable", "vm-not-running")),
        ("InvalidVMNameNotSingle,Microsoft.PowerShell.Commands.InvokeCommandCommand", "...",
         ("not-assessable", "vm-not-found")),
        ("PSSessionStateBroken", "An error has occurred which Windows PowerShell cannot handle.",
         ("not-assessable", "powershell-direct-unavailable")),
    ],
)  # fmt: skip
def test_powershell_direct_errors_are_classified(
    error_id: str, message: str, expected: tuple[str, str]
) -> None:
    assert classify_failure(GuestError(message, error_id)) == expected


def test_an_auth_failure_wins_over_other_errors_of_the_same_vm() -> None:
    verdict = assess_failure(
        _ctx(),
        [
            GuestError("broken", "PSSessionStateBroken"),
            GuestError("The credential is invalid.", "InvalidCredential"),
        ],
    )
    assert (verdict.verdict, verdict.reason) == ("auth-failed", "bad-credentials")


def test_document_check_reason_is_the_first_failing_check() -> None:
    chain = signing_chain()
    raw = json.dumps(chain.make_document(vm_id="v", subscription_id="s", nonce="1111111111", fault="expired"))
    check = document_check(
        verify_document(raw, nonce="1111111111", trust=chain.trust_store(), san_pattern=LAB_SAN_PATTERN)
    )
    assert check == DocumentCheck(False, "expired", check.reason) and "expired at" in check.reason
    ok = document_check(
        verify_document(
            json.dumps(chain.make_document(vm_id="v", subscription_id="s", nonce="1")),
            nonce="1",
            trust=chain.trust_store(),
            san_pattern=LAB_SAN_PATTERN,
            at=dt.datetime.now(dt.timezone.utc),
        )
    )
    assert ok.ok and ok.failure_kind is None


def test_an_imds_answer_without_a_document_is_unparsable(guest_driver: Any) -> None:
    driver = guest_driver(FAULTS)
    cluster = driver.state.node("n1").cluster
    host = parse_host_facts(
        driver.document("n1", HOST_FACTS, {"IncludeGuestOs": True}), node="n1", cluster=cluster
    )
    vm = next(v for v in host.vms if v.name == "never-ran")
    body = body_document(parse_fan_out(driver.probe("n1", ["never-ran"]), schema=GUEST_PROBE.key).output_of("never-ran"),
                         schema=GUEST_PROBE_BODY.key)  # fmt: skip
    probe = parse_probe_body({**body, "document": {"fetched_from": None, "raw": None}})
    ctx = GuestContext(vm.name, cluster, "n1", vm, host, requirement(vm, host, Policy()))
    verdict = assess_probe(ctx, probe, None)
    assert (verdict.verdict, verdict.reason) == ("not-activated", "document-unparsable")
