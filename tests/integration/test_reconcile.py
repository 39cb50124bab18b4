"""`hcibenefit reconcile` against the lab: every planted discrepancy found with its check id, nothing else;
a clean fleet yields none; what Azure cannot tell (a subscription unread, a node down) is never a finding."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.spec import parse_fleet
from tests.integration.conftest import LabClient, client_for, requests_when_azure_opens, start_lab

PLANTED_IN_DEFAULT_FLEET = {
    # Derived: Azure's cluster flag is the last sync, the node expired since.
    ("azure.imds-enabled-node-not-active", "hci-lab-01", "lab01-n3"),
    ("azure.sync-near-limit", "hci-lab-01", "hci-lab-01"),
    ("azure.cluster-not-connected", "hci-lab-01", "hci-lab-01"),
    ("azure.wss-not-applied", "hci-lab-01", "lab01-n2"),
    ("azure.imds-disabled", "hci-lab-02", "hci-lab-02"),
    ("azure.node-only-in-azure", "hci-lab-02", "lab02-n4"),
    ("azure.node-arc-disconnected", "hci-lab-02", "lab02-n2"),
    ("azure.arc-vm-orphaned", "hci-lab-02", "w11ms-deleted"),
    ("azure.vm-not-projected", "hci-lab-02", "w11-single-session"),
    ("azure.vm-power-state-differs", "hci-lab-02", "w11ms-paused"),
    ("azure.vm-host-node-differs", "hci-lab-02", "w10ms-legacy-ok"),
    ("azure.avd-host-without-benefits", "hci-lab-02", "w11ms-gsi-off"),
    ("azure.cluster-unmanaged", "hci-lab-03", "hci-lab-03"),
}
NEEDS_GUESTS = {("azure.vm-license-differs", "hci-lab-02", "azedition-kvp-off")}

CLEAN_FLEET = """
clusters:
  - name: clean-22h2
    version: 22H2
    nodes: [c1-n1, c1-n2]
    vms:
      - {name: c1-avd, node: c1-n1, benefits: v1}
      - {name: c1-sql, node: c1-n2, edition: ServerDatacenter, os: Windows Server 2022 Datacenter}
  - name: clean-23h2
    version: 23H2
    nodes: [c2-n1, c2-n2]
    vms:
      - {name: c2-avd, node: c2-n1, benefits: v2, azure: {host_pool: pool-clean}}
      - {name: c2-off, node: c2-n2, state: Off, benefits: v2}
      - {name: c2-legacy, node: c2-n2, os: Windows 10 Enterprise multi-session, benefits: v1}
"""

DRIFT_FLEET = """
azure: {denied_subscriptions: [11111111-1111-4111-8111-111111111111]}
clusters:
  - name: gone-from-azure              # registered on the nodes, resource deleted in Azure
    version: 23H2
    azure: {registered: false}
    nodes: [g-n1]
  - name: never-registered
    version: 23H2
    registration: NotYet
    nodes: [r-n1]
  - name: in-denied-subscription       # Azure cannot say: no finding, an error for the subscription
    version: 23H2
    azure: {subscription: 11111111-1111-4111-8111-111111111111}
    nodes: [d-n1]
  - name: drifted
    version: 23H2
    azure:
      sync_age_days: 40
      resource_bridge: Offline
      missing_nodes: [x-n2]
    nodes: [x-n1, x-n2]
    vms:
      - {name: x-recreated, node: x-n1, benefits: v2, azure: {hyperv_id: stale}}
      - {name: x-ok, node: x-n2, benefits: v2}
  - name: late
    version: 22H2
    azure: {sync_age_days: 3}
    nodes: [l-n1]
"""


def found(result_json: dict) -> set[tuple[str, str, str]]:
    return {(f["check"], f["cluster"], f["target"]) for f in result_json["findings"]}


def test_every_planted_discrepancy_is_found_and_nothing_else(lab: LabClient) -> None:
    result = lab.cli("reconcile", "--guests", "--format", "json")
    assert result.code == ExitCode.FINDINGS, result.err
    report = result.json()
    assert found(report) == PLANTED_IN_DEFAULT_FLEET | NEEDS_GUESTS
    orphan = next(f for f in report["findings"] if f["check"] == "azure.arc-vm-orphaned")
    assert "azcmagent disconnect without --force-local-only" in orphan["remediation"]
    assert "deletes the VM on-premises as well" in orphan["remediation"]
    assert orphan["doc_url"].endswith("azcmagent-disconnect")
    by_cluster = {c["name"]: c for c in report["clusters"]}
    assert by_cluster["hci-lab-02"]["joined"] == {"hyperVVmId": 7, "name": 0}
    assert by_cluster["hci-lab-01"]["arc_vm_management"] is False
    # Resource Graph lacks the Hyper-V ids: one ARM read per VM instance of the cluster, no more.
    assert report["azure"]["requests"]["arm_reads"] == 8
    # The lab pages Resource Graph by 10 rows: the default fleet's rows take 4 pages.
    assert report["azure"]["requests"]["resource_graph_requests"] == 4
    assert (
        "azure: 4 Resource Graph request(s) for 4 page(s), 1 subscription read(s), 8 ARM read(s)"
        in result.err
    )
    # Without --guests, the guests' activation is not compared; everything else is the same.
    quick = lab.cli("reconcile", "--format", "json", "--fail-on", "none")
    assert quick.code == ExitCode.OK and found(quick.json()) == PLANTED_IN_DEFAULT_FLEET
    # The --guests run asked each owner node of the VMs Azure has an activation for once.
    assert lab.invocations("guest-probe") == 3


def test_azure_is_read_once_the_nodes_were_asked_not_before_them(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Begun first, the Azure SDK's imports and the Resource Graph query held back every node's first
    request (one interpreter lock); they now start in the nodes' first round trip."""
    asked_when_azure_began = requests_when_azure_opens(lab, monkeypatch)
    result = lab.cli("reconcile", "--format", "json", "--fail-on", "none")
    assert result.code == ExitCode.OK, result.err
    assert found(result.json()) == PLANTED_IN_DEFAULT_FLEET
    assert len(asked_when_azure_began) == 1 and asked_when_azure_began[0] > 0


def test_azure_follows_what_the_hosts_change(lab: LabClient) -> None:
    assert lab.cli("host", "sync", "--cluster", "hci-lab-01", "--yes", "--format", "json").code in (0, 1)
    report = lab.cli("reconcile", "--cluster", "hci-lab-01", "--format", "json").json()
    # The sync reached Azure: lastSyncTimestamp is fresh, the expired node is Active again.
    assert found(report) == {("azure.wss-not-applied", "hci-lab-01", "lab01-n2")}
    # Only some clusters selected: Azure clusters outside the selection are not called unmanaged.
    assert report["unmanaged"] == []


def test_vm_selection_narrows_vm_findings_only(lab: LabClient) -> None:
    report = lab.cli("reconcile", "--vm", "w11*", "--format", "json", "--fail-on", "none").json()
    vm_level = {(c, t) for c, _, t in found(report) if t.startswith(("w", "x"))}
    assert ("azure.vm-not-projected", "w11-single-session") in vm_level
    assert ("azure.vm-host-node-differs", "w10ms-legacy-ok") not in vm_level
    assert ("azure.imds-disabled", "hci-lab-02", "hci-lab-02") in found(report)


@pytest.fixture
def fleet_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[object]:
    started = []

    def make(text: str) -> LabClient:
        lab = start_lab(parse_fleet(text, "reconcile-fleet.yaml"))
        started.append(lab)
        return client_for(lab, tmp_path, monkeypatch, capsys)

    try:
        yield make
    finally:
        for lab in started:
            lab.stop()


def test_a_clean_fleet_yields_no_findings(fleet_lab) -> None:  # type: ignore[no-untyped-def]
    lab = fleet_lab(CLEAN_FLEET)
    result = lab.cli("reconcile", "--guests", "--format", "json")
    assert result.code == ExitCode.OK, result.out + result.err
    report = result.json()
    assert report["findings"] == [] and report["azure"]["errors"] == [] and report["unreachable"] == {}
    assert {c["name"]: c["azure_id"] is not None for c in report["clusters"]} == {
        "clean-22h2": True,
        "clean-23h2": True,
    }


def test_drift_and_what_azure_cannot_tell(fleet_lab) -> None:  # type: ignore[no-untyped-def]
    lab = fleet_lab(DRIFT_FLEET)
    result = lab.cli("reconcile", "--format", "json", "--fail-on", "none")
    # A subscription could not be read: incomplete, whatever the findings.
    assert result.code == ExitCode.INCOMPLETE, result.err
    report = result.json()
    assert found(report) == {
        ("azure.cluster-not-in-azure", "gone-from-azure", "gone-from-azure"),
        ("azure.cluster-not-in-azure", "never-registered", "never-registered"),
        ("azure.sync-out-of-policy", "drifted", "drifted"),
        ("azure.cluster-not-connected", "drifted", "drifted"),
        ("azure.resource-bridge-not-running", "drifted", "drifted-arcbridge"),
        ("azure.node-not-in-azure", "drifted", "x-n2"),
        ("azure.arc-vm-orphaned", "drifted", "x-recreated"),
        ("azure.vm-not-projected", "drifted", "x-recreated"),
        ("azure.sync-late", "late", "late"),
        ("azure.cluster-not-connected", "late", "late"),
    }
    details = {(f["check"], f["cluster"]): f for f in report["findings"]}
    gone = details[("azure.cluster-not-in-azure", "gone-from-azure")]
    assert (
        "the nodes report /subscriptions/" in gone["detail"]
        and "Register-AzStackHCI -RepairRegistration" in gone["remediation"]
    )
    assert (
        "RegistrationStatus NotYet" in details[("azure.cluster-not-in-azure", "never-registered")]["detail"]
    )
    assert "re-created outside Azure" in details[("azure.arc-vm-orphaned", "drifted")]["detail"]
    errors = {e["subscription"]: e["error"] for e in report["azure"]["errors"]}
    assert set(errors) == {"11111111-1111-4111-8111-111111111111"} and "AuthorizationFailed" in next(
        iter(errors.values())
    )
    in_denied = next(c for c in report["clusters"] if c["name"] == "in-denied-subscription")
    assert in_denied["azure_known"] is False


def test_throttling_that_does_not_clear_is_incomplete_not_missing(lab: LabClient) -> None:
    response = requests.post(
        f"{lab.lab.control_url}/lab/azure",
        json={"throttle": {"target": "graph", "count": 50, "retry_after": 0.05}},
        timeout=10,
    )
    assert response.status_code == 200
    result = lab.cli("reconcile", "--format", "json", "--fail-on", "none")
    assert result.code == ExitCode.INCOMPLETE
    report = result.json()
    assert report["findings"] == [] and "kept answering throttled" in report["azure"]["errors"][0]["error"]


def test_a_node_down_keeps_orphans_unconcluded(lab: LabClient) -> None:
    lab.lab.set_faults("lab02-n3", down=True)
    result = lab.cli("reconcile", "--cluster", "hci-lab-02", "--format", "json", "--fail-on", "none")
    assert result.code == ExitCode.INCOMPLETE
    report = result.json()
    checks = {c for c, _, _ in found(report)}
    assert "azure.arc-vm-orphaned" not in checks and "azure.imds-disabled" in checks
    assert report["clusters"][0]["orphaned"] is None and "lab02-n3" in report["unreachable"]


def test_reconcile_from_a_snapshot_sends_nothing_to_azure(lab: LabClient, tmp_path: Path) -> None:
    arm = lab.lab.arm
    assert arm is not None
    from hcibenefit.azure.query import INVENTORY_QUERY

    rows: list[dict] = []
    token = None
    while True:
        options: dict = {"$top": 1000}
        if token:
            options["$skipToken"] = token
        body = requests.post(
            f"{arm.url}/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01",
            json={"query": INVENTORY_QUERY, "options": options},
            headers={"Authorization": f"Bearer {lab.lab.azure_token}"},
            verify=str(arm.ca_bundle),
            timeout=10,
        ).json()
        rows += body["data"]
        token = body.get("$skipToken")
        if not token:
            break
    snapshot = tmp_path / "arm.json"
    snapshot.write_text(
        json.dumps({"count": len(rows), "data": rows, "skip_token": None, "total_records": len(rows)})
    )
    lab.lab.reset()
    result = lab.cli("reconcile", "--arm-snapshot", str(snapshot), "--format", "json", "--fail-on", "none")
    assert result.code == ExitCode.OK, result.err
    report = result.json()
    # No hyperVVmId in Resource Graph's rows and no ARM to ask: VMs join by name; Azure's host node is unknown.
    assert report["clusters"][1]["joined"] == {"hyperVVmId": 0, "name": 7}
    checks = {c for c, _, _ in found(report)}
    assert "azure.vm-host-node-differs" not in checks and "azure.arc-vm-orphaned" in checks
    azure = lab.state()["azure"]
    assert azure["graph_requests"] == 0 and azure["arm_reads"] == 0 and azure["subscription_reads"] == 0


def test_ctrl_c_mid_reconcile_closes_every_shell_and_exits_130(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from hcibenefit.lab.spec import generate_fleet

    spec = generate_fleet(1, 4, 2, seed=5)
    for node in spec.clusters[0].nodes:
        node.faults.latency_ms = 400  # the hosts are still answering when Ctrl-C comes
    lab = start_lab(spec)
    try:
        inventory = lab.write_inventory(tmp_path / "inventory.yaml")
        env = {**os.environ, **lab.environment(), "HCIBENEFIT_AUDIT_LOG": str(tmp_path / "audit.log")}
        process = subprocess.Popen(
            [sys.executable, "-m", "hcibenefit", "-i", str(inventory), "reconcile"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Once every node has its shell (each is then deleted from outside in one round trip); a Create
        # still in flight at Ctrl-C may be answered after the grace on a loaded machine.
        nodes = len(spec.clusters[0].nodes)
        deadline = time.monotonic() + 20
        while lab.open_shells() < nodes and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lab.open_shells() == nodes, "reconcile never had every shell open"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "Traceback" not in err
        assert lab.open_shells() == 0, err
    finally:
        lab.stop()
