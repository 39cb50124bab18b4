"""`hcibenefit checklist avd` against the lab: healthy session hosts are a go, and each planted problem flips
exactly its item and the go/no-go line."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest

from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.state import FleetState
from tests.checklist.conftest import HEALTHY, checklist, planted, run_cli, statuses
from tests.integration.conftest import LabClient

pytestmark = pytest.mark.lab

EVERY_ITEM = (
    "cluster-release",
    "cluster-registered",
    "cluster-sync",
    "verification-enabled",
    "verification-active",
    "imds-switch",
    "benefits-configured",
    "vm-generation-power",
    "kvp",
    "guest-update",
    "guest-activated",
    "license-task",
    "imds-document",
    "time-sync",
    "arc-guest-management",
    "resource-bridge",
    "avd-agent",
    "session-host",
    "host-pool",
)


def _healthy(client: LabClient) -> dict[str, Any]:
    code, document = checklist(client, *(a for vm in HEALTHY for a in ("--vm", vm)))
    assert code == 0, document["go_line"]
    return document


def test_healthy_session_hosts_are_a_go(avd: LabClient) -> None:
    document = _healthy(avd)
    assert document["go"] is True and document["go_line"].startswith("GO: all 3 session host(s)")
    assert [vm["vm"] for vm in document["vms"]] == list(HEALTHY)
    for vm in document["vms"]:
        assert vm["go"] is True and vm["cluster"] == "hci-avd"
        assert [i["item"] for i in vm["items"]] == list(EVERY_ITEM)
        for item in vm["items"]:
            assert set(item) >= {"item", "status", "evidence", "fix"}
            assert item["status"] in ("PASS", "N/A") or item["item"] == "cluster-release", item
            assert item["evidence"], item
    items = {i["item"]: i for i in document["vms"][2]["items"]}  # sh-w10-01: V1
    assert items["imds-switch"]["status"] == "PASS"
    assert "legacy OS support Enabled on every node" in items["benefits-configured"]["evidence"]
    assert "attested document verifies" in items["imds-document"]["evidence"]
    v2 = {i["item"]: i for i in document["vms"][0]["items"]}
    assert v2["imds-switch"]["status"] == "N/A" and "V2" in v2["imds-switch"]["evidence"]
    assert "DomainJoinedCheck, MetaDataServiceCheck succeeded" in v2["session-host"]["evidence"]
    # The lab's 23H2 left support in April 2026: a warning, a go unless --strict.
    assert v2["cluster-release"]["status"] == "WARN"
    code, strict = checklist(avd, "--vm", "sh-w11-01", "--strict")
    assert code == 1 and strict["go"] is False and "(--strict)" in strict["go_line"]


def _node(attribute: str, value: Any, node: str = "avd-n2") -> Callable[[FleetState], None]:
    def change(state: FleetState) -> None:
        setattr(state.node(node), attribute, value)

    return change


def _vm(vm: str, attribute: str, value: Any) -> Callable[[FleetState], None]:
    def change(state: FleetState) -> None:
        setattr(state.vms[vm], attribute, value)

    return change


def _guest(vm: str, **values: Any) -> Callable[[FleetState], None]:
    def change(state: FleetState) -> None:
        for key, value in values.items():
            setattr(state.vms[vm].guest, key, value)

    return change


def _expiring(state: FleetState) -> None:
    node = state.node("avd-n2")
    node.expiration = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=5)


HOST_PLANTS: dict[str, tuple[Callable[[FleetState], None], str, str, str]] = {
    # name: (change, VM, the item it must flip, its status)
    # A node's problem is every VM's: each can fail over or live-migrate to it.
    "node-expired": (_node("attestation", "Expired"), "*", "verification-active", "FAIL"),
    "node-inactive": (_node("attestation", "Inactive"), "*", "verification-active", "FAIL"),
    "node-expires-inside-window": (_expiring, "*", "verification-active", "FAIL"),
    "switch-missing-on-failover-node": (_node("switch", None), "sh-w10-01", "imds-switch", "FAIL"),
    "legacy-off-on-failover-node": (
        _node("legacy_os_support", False),
        "sh-w10-01",
        "benefits-configured",
        "FAIL",
    ),
    "gsi-off": (_vm("sh-w11-01", "gsi", False), "sh-w11-01", "benefits-configured", "FAIL"),
    "not-activated": (_guest("sh-w11-02", license_status=5), "sh-w11-02", "guest-activated", "FAIL"),
    "task-disabled": (_guest("sh-w11-01", task="Disabled"), "sh-w11-01", "license-task", "FAIL"),
    "task-failed": (_guest("sh-w11-01", last_result=0x80072EFD), "sh-w11-01", "license-task", "FAIL"),
    "imds-unreachable": (_guest("sh-w10-01", imds="unreachable"), "sh-w10-01", "imds-document", "FAIL"),
    "document-tampered": (_guest("sh-w10-01", document="tampered"), "sh-w10-01", "imds-document", "FAIL"),
    "cumulative-update-too-old": (_guest("sh-w11-01", ubr=3155), "sh-w11-01", "guest-update", "FAIL"),
    "windows-10-update-too-old": (_guest("sh-w10-01", ubr=4170), "sh-w10-01", "guest-update", "FAIL"),
    "clock-ten-minutes-ahead": (_guest("sh-w10-01", clock_skew_s=600), "sh-w10-01", "time-sync", "FAIL"),
    "clock-two-minutes-behind": (_guest("sh-w11-02", clock_skew_s=-120), "sh-w11-02", "time-sync", "WARN"),
    "avd-agent-not-registered": (
        _guest("sh-w11-02", avd_agent="unregistered"),
        "sh-w11-02",
        "avd-agent",
        "FAIL",
    ),
    "avd-agent-not-installed": (_guest("sh-w11-01", avd_agent="missing"), "sh-w11-01", "avd-agent", "FAIL"),
}


PLANTED_SKEW = {"clock-ten-minutes-ahead": 600, "clock-two-minutes-behind": 120}
# What the failing item must say: the planted cause, read by the real probe script in the lab's guest.
EVIDENCE = {
    "cumulative-update-too-old": "build 22631.3155 is older than 22631.3447 (KB5036893",
    "windows-10-update-too-old": "build 19045.4170 is older than 19045.4291 (KB5036892",
    "clock-ten-minutes-ahead": "s ahead of avd-n1's",
    "clock-two-minutes-behind": "s behind avd-n2's",
    "avd-agent-not-registered": "not registered (IsRegistered 0)",
    "avd-agent-not-installed": "not installed (no HKLM\\SOFTWARE\\Microsoft\\RDInfraAgent)",
}


@pytest.mark.parametrize("plant", sorted(HOST_PLANTS))
def test_a_planted_host_or_guest_problem_flips_exactly_its_item(avd: LabClient, plant: str) -> None:
    change, vm, item, status = HOST_PLANTS[plant]
    before = statuses(_healthy(avd))
    with avd.lab.state.lock:
        change(avd.lab.state)
    code, document = checklist(avd, *(a for name in HEALTHY for a in ("--vm", name)))
    after = statuses(document)
    flipped = {key: after[key] for key in after if after[key] != before[key]}
    vms = HEALTHY if vm == "*" else (vm,)
    assert flipped == {(name, item): status for name in vms}, flipped
    if status == "WARN":
        assert code == 0 and document["go"] is True and "warning" in document["go_line"]
    else:
        assert code == 1 and document["go"] is False
        assert (
            document["go_line"]
            == f"NO-GO: {len(vms)} of 3 session host(s) have a FAIL item: {', '.join(vms)}"
        )
    for name in vms:
        failing = next(i for v in document["vms"] if v["vm"] == name for i in v["items"] if i["item"] == item)
        assert failing["evidence"] and failing["fix"] and failing["assessed"], failing
        assert EVIDENCE.get(plant, "") in failing["evidence"], failing
        if plant.startswith("clock-"):
            # The measured skew is an interval around the planted one (the node's clock read around the fan-out).
            least, most = (int(n) for n in re.findall(r"clock is (\d+) to (\d+) s", failing["evidence"])[0])
            assert least <= PLANTED_SKEW[plant] <= most, failing["evidence"]


def _lab(client: LabClient) -> Lab:
    return client.lab


def _vm_azure(client: LabClient, vm: str) -> Any:
    return next(v for c in _lab(client).spec.clusters for v in c.vms if v.name == vm).azure


def _cluster_azure(client: LabClient) -> Any:
    return _lab(client).spec.clusters[0].azure


AZURE_PLANTS: dict[str, tuple[Callable[[LabClient], Any], dict[str, Any], str, str, str]] = {
    "session-needs-assistance": (
        lambda c: _vm_azure(c, "sh-w11-01"),
        {"session_status": "NeedsAssistance"},
        "sh-w11-01",
        "session-host",
        "FAIL",
    ),
    "domain-join-check-failed": (
        lambda c: _vm_azure(c, "sh-w11-02"),
        {"failed_health_checks": ["DomainJoinedCheck"]},
        "sh-w11-02",
        "session-host",
        "FAIL",
    ),
    "monitoring-check-failed": (
        lambda c: _vm_azure(c, "sh-w11-02"),
        {"failed_health_checks": ["MonitoringAgentCheck"]},
        "sh-w11-02",
        "session-host",
        "WARN",
    ),
    "no-guest-management": (
        lambda c: _vm_azure(c, "sh-w10-01"),
        {"license_status": "none"},
        "sh-w10-01",
        "arc-guest-management",
        "FAIL",
    ),
    "verification-off-in-azure": (
        _cluster_azure,
        {"imds_attestation": "Disabled"},
        "*",
        "verification-enabled",
        "FAIL",
    ),
    "resource-bridge-offline": (
        _cluster_azure,
        {"resource_bridge": "Offline"},
        "*",
        "resource-bridge",
        "FAIL",
    ),
}


@pytest.mark.parametrize("plant", sorted(AZURE_PLANTS))
def test_a_planted_azure_problem_flips_exactly_its_item(avd: LabClient, plant: str) -> None:
    target, changes, vm, item, status = AZURE_PLANTS[plant]
    before = statuses(_healthy(avd))
    with planted(_lab(avd), target(avd), **changes):
        code, document = checklist(avd, *(a for name in HEALTHY for a in ("--vm", name)))
    after = statuses(document)
    flipped = {key: after[key] for key in after if after[key] != before[key]}
    vms = HEALTHY if vm == "*" else (vm,)
    assert flipped == {(name, item): status for name in vms}, flipped
    if status == "FAIL":
        assert code == 1 and document["go"] is False and document["go_line"].startswith("NO-GO")
    else:
        assert code == 0 and document["go"] is True
        code, strict = checklist(avd, "--vm", vm, "--strict")
        assert code == 1 and strict["go"] is False


def test_sync_inside_the_window_is_a_no_go(avd: LabClient) -> None:
    before = statuses(_healthy(avd))
    with avd.lab.state.lock:
        avd.lab.state.clusters["hci-avd"].last_sync = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=20)
    code, document = checklist(avd, "--vm", "sh-w11-01", "--window", "14")
    after = statuses(document)
    assert after[("sh-w11-01", "cluster-sync")] == "FAIL"
    assert {k for k in after if after[k] != before[k]} == {("sh-w11-01", "cluster-sync")}
    item = next(i for i in document["vms"][0]["items"] if i["item"] == "cluster-sync")
    assert "inside the 14-day window" in item["evidence"]
    assert "hcibenefit host sync --cluster hci-avd" in item["fix"]
    # A shorter window fits before the limit: no longer a no-go, still a warning (syncs are failing).
    code, short = checklist(avd, "--vm", "sh-w11-01", "--window", "5")
    short_item = next(i for i in short["vms"][0]["items"] if i["item"] == "cluster-sync")
    assert code == 0 and short_item["status"] == "WARN"
    assert "inside the" not in short_item["evidence"] and "20 day(s) ago" in short_item["evidence"]


def test_a_host_pool_of_healthy_session_hosts_is_a_go(avd: LabClient) -> None:
    pool = _pool_id(avd, "pool-01")
    code, document = checklist(avd, "--host-pool", pool)
    assert code == 0, document["go_line"]
    assert sorted(vm["vm"] for vm in document["vms"]) == sorted(HEALTHY)
    assert document["run"]["selection"]["host_pool"] == pool.lower()


def _pool_id(client: LabClient, pool: str) -> str:
    from hcibenefit.lab.arm.model import AVD_RESOURCE_GROUP, subscription_of

    return (
        f"/subscriptions/{subscription_of(client.lab.state)}/resourceGroups/{AVD_RESOURCE_GROUP}"
        f"/providers/Microsoft.DesktopVirtualization/hostPools/{pool}"
    )


def test_a_pool_mixing_azure_vms_fails_and_lists_what_cannot_be_mapped(avd: LabClient) -> None:
    code, document = checklist(avd, "--host-pool", _pool_id(avd, "pool-mixed"))
    assert code == 5 and document["go"] is False
    by_vm = {vm["vm"]: vm for vm in document["vms"]}
    assert set(by_vm) == {"sh-mixed-01", "cloud-sh-01.lab.test"}
    items = {i["item"]: i for i in by_vm["sh-mixed-01"]["items"]}
    assert items["host-pool"]["status"] == "FAIL"
    assert "mixes Azure VMs (cloud-sh-01.lab.test)" in items["host-pool"]["evidence"]
    assert [i["status"] for i in items.values() if i["item"] != "host-pool"].count("FAIL") == 0
    unmapped = by_vm["cloud-sh-01.lab.test"]
    assert unmapped["cluster"] is None and unmapped["go"] is False
    assert unmapped["items"][0]["item"] == "session-host-mapped"
    assert "an Azure VM (Microsoft.Compute)" in unmapped["items"][0]["evidence"]


def test_a_stale_session_host_is_listed_unmapped_and_warns_its_pool(avd: LabClient) -> None:
    code, document = checklist(avd, "--host-pool", _pool_id(avd, "pool-stale"))
    by_vm = {vm["vm"]: vm for vm in document["vms"]}
    assert set(by_vm) == {"sh-stale-pool-01", "gone-sh-01.lab.test"}
    assert "Arc machine is not in Azure" in by_vm["gone-sh-01.lab.test"]["items"][0]["evidence"]
    items = {i["item"]: i for i in by_vm["sh-stale-pool-01"]["items"]}
    assert items["host-pool"]["status"] == "WARN" and "gone-sh-01.lab.test" in items["host-pool"]["evidence"]
    assert code == 4 and document["go"] is False  # the unmapped one cannot be vouched for


def test_usage_errors_change_nothing_and_say_why(avd: LabClient, tmp_path: Any) -> None:
    result = run_cli(avd)
    assert result.code == 2 and "--vm NAME|GLOB, --vm-file FILE or --host-pool" in result.err
    result = run_cli(avd, "--host-pool", "pool-01")
    assert result.code == 2 and "not a host pool's resource id" in result.err
    result = run_cli(avd, "--host-pool", _pool_id(avd, "no-such-pool"))
    assert result.code == 2 and "no host pool" in result.err
    result = run_cli(avd, "--vm", "sh-w11-01", "--host-pool", _pool_id(avd, "pool-01"))
    assert result.code == 2
    names = tmp_path / "hosts.txt"
    names.write_text("# session hosts\nsh-w11-01\n\nsh-w11-\x1b02\n")
    result = run_cli(avd, "--vm-file", str(names))
    assert result.code == 2 and f"{names}:4:" in result.err and "control character" in result.err
    result = run_cli(avd, "--vm-file", str(tmp_path / "missing.txt"))
    assert result.code == 2 and "no such file" in result.err
    assert avd.invocations("host-facts") == 0, "no node was asked"
    # An unknown VM is known to be unknown only once the nodes answered.
    result = run_cli(avd, "--vm", "no-such-vm")
    assert result.code == 2 and "no VM matches 'no-such-vm'" in result.err


def test_vm_file_names_the_session_hosts(avd: LabClient, tmp_path: Any) -> None:
    names = tmp_path / "hosts.txt"
    names.write_text("# the pool\nsh-w11-0*\n  sh-w10-01  \n")
    code, document = checklist(avd, "--vm-file", str(names))
    assert code == 0
    assert [vm["vm"] for vm in document["vms"]] == ["sh-w11-01", "sh-w11-02", "sh-w10-01"]
    assert document["run"]["selection"]["vm_file"] == str(names)


def test_without_azure_the_azure_items_are_not_applicable(avd: LabClient, tmp_path: Any) -> None:
    text = avd.inventory.read_text()
    local = tmp_path / "no-azure.yaml"
    local.write_text(text[: text.index("azure:")] + text[text.index("attestation:") :])
    result = avd.cli("-i", str(local), "checklist", "avd", "--vm", "sh-w11-01", "-o", "json")
    document = result.json()
    assert result.code == 0, document["go_line"]
    items = {i["item"]: i for i in document["vms"][0]["items"]}
    for item in ("arc-guest-management", "resource-bridge", "session-host", "host-pool"):
        assert items[item]["status"] == "N/A"
        assert items[item]["evidence"] == "needs Azure: the inventory has no azure: section"
    assert items["verification-enabled"]["status"] == "PASS"  # the nodes say so too
    assert document["run"]["azure"] is None
    result = avd.cli("-i", str(local), "checklist", "avd", "--host-pool", _pool_id(avd, "pool-01"))
    assert result.code == 2 and "no azure: section" in result.err


def test_azure_that_cannot_be_read_is_not_assessed(avd: LabClient, monkeypatch: Any) -> None:
    from tests.azure.test_lab_arm import control

    control(avd.lab, {"revoke_token": True})
    try:
        result = avd.cli("checklist", "avd", "--vm", "sh-w11-01", "-o", "json")
    finally:
        control(avd.lab, {"revoke_token": False})
    document = result.json()
    assert result.code == 4 and document["go"] is False
    items = {i["item"]: i for i in document["vms"][0]["items"]}
    for item in ("arc-guest-management", "resource-bridge", "session-host", "host-pool"):
        assert items[item]["status"] == "FAIL" and items[item]["assessed"] is False, items[item]
        assert items[item]["evidence"].startswith("not assessed: Azure could not be read")
    assert items["guest-activated"]["status"] == "PASS"
