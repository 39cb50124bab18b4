"""The one parser: Microsoft's published example payloads, realistic Resource Graph rows, snapshots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.azure.parse import (
    AzureDataError,
    inventory_from_rows,
    load_snapshots,
    parse_page,
    parse_resource,
)
from hcibenefit.azure.records import ArcMachine, AzureCluster, SessionHost, VMInstance

SUB = "7c1b3d2e-0000-4000-8000-00000000a001"
RG = f"/subscriptions/{SUB}/resourceGroups/HCI-Sea"
MACHINE = f"{RG}/providers/Microsoft.HybridCompute/machines/avd-01"
VMI = f"{MACHINE}/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default"
CUSTOM_LOCATION = f"{RG}/providers/Microsoft.ExtendedLocation/customLocations/sea-cl"


def body(shared: Path, relative: str) -> Any:
    document = json.loads((shared / "fixtures" / relative).read_text(encoding="utf-8"))
    return document["responses"]["200"]["body"]


# --- Microsoft's examples (../shared/fixtures) -----------------------------------------------------


def test_get_cluster_example(shared_dir: Path) -> None:
    cluster = parse_resource(
        body(shared_dir, "arm/Microsoft.AzureStackHCI.clusters/2026-05-01/GetCluster.json"), "x"
    )
    assert isinstance(cluster, AzureCluster)
    assert cluster.name == "myCluster" and cluster.resource_group == "test-rg"
    assert cluster.subscription_id == "fd3c3665-1729-4b7b-9a38-238e83b0f98b"
    assert cluster.imds_attestation == "Disabled"
    assert cluster.status == "ConnectedRecently" and cluster.connectivity_status == "Connected"
    assert cluster.wss_desired == "Enabled"
    assert [n.name for n in cluster.nodes] == ["Node1", "Node2", "Node3"]
    assert all(n.windows_server_subscription == "Enabled" for n in cluster.nodes)
    assert cluster.nodes[0].last_licensing is not None and cluster.nodes[0].last_licensing.year == 2020
    assert cluster.last_sync is not None and cluster.last_sync.isoformat().startswith("2020-03-11T20:44:32")
    # The examples' fake 17777 builds: parsed, and honestly not 23H2.
    assert cluster.build == 17777 and cluster.is_23h2_or_later is False
    # isolatedVmAttestationConfiguration is Trusted Launch attestation, never read as Azure Benefits.
    assert cluster.cluster_name == "cluster1"


def test_list_clusters_example_with_an_unregistered_cluster(shared_dir: Path) -> None:
    listing = body(
        shared_dir, "arm/Microsoft.AzureStackHCI.clusters/2026-05-01/ListClustersBySubscription.json"
    )
    inventory = inventory_from_rows((f"value[{i}]", r) for i, r in enumerate(listing["value"]))
    first, second = sorted(inventory.clusters, key=lambda c: c.name)
    assert first.name == "myCluster1" and not first.registered
    assert first.nodes == () and first.imds_attestation is None and first.build is None
    assert second.registered and len(second.nodes) == 3


def test_machine_example(shared_dir: Path) -> None:
    machine = parse_resource(
        body(shared_dir, "arm/Microsoft.HybridCompute.machines/2025-01-13/Machines_Get.json"), "x"
    )
    assert isinstance(machine, ArcMachine)
    assert machine.license_status == "Licensed"
    # kind null and a placeholder parent: neither an Azure Local VM nor a node (azure-local.md §1.11).
    assert not machine.is_hci_vm and not machine.is_hci_node
    assert machine.parent_cluster_id == "{azurestackhciresourceid}"
    assert machine.tags == {} and machine.status is None


def test_vm_instance_example(shared_dir: Path) -> None:
    path = "arm/Microsoft.AzureStackHCI.virtualMachineInstances/2024-01-01/GetVirtualMachineInstance.json"
    instance = parse_resource(body(shared_dir, path), "x")
    assert isinstance(instance, VMInstance)
    assert instance.custom_location_id.endswith("/customlocations/dogfood-location")
    # 2024-01-01 has neither hyperVVmId nor hostNodeName; the example's id lacks /providers/ before
    # Microsoft.HybridCompute, so its parent never matches a real machine id.
    assert instance.hyperv_vm_id is None and instance.host_node_name is None
    assert instance.machine_id.endswith("/microsoft.hybridcompute/machines/demovm")
    assert "/providers/microsoft.hybridcompute/" not in instance.machine_id


def test_session_host_example(shared_dir: Path) -> None:
    listing = body(
        shared_dir, "arm/Microsoft.DesktopVirtualization.sessionHosts/2025-10-10/SessionHost_List.json"
    )
    hosts = [parse_resource(r, f"value[{i}]") for i, r in enumerate(listing["value"])]
    assert all(isinstance(h, SessionHost) for h in hosts)
    first = hosts[0]
    assert isinstance(first, SessionHost)
    assert first.host_pool == "hostpool1" and first.status == "Available"
    assert first.vm_resource_id.endswith("/microsoft.compute/virtualmachines/sessionhost1")
    assert first.health_checks[0].name == "DomainJoinedCheck"
    assert first.health_checks[0].result == "HealthCheckSucceeded"


@pytest.mark.parametrize("name", ["ResourcesBasicQuery", "ResourcesFirstPageQuery", "ResourcesNextPageQuery"])
def test_resource_graph_examples(shared_dir: Path, name: str) -> None:
    page = parse_page(body(shared_dir, f"resourcegraph/2024-04-01/{name}.json"), name)
    assert len(page.rows) == 3 and page.truncated is False  # resultTruncated is the string "false"
    assert page.total_records in (3, 386)
    assert (page.skip_token is None) == (name == "ResourcesBasicQuery")
    # Disks and automation accounts: whole resources of types reconciliation does not read.
    inventory = inventory_from_rows((f"data[{i}]", r) for i, r in enumerate(page.rows))
    assert len(inventory) == 0 and inventory.other_rows == 3


# --- realistic rows ---------------------------------------------------------------------------------


def rows() -> list[dict[str, Any]]:
    return [
        {
            "id": MACHINE,
            "name": "avd-01",
            "type": "microsoft.hybridcompute/machines",
            "kind": "HCI",
            "subscriptionId": SUB,
            "resourceGroup": "hci-sea",
            "location": "westeurope",
            "tags": None,
            "properties": {"status": "Connected", "licenseProfile": {"licenseStatus": "Licensed"}},
            "extendedLocation": None,
        },
        {
            "id": VMI,
            "name": "default",
            "type": "microsoft.azurestackhci/virtualmachineinstances",
            "kind": None,
            "subscriptionId": SUB,
            "resourceGroup": "hci-sea",
            "location": "westeurope",
            "tags": None,
            "properties": {
                "status": {"powerState": "Running"},
                "hyperVVmId": "4F3C0A52-1111-4C51-9A3E-5B0F1D2C3E4F",
                "hostNodeName": "SEA-N1",
            },
            "extendedLocation": {"name": CUSTOM_LOCATION + "/", "type": "CustomLocation"},
        },
        {
            "id": f"{RG}/providers/Microsoft.HybridCompute/machines/sea-n1",
            "name": "sea-n1",
            "type": "microsoft.hybridcompute/machines",
            "kind": "",
            "properties": {"status": "Connected", "cloudMetadata": {"provider": "AzSHCI"}},
        },
    ]


def test_rows_join_keys_are_normalised() -> None:
    inventory = inventory_from_rows((f"r{i}", r) for i, r in enumerate(rows()))
    (vm,) = inventory.vm_machines()
    (node,) = inventory.node_machines()
    assert node.name == "sea-n1" and vm.name == "avd-01"
    instance = inventory.instance_of(vm.id)
    assert instance is not None
    assert instance.machine_id == vm.id == MACHINE.lower()
    assert instance.custom_location_id == CUSTOM_LOCATION.lower()  # trailing slash gone
    assert instance.hyperv_vm_id == "4f3c0a52-1111-4c51-9a3e-5b0f1d2c3e4f"
    assert instance.power_state == "Running" and instance.host_node_name == "SEA-N1"
    assert vm.license_status == "Licensed"
    assert inventory.subscriptions == {SUB}


def test_a_row_seen_twice_is_kept_once() -> None:
    twice = [*rows(), rows()[0]]
    assert len(inventory_from_rows((f"r{i}", r) for i, r in enumerate(twice))) == 3


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"name": "x", "type": "microsoft.hybridcompute/machines"}, "r0: no 'id'"),
        ({"id": MACHINE, "name": "x"}, "r0: no 'type'"),
        (
            {"id": MACHINE, "type": "microsoft.hybridcompute/machines", "properties": "on"},
            "r0.properties: expected an object",
        ),
        (
            {
                "id": VMI,
                "type": "microsoft.azurestackhci/virtualmachineinstances",
                "properties": {"status": []},
            },
            "r0.properties.status: expected an object",
        ),
        ("a string", "r0: expected an object"),
    ],
)
def test_shape_errors_name_the_row_and_field(row: Any, message: str) -> None:
    with pytest.raises(AzureDataError) as caught:
        inventory_from_rows([("r0", row)])
    assert message in str(caught.value)
    assert "hcibenefit arm query --print" in (caught.value.hint or "")


# --- snapshots --------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_snapshot_object_form_and_bare_array(tmp_path: Path) -> None:
    cli = write(tmp_path, "cli.json", {"count": 3, "data": rows(), "skip_token": None, "total_records": 3})
    bare = write(tmp_path, "bare.json", rows())
    for path in (cli, bare):
        snapshot = load_snapshots([path])
        assert len(snapshot.inventory) == 3 and snapshot.rows == 3


def test_snapshot_in_pages_and_table_format(tmp_path: Path) -> None:
    all_rows = rows()
    first = write(tmp_path, "p1.json", {"data": all_rows[:2], "skip_token": "tok", "total_records": 3})
    last = write(tmp_path, "p2.json", {"data": all_rows[2:], "skip_token": None, "total_records": 3})
    assert len(load_snapshots([first, last]).inventory) == 3
    columns = sorted({k for r in all_rows for k in r})
    table = {
        "data": {
            "columns": [{"name": c, "type": "string"} for c in columns],
            "rows": [[r.get(c) for c in columns] for r in all_rows],
        }
    }
    assert len(load_snapshots([write(tmp_path, "t.json", table)]).inventory) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"data": [', "t.json:1:11: not JSON"),
        ('{"value": []}', 'not az graph query output: expected an object with "data"'),
        ('{"data": {"a": 1}}', "t.json.data.columns"),
        ('"text"', "expected az graph query output"),
        ('{"data": [{"clusterId": "x", "imds": "Enabled"}]}', "t.json: data[0]: no 'id'"),
    ],
)
def test_snapshot_errors_name_the_file_and_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AzureDataError) as caught:
        load_snapshots([path])
    assert message in str(caught.value)


def test_a_partial_snapshot_is_refused(tmp_path: Path) -> None:
    one_page = write(tmp_path, "p1.json", {"data": rows()[:2], "skip_token": "tok", "total_records": 3})
    with pytest.raises(AzureDataError, match="one page of a larger result"):
        load_snapshots([one_page])
    short = write(tmp_path, "short.json", {"data": rows()[:2], "skip_token": None, "total_records": 3})
    with pytest.raises(AzureDataError, match="holds 2 of the 3 rows"):
        load_snapshots([short])
    with pytest.raises(AzureDataError, match="no such file"):
        load_snapshots([tmp_path / "absent.json"])


def test_rows_parsed_as_their_page_arrives_give_the_same_inventory() -> None:
    """parse_early lets a page's JSON go; what inventory_from_rows makes of it is unchanged, also for a row
    seen twice, a type we do not read, and an ARM read (authoritative)."""
    from hcibenefit.azure.parse import ParsedRow, parse_early

    raw = [*rows(), {"id": f"{RG}/providers/Microsoft.Web/sites/x", "type": "Microsoft.Web/sites"}, rows()[0]]
    early = [parse_early(r) for r in raw]
    assert all(isinstance(e, ParsedRow) for e in early)
    assert inventory_from_rows((f"r{i}", r) for i, r in enumerate(early)) == inventory_from_rows(
        (f"r{i}", r) for i, r in enumerate(raw)
    )
    instance = next(r for r in raw if "virtualMachineInstances" in r["id"])
    read = parse_early(instance, authoritative=True)
    assert isinstance(read, ParsedRow) and read.resource == parse_resource(instance, "x", authoritative=True)
    assert isinstance(read.resource, VMInstance) and read.resource.authoritative


def test_a_row_that_does_not_parse_early_still_fails_with_its_place() -> None:
    from hcibenefit.azure.parse import parse_early

    bad = {"name": "no id"}
    assert parse_early(bad) is bad
    early = [parse_early(r) for r in [*rows(), bad]]
    with pytest.raises(AzureDataError, match=r"Resource Graph row 3: no 'id'"):
        inventory_from_rows((f"Resource Graph row {i}", r) for i, r in enumerate(early))
