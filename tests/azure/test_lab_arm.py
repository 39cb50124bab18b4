"""The real azure-mgmt clients against the lab's ARM and Resource Graph: paging, throttling, errors, reads."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from hcibenefit.azure.credentials import AzureLoginError
from hcibenefit.azure.query import INVENTORY_QUERY
from hcibenefit.azure.session import AzureSession, WriteRefused
from hcibenefit.lab.fleet import Lab
from tests.azure.conftest import SMALL_FLEET, settings_for

VMI_API = "2025-06-01-preview"
DENIED = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"


def control(lab: Lab, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{lab.control_url}/lab/azure", json=body, timeout=10)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def azure_state(lab: Lab) -> dict[str, Any]:
    state: dict[str, Any] = requests.get(f"{lab.control_url}/lab/state", timeout=10).json()["azure"]
    return state


def test_paging_reads_every_row_with_identical_requests(azure_lab: Callable[[str], Lab]) -> None:
    lab = azure_lab(SMALL_FLEET)
    with AzureSession(settings_for(lab)) as session:
        read = session.read_inventory(settings_for(lab).subscriptions)
    assert read.errors == {}
    inventory = read.inventory
    assert len(inventory) == 13
    assert {c.name for c in inventory.clusters} == {"hci-a", "hci-b"}
    assert len(inventory.vm_machines()) == 3 and len(inventory.instances) == 3
    assert len(inventory.node_machines()) == 3 and len(inventory.bridges) == 1
    # 13 rows, pages of 4: four requests, the same query text and scope each time.
    log = azure_state(lab)["graph_log"]
    assert read.stats.graph.requests == 4 == len(log)
    assert len({entry["query_sha256"] for entry in log}) == 1
    assert {json.dumps(entry["subscriptions"]) for entry in log} == {
        json.dumps(list(settings_for(lab).subscriptions))
    }
    assert [entry["skip_token"] for entry in log] == [False, True, True, True]
    assert [entry["rows"] for entry in log] == [4, 4, 4, 1]


def test_the_lab_refuses_a_skip_token_from_another_query(azure_lab: Callable[[str], Lab]) -> None:
    lab = azure_lab(SMALL_FLEET)
    assert lab.arm is not None
    url = f"{lab.arm.url}/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01"
    headers = {"Authorization": f"Bearer {lab.azure_token}"}
    first = requests.post(
        url,
        json={"query": INVENTORY_QUERY, "options": {"$top": 1000}},
        headers=headers,
        verify=str(lab.arm.ca_bundle),
        timeout=10,
    )
    token = first.json()["$skipToken"]
    changed = {"query": INVENTORY_QUERY + "\n", "options": {"$top": 1000, "$skipToken": token}}
    second = requests.post(url, json=changed, headers=headers, verify=str(lab.arm.ca_bundle), timeout=10)
    assert second.status_code == 400 and "same on every page" in second.json()["error"]["message"]
    other = requests.post(
        url, json={"query": "resources | take 5"}, headers=headers, verify=str(lab.arm.ca_bundle), timeout=10
    )
    assert other.status_code == 400


def test_a_429_with_retry_after_is_waited_out(azure_lab: Callable[[str], Lab]) -> None:
    lab = azure_lab(SMALL_FLEET)
    control(lab, {"throttle": {"target": "graph", "count": 2, "retry_after": 0.3}})
    started = time.monotonic()
    with AzureSession(settings_for(lab)) as session:
        read = session.read_inventory(settings_for(lab).subscriptions)
    assert read.errors == {} and len(read.inventory) == 13
    assert read.stats.graph.throttled == 2 and read.stats.graph.waited_s >= 0.6
    assert time.monotonic() - started >= 0.6
    state = azure_state(lab)
    assert state["graph_throttled"] == 2 and state["graph_requests"] == 6


def test_throttling_that_does_not_clear_is_reported_for_its_subscriptions(
    azure_lab: Callable[[str], Lab],
) -> None:
    lab = azure_lab(SMALL_FLEET)
    control(lab, {"throttle": {"target": "graph", "count": 100, "retry_after": 0.05}})
    with AzureSession(settings_for(lab)) as session:
        read = session.read_inventory(settings_for(lab).subscriptions)
    (subscription,) = settings_for(lab).subscriptions
    assert "kept answering throttled (429)" in read.errors[subscription]
    assert len(read.inventory) == 0 and not read.covers(subscription)


def test_the_quota_headers_are_honoured_without_a_429(azure_lab: Callable[[str], Lab]) -> None:
    lab = azure_lab(SMALL_FLEET.replace("page_size: 4", "page_size: 2, quota: 3"))
    with AzureSession(settings_for(lab)) as session:
        read = session.read_inventory(settings_for(lab).subscriptions)
    # 13 rows in pages of 2 = 7 requests against a quota of 3 per second: the client waits for the
    # window to reset (x-ms-user-quota-resets-after) and is never throttled.
    assert read.errors == {} and len(read.inventory) == 13 and read.stats.graph.requests == 7
    assert read.stats.graph.throttled == 0 and azure_state(lab)["graph_throttled"] == 0
    assert read.stats.graph.waited_s >= 2


def test_subscriptions_are_reported_one_by_one(azure_lab: Callable[[str], Lab]) -> None:
    spec = SMALL_FLEET.replace("azure: {", f"azure: {{denied_subscriptions: [{DENIED}], ").replace(
        "  - name: hci-b\n", f"  - name: hci-b\n    azure: {{subscription: {OTHER}}}\n"
    )
    lab = azure_lab(spec)
    settings = settings_for(lab)
    assert set(settings.subscriptions) == {DENIED, OTHER, lab.spec.azure.subscription}
    missing = "33333333-3333-4333-8333-333333333333"
    with AzureSession(settings) as session:
        # One subscription per request: the batches are asked separately, and all their rows come back.
        read = session.read_inventory([*settings.subscriptions, missing], batch_size=1)
    assert set(read.errors) == {DENIED, missing}
    assert "no access (AuthorizationFailed)" in read.errors[DENIED]
    assert "no such subscription" in read.errors[missing]
    assert {c.name: c.subscription_id for c in read.inventory.clusters} == {
        "hci-a": lab.spec.azure.subscription,
        "hci-b": OTHER,
    }
    assert read.covers(OTHER) and not read.covers(DENIED)
    assert read.stats.subscription_reads == 4
    assert {tuple(e["subscriptions"]) for e in azure_state(lab)["graph_log"]} == {
        (OTHER,),
        (lab.spec.azure.subscription,),
    }


def test_a_refused_union_runs_the_three_parts(azure_lab: Callable[[str], Lab]) -> None:
    lab = azure_lab(SMALL_FLEET.replace("azure: {", "azure: {refuse_union: true, "))
    with AzureSession(settings_for(lab)) as session:
        read = session.read_inventory(settings_for(lab).subscriptions)
    assert read.errors == {} and len(read.inventory) == 13
    assert any("three parts ran separately" in n for n in read.notes)
    state = azure_state(lab)
    # The refused union (one request, no rows), then each part to its last page.
    assert {e["part"] for e in state["graph_log"]} == {
        "resources",
        "extensibilityresources",
        "desktopvirtualizationresources",
    }
    assert state["graph_requests"] == len(state["graph_log"]) + 1


def test_authoritative_reads_pin_the_api_version(azure_lab: Callable[[str], Lab]) -> None:
    lab = azure_lab(SMALL_FLEET)
    with AzureSession(settings_for(lab)) as session:
        read = session.read_inventory(settings_for(lab).subscriptions)
        instance = read.inventory.instances[0]
        # Resource Graph's rows (like API 2024-01-01) lack the Hyper-V id; ARM at 2025-06-01-preview has it.
        assert instance.hyperv_vm_id is None and instance.host_node_name is None
        current = session.read_resources([instance.id], VMI_API)[instance.id]
        old = session.read_resources([instance.id], "2024-01-01")[instance.id]
        wrong = session.read_resources([instance.id], "2099-01-01")[instance.id]
        gone = session.read_resources([instance.id + "x"], VMI_API)[instance.id + "x"]
    assert current["properties"]["hyperVVmId"] and current["properties"]["hostNodeName"]
    assert "hyperVVmId" not in old["properties"]
    assert wrong.startswith("400 NoRegisteredProviderFound")
    assert gone is None
    assert azure_state(lab)["arm_reads"] == 4


def test_reconciliation_never_writes(azure_lab: Callable[[str], Lab]) -> None:
    lab = azure_lab(SMALL_FLEET)
    with AzureSession(settings_for(lab)) as session:
        machine = session.read_inventory(settings_for(lab).subscriptions).inventory.vm_machines()[0]
        before = azure_state(lab)["arm_reads"]
        with pytest.raises(WriteRefused, match="DELETE"):
            session.arm.resources.begin_delete_by_id(machine.id, api_version="2025-01-13").result()
    assert azure_state(lab)["arm_reads"] == before


def test_a_wrong_or_revoked_token_is_a_login_error(
    azure_lab: Callable[[str], Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = azure_lab(SMALL_FLEET)
    settings = settings_for(lab)
    monkeypatch.setenv("HCIBENEFIT_LAB_AZURE_TOKEN", "not-the-token")
    with AzureSession(settings) as session, pytest.raises(AzureLoginError) as caught:
        session.read_inventory(settings.subscriptions)
    assert "The access token is invalid" in caught.value.message
    assert "az account get-access-token" in (caught.value.hint or "")
    monkeypatch.setenv("HCIBENEFIT_LAB_AZURE_TOKEN", lab.azure_token)
    control(lab, {"revoke_token": True})
    with AzureSession(settings) as session, pytest.raises(AzureLoginError, match="expiry"):
        session.read_inventory(settings.subscriptions)
    monkeypatch.delenv("HCIBENEFIT_LAB_AZURE_TOKEN")
    with pytest.raises(AzureLoginError, match="HCIBENEFIT_LAB_AZURE_TOKEN is not set"):
        AzureSession(settings)


POOL_FLEET = """
azure:
  page_size: 2
  host_pools:
    pool-mixed: {azure_vms: [cloud-sh-01], stale_hosts: [gone-sh-01]}
clusters:
  - name: hci-a
    version: 23H2
    nodes: [a-n1]
    vms:
      - {name: a-vm1, node: a-n1, benefits: v2, azure: {host_pool: pool-mixed}}
      - name: a-vm2
        node: a-n1
        benefits: v2
        azure: {host_pool: pool-mixed, failed_health_checks: [DomainJoinedCheck]}
      - {name: a-vm3, node: a-n1, benefits: v2, azure: {host_pool: pool-clean, session_status: NeedsAssistance}}
"""


def _pool_id(lab: Lab, pool: str) -> str:
    from hcibenefit.lab.arm.model import AVD_RESOURCE_GROUP, subscription_of

    return (
        f"/subscriptions/{subscription_of(lab.state)}/resourceGroups/{AVD_RESOURCE_GROUP}"
        f"/providers/Microsoft.DesktopVirtualization/hostPools/{pool}"
    )


def test_a_host_pool_lists_every_session_host_whatever_it_runs_on(azure_lab: Callable[[str], Lab]) -> None:
    lab = azure_lab(POOL_FLEET)
    with AzureSession(settings_for(lab)) as session:
        found = session.read_host_pool(_pool_id(lab, "pool-mixed"))
        assert found is not None
        pool, hosts = found
        # Four members, pages of two: the nextLink was followed.
        assert pool.name == "pool-mixed" and pool.host_pool_type == "Pooled"
        by_name = {h.name.split("/", 1)[1].split(".", 1)[0]: h for h in hosts}
        assert sorted(by_name) == ["a-vm1", "a-vm2", "cloud-sh-01", "gone-sh-01"]
        assert by_name["cloud-sh-01"].on_azure_vm and not by_name["cloud-sh-01"].on_arc_machine
        assert (
            by_name["a-vm1"].on_arc_machine
            and by_name["a-vm1"].host_pool_id == _pool_id(lab, "pool-mixed").lower()
        )
        joined = by_name["a-vm2"].health_check("DomainJoinedCheck")
        assert joined is not None and not joined.succeeded and joined.message
        assert by_name["a-vm1"].health_check("MetaDataServiceCheck").succeeded  # type: ignore[union-attr]
        assert session.read_host_pool(_pool_id(lab, "no-such-pool")) is None
        # The inventory query still selects only session hosts on Arc machines, and no host pool.
        read = session.read_inventory(settings_for(lab).subscriptions)
    names = sorted(h.name for h in read.inventory.session_hosts)
    assert names == [
        "pool-clean/a-vm3.lab.test",
        "pool-mixed/a-vm1.lab.test",
        "pool-mixed/a-vm2.lab.test",
        "pool-mixed/gone-sh-01.lab.test",
    ]
    assert read.inventory.other_rows == 0
    clean = next(h for h in read.inventory.session_hosts if h.host_pool == "pool-clean")
    assert clean.status == "NeedsAssistance"
    assert not clean.health_check("MetaDataServiceCheck").succeeded  # type: ignore[union-attr]


def test_the_azure_view_reads_the_fleet_again_only_after_a_change(
    azure_lab: Callable[[str], Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telling whether the view changed reads every VM; a burst of ARM reads with nothing changed in between
    (a sweep's 6,600 VM reads at 10,000 VMs) must not read the fleet once per request, and a change made
    between two requests, by a pipeline or by assigning in the lab's state as a test does, is still seen."""
    from hcibenefit.lab.arm import server as arm_server

    lab = azure_lab(SMALL_FLEET)
    assert lab.arm is not None
    fleet_reads: list[str] = []
    real_key = arm_server.cluster_world_key

    def counting_key(state: Any, name: str) -> Any:
        fleet_reads.append(name)
        return real_key(state, name)

    monkeypatch.setattr(arm_server, "cluster_world_key", counting_key)
    first = lab.arm.world()
    fleet_reads.clear()
    for _ in range(5):
        assert lab.arm.world() is first
    assert fleet_reads == []
    vm = next(iter(lab.state.vms.values()))
    vm.guest.license_status = 5 if vm.guest.license_status != 5 else 1
    changed = lab.arm.world()
    assert len(fleet_reads) == len(lab.state.clusters)  # read again, once
    assert changed is not first  # the license status is in the view: rebuilt
    assert lab.arm.world() is changed


def test_the_pages_of_one_query_are_cut_from_one_result(
    azure_lab: Callable[[str], Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resource Graph pages a result (skip tokens); the lab works the rows out once per query and view, not
    once per page (at 10,000 VMs, some 140 pages of a full pass each), and a changed view starts afresh."""
    from hcibenefit.lab.arm import server as arm_server

    lab = azure_lab(SMALL_FLEET)
    assert lab.arm is not None
    rows_made: list[str] = []
    real_row = arm_server.graph_row

    def counting_row(resource: Any, host_fields: bool) -> Any:
        rows_made.append(resource.id)
        return real_row(resource, host_fields)

    monkeypatch.setattr(arm_server, "graph_row", counting_row)
    with AzureSession(settings_for(lab)) as session:
        first = session.read_inventory(settings_for(lab).subscriptions)
        assert first.stats.graph.requests == 4  # pages of 4
        assert len(rows_made) == len(set(rows_made)) == 13  # each row worked out once
        vm = next(iter(lab.state.vms.values()))
        vm.guest.license_status = 5 if vm.guest.license_status != 5 else 1
        second = session.read_inventory(settings_for(lab).subscriptions)
    assert len(rows_made) == 26  # the view changed: worked out again, once
    assert len(second.inventory) == len(first.inventory) == 13
