"""A subscription that cannot be read (no access, no login) leaves every azure check about its clusters
untold: ERROR with what could not be read and what would fix it, never PASS or N/A, in sweep, reconcile
and checklist avd alike. The denied cluster below has a resource bridge that is down: Azure hides it, so
nothing may call the cluster healthy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.checks.registry import azure_registrations
from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.fleet import AZURE_TOKEN_ENV, Lab
from hcibenefit.lab.spec import parse_fleet
from tests.integration.conftest import LabClient, client_for, running_lab

DENIED = "11111111-1111-4111-8111-111111111111"
FLEET = f"""
azure: {{denied_subscriptions: [{DENIED}]}}
clusters:
  - name: readable
    version: 23H2
    nodes: [r-n1]
    vms:
      - {{name: r-avd, node: r-n1, benefits: v2}}
  - name: denied
    version: 23H2
    azure: {{subscription: {DENIED}, resource_bridge: Offline}}
    nodes: [d-n1]
    vms:
      - {{name: d-avd, node: d-n1, benefits: v2, azure: {{host_pool: pool-d}}}}
"""
ROLE_FIX = "az role assignment create --assignee "
SCOPE_FIX = f"--role Reader --scope /subscriptions/{DENIED}"


@pytest.fixture(scope="module")
def denied_lab() -> Iterator[Lab]:
    yield from running_lab(parse_fleet(FLEET, "denied-fleet.yaml"))


@pytest.fixture
def lab(
    denied_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> LabClient:
    denied_lab.reset()
    return client_for(denied_lab, tmp_path, monkeypatch, capsys)


def azure_results(report: dict[str, Any], cluster: str) -> dict[str, dict[str, Any]]:
    return {f["check"]: f for f in report["findings"] if f["scope"] == "azure" and f["cluster"] == cluster}


def test_sweep_calls_every_azure_check_of_the_unread_subscription_an_error(lab: LabClient) -> None:
    result = lab.cli("sweep", "-o", "json", "--no-history", "--fail-on", "none")
    assert result.code == ExitCode.INCOMPLETE, result.err
    report = result.json()
    denied = azure_results(report, "denied")
    every_check = {r.meta.id for r in azure_registrations()}
    assert set(denied) == every_check
    assert {c: r["status"] for c, r in denied.items() if r["status"] != "ERROR"} == {}
    bridge = denied["azure.resource-bridge-not-running"]
    assert f"subscription {DENIED} could not be read" in bridge["message"]
    assert "AuthorizationFailed" in bridge["message"]
    assert ROLE_FIX in bridge["remediation"] and SCOPE_FIX in bridge["remediation"]
    # The principal comes from Azure's own AuthorizationFailed message: an exact command, no placeholder.
    assert "<" not in bridge["remediation"]
    # The readable cluster is judged as usual.
    readable = azure_results(report, "readable")
    assert set(readable) == every_check and "ERROR" not in {r["status"] for r in readable.values()}


def test_reconcile_lists_what_it_could_not_assess_and_why(lab: LabClient) -> None:
    result = lab.cli("reconcile", "-o", "json", "--fail-on", "none")
    assert result.code == ExitCode.INCOMPLETE, result.err
    report = result.json()
    assert report["findings"] == []
    untold = report["not_assessed"]
    assert {r["cluster"] for r in untold} == {"denied"}
    assert {r["check"] for r in untold} == {r.meta.id for r in azure_registrations()}
    assert {r["status"] for r in untold} == {"ERROR"}
    assert all(DENIED in r["message"] and SCOPE_FIX in r["remediation"] for r in untold)
    assert report["summary"]["not_assessed"] == len(untold)
    table = lab.cli("reconcile", "--fail-on", "none")
    assert "Not assessed" in table.out and ROLE_FIX in table.out


def test_checklist_says_what_to_grant(lab: LabClient) -> None:
    result = lab.cli("checklist", "avd", "--vm", "d-avd", "-o", "json")
    assert result.code != ExitCode.OK
    items = {i["item"]: i for i in result.json()["vms"][0]["items"]}
    for name in ("resource-bridge", "cluster-registered", "cluster-sync", "verification-enabled"):
        item = items[name]
        assert item["status"] == "FAIL" and item["assessed"] is False, item
        assert DENIED in item["evidence"] and SCOPE_FIX in (item["fix"] or ""), item


def test_no_login_is_an_error_for_every_cluster_with_the_login_command(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(AZURE_TOKEN_ENV)
    result = lab.cli("sweep", "-o", "json", "--no-history", "--fail-on", "none")
    assert result.code == ExitCode.INCOMPLETE, result.err
    report = result.json()
    for cluster in ("readable", "denied"):
        results = azure_results(report, cluster)
        assert {r["status"] for r in results.values()} == {"ERROR"}, cluster
        assert all(f"export {AZURE_TOKEN_ENV}=" in (r["remediation"] or "") for r in results.values())
