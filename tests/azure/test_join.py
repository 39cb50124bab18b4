"""Pairing Azure with the inventory and the hosts: cluster matching, VM to cluster, Azure VM to Hyper-V VM."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hcibenefit.azure.join import HostSide, build_view, join_vms, map_vms, match_cluster
from hcibenefit.azure.parse import inventory_from_rows
from hcibenefit.facts.host import HOST_FACTS_SCHEMA, parse_host_facts
from hcibenefit.inventory.model import Cluster, ClusterAzure, Node, WinRMSettings

SUB = "7c1b3d2e-0000-4000-8000-00000000a001"
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def rid(group: str, path: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{group}/providers/{path}"


def cluster_row(name: str, group: str, **props: Any) -> dict[str, Any]:
    return {
        "id": rid(group, f"Microsoft.AzureStackHCI/clusters/{name}"),
        "name": name,
        "type": "microsoft.azurestackhci/clusters",
        "properties": {"reportedProperties": {"clusterName": props.get("cluster_name", name)}},
    }


def vm_rows(
    name: str, group: str, *, location: str | None, parent: str = "", hyperv: str | None = None
) -> list[dict[str, Any]]:
    machine = rid(group, f"Microsoft.HybridCompute/machines/{name}")
    props: dict[str, Any] = {"status": {"powerState": "Running"}}
    if hyperv:
        props["hyperVVmId"] = hyperv
    return [
        {
            "id": machine,
            "name": name,
            "type": "microsoft.hybridcompute/machines",
            "kind": "HCI",
            "properties": {"parentClusterResourceId": parent},
        },
        {
            "id": machine + "/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default",
            "name": "default",
            "type": "microsoft.azurestackhci/virtualmachineinstances",
            "properties": props,
            "extendedLocation": {"name": location, "type": "CustomLocation"} if location else None,
        },
    ]


def location_rows(name: str, group: str, bridge_group: str) -> list[dict[str, Any]]:
    bridge = rid(bridge_group, f"Microsoft.ResourceConnector/appliances/{name}-bridge")
    return [
        {
            "id": rid(group, f"Microsoft.ExtendedLocation/customLocations/{name}"),
            "name": name,
            "type": "microsoft.extendedlocation/customlocations",
            "properties": {"hostResourceId": bridge},
        },
        {
            "id": bridge,
            "name": f"{name}-bridge",
            "type": "microsoft.resourceconnector/appliances",
            "properties": {"status": "Running"},
        },
    ]


def inventory(rows: list[dict[str, Any]]) -> Any:
    return inventory_from_rows((f"r{i}", r) for i, r in enumerate(rows))


def node(name: str, cluster: str) -> Node:
    return Node(name, name, cluster, WinRMSettings(), None, None)


def host(node_name: str, cluster: str, vms: list[tuple[str, str]], resource_uri: str = "") -> Any:
    document = {
        "schema": HOST_FACTS_SCHEMA,
        "computer_name": node_name.upper(),
        "os": {"build": "25398"},
        "registration": {"registration_status": "Registered", "azure_resource_uri": resource_uri},
        "attestation": {"status": "Active"},
        "cluster": {"nodes": [{"name": node_name.upper(), "state": "Up"}]},
        "vms": [
            {"id": vm_id, "name": vm_name, "state": "Running", "generation": 2} for vm_name, vm_id in vms
        ],
    }
    return parse_host_facts(document, node=node_name, cluster=cluster)


def test_cluster_match_order_inventory_then_nodes_then_name() -> None:
    azure = inventory(
        [
            cluster_row("sea", "rg-sea"),
            cluster_row("sea-copy", "rg-other", cluster_name="fra"),
            cluster_row("fra", "rg-fra"),
        ]
    )
    pinned = Cluster("whatever", (node("n1", "whatever"),), azure=ClusterAzure(SUB, "rg-sea", "sea"))
    found, how, _ = match_cluster(pinned, [], azure)
    assert found is not None and found.name == "sea" and how.startswith("inventory")
    reported = host(
        "n1",
        "x",
        [],
        resource_uri="/Subscriptions/"
        + SUB
        + "/resourceGroups/RG-FRA/providers/Microsoft.AzureStackHCI/clusters/FRA",
    )
    found, how, _ = match_cluster(Cluster("x", (node("n1", "x"),)), [reported], azure)
    assert found is not None and found.name == "fra" and how.startswith("nodes")
    found, how, _ = match_cluster(Cluster("SEA", (node("n1", "SEA"),)), [], azure)
    assert found is not None and found.name == "sea" and how == "name"
    # Two Azure clusters answer to "fra" (one by its failover cluster name): no guess.
    found, how, _ = match_cluster(Cluster("fra", (node("n1", "fra"),)), [], azure)
    assert found is None and "ambiguous" in how


def test_vms_map_through_custom_location_then_parent_cluster() -> None:
    sea = rid("rg-sea", "Microsoft.AzureStackHCI/clusters/sea")
    rows = [cluster_row("sea", "rg-sea"), cluster_row("a", "rg-shared"), cluster_row("b", "rg-shared")]
    rows += location_rows("sea-cl", "rg-sea", "rg-sea") + location_rows("shared-cl", "rg-shared", "rg-shared")
    rows += vm_rows(
        "vm1", "rg-sea", location=rid("rg-sea", "Microsoft.ExtendedLocation/customLocations/sea-cl")
    )
    # The bridge's group holds two clusters: the chain is ambiguous, parentClusterResourceId decides.
    b = rid("rg-shared", "Microsoft.AzureStackHCI/clusters/b")
    rows += vm_rows(
        "vm2",
        "rg-shared",
        location=rid("rg-shared", "Microsoft.ExtendedLocation/customLocations/shared-cl"),
        parent=b,
    )
    rows += vm_rows("vm3", "rg-x", location=None)
    mapped = {v.name: (v.cluster_id, v.mapped_by) for v in map_vms(inventory(rows))}
    assert mapped["vm1"] == (sea.lower(), "custom location")
    assert mapped["vm2"] == (b.lower(), "parentClusterResourceId")
    assert mapped["vm3"] == ("", "")


def test_join_by_hyperv_id_before_name() -> None:
    rows = vm_rows("web", "g", location=None, hyperv="AAAA0000-0000-4000-8000-000000000001")
    rows += vm_rows("db", "g", location=None)
    rows += vm_rows("recreated", "g", location=None, hyperv="aaaa0000-0000-4000-8000-00000000dead")
    facts = host(
        "n1",
        "c",
        [
            ("WEB-renamed", "aaaa0000-0000-4000-8000-000000000001"),
            ("DB", "bbbb0000-0000-4000-8000-000000000002"),
            ("recreated", "cccc0000-0000-4000-8000-000000000003"),
            ("local-only", "dddd0000-0000-4000-8000-000000000004"),
        ],
    )
    pairs, orphans, unprojected = join_vms(map_vms(inventory(rows)), [facts])
    joined = {p.azure.name: (p.vm.name, p.joined_by) for p in pairs}
    assert joined == {"web": ("WEB-renamed", "hyperVVmId"), "db": ("DB", "name")}
    # Azure's id names a VM that is gone; the VM of the same name is another one (re-created).
    assert [o.name for o in orphans] == ["recreated"]
    assert sorted(v.name for v in unprojected) == ["local-only", "recreated"]


def test_absence_is_only_conclusive_where_azure_was_read() -> None:
    azure = inventory([cluster_row("sea", "rg-sea")])
    facts = host(
        "n1",
        "fra",
        [],
        resource_uri=f"/subscriptions/{SUB.replace('a001', 'b002')}/resourceGroups/rg/providers/Microsoft.AzureStackHCI/clusters/fra",
    )
    sides = [HostSide(Cluster("fra", (node("n1", "fra"),)), (facts,), {})]
    view = build_view(sides, azure, covers=lambda sub: sub != SUB.replace("a001", "b002"), now=NOW)
    assert view.clusters[0].azure is None and view.clusters[0].azure_known is False
    view = build_view(sides, azure, now=NOW)
    assert view.clusters[0].azure_known is True
    assert [c.name for c in view.unmanaged] == ["sea"]
    assert build_view(sides, azure, now=NOW, all_clusters=False).unmanaged == ()


def test_results_for_a_sweep_pass_fail_error_and_na() -> None:
    from hcibenefit.checks.azure_results import evaluate_azure
    from hcibenefit.checks.results import Status

    azure = inventory([cluster_row("sea", "rg-sea")])
    sea = HostSide(
        Cluster("sea", (node("n1", "sea"), node("n2", "sea"))), (host("n1", "sea", []),), {"n2": "down"}
    )
    fra = HostSide(Cluster("fra", (node("f1", "fra"),)), (host("f1", "fra", []),), {})
    view = build_view([sea, fra], azure, covers=lambda sub: False, now=NOW)
    results = {(r.check.id, r.target.cluster): r for r in evaluate_azure(view)}
    # sea has a resource that never synced: FAILs; one node's Get-ClusterNode is the membership, but
    # what the hosts lack (an orphan) needs every node's answer: an ERROR naming the silent one.
    assert results[("azure.sync-out-of-policy", "sea")].status is Status.FAIL
    assert results[("azure.node-not-in-azure", "sea")].status is Status.FAIL
    orphans = results[("azure.arc-vm-orphaned", "sea")]
    assert orphans.status is Status.NA  # no resource bridge serves sea
    # fra's subscription was not read: no FAIL for its absence, an ERROR that says why.
    assert results[("azure.cluster-not-in-azure", "fra")].status is Status.ERROR
    assert results[("azure.sync-late", "fra")].status is Status.ERROR
    assert results[("azure.vm-not-projected", "sea")].status is Status.NA
    assert results[("azure.cluster-not-in-azure", "sea")].status is Status.NA


def test_results_error_when_a_silent_node_leaves_orphans_untold() -> None:
    from hcibenefit.checks.azure_results import evaluate_azure
    from hcibenefit.checks.results import Status

    rows = [cluster_row("sea", "rg-sea"), *location_rows("sea-cl", "rg-sea", "rg-sea")]
    rows += vm_rows(
        "vm1", "rg-sea", location=rid("rg-sea", "Microsoft.ExtendedLocation/customLocations/sea-cl")
    )
    sea = HostSide(
        Cluster("sea", (node("n1", "sea"), node("n2", "sea"))), (host("n1", "sea", []),), {"n2": "down"}
    )
    results = {r.check.id: r for r in evaluate_azure(build_view([sea], inventory(rows), now=NOW))}
    assert (
        results["azure.arc-vm-orphaned"].status is Status.ERROR
        and "n2" in results["azure.arc-vm-orphaned"].message
    )
    assert results["azure.resource-bridge-not-running"].status is Status.PASS


def test_an_unread_subscription_says_what_failed_and_what_fixes_it() -> None:
    from hcibenefit.azure.records import AzureInventory
    from hcibenefit.azure.session import AzureRead, AzureStats

    denied, other = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    read = AzureRead(
        AzureInventory(),
        {denied: "no access (AuthorizationFailed)"},
        (denied, other),
        AzureStats(),
        "test",
        fixes={denied: "grant Reader"},
    )
    assert read.unread(other) is None
    assert read.unread(denied.upper()) == (
        f"subscription {denied} could not be read: no access (AuthorizationFailed)",
        "grant Reader",
    )
    outside = read.unread("33333333-3333-4333-8333-333333333333")
    assert outside is not None and "not in azure.subscriptions" in outside[0]
    unknown = read.unread(None)
    assert unknown is not None and denied in unknown[0] and "grant Reader" in unknown[1]
