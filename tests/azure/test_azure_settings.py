"""The inventory's azure: section and the fleet spec's azure: keys: validated like every other key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hcibenefit.inventory import InventoryError, load_inventory
from hcibenefit.lab.spec import FleetSpecError, default_fleet, parse_fleet

BASE = "clusters:\n  - name: c1\n    nodes: [n1]\n"


def load(tmp_path: Path, azure: str) -> object:
    path = tmp_path / "inventory.yaml"
    path.write_text(BASE + "azure:\n" + azure)
    return load_inventory(path)


def test_access_token_and_identity_keys(tmp_path: Path) -> None:
    inventory = load(tmp_path, "  credential: access-token\n  token_env: AZ_TOKEN\n")
    assert inventory.azure.credential == "access-token" and inventory.azure.token_env == "AZ_TOKEN"  # type: ignore[attr-defined]
    inventory = load(
        tmp_path, "  credential: managed-identity\n  client_id: 5B6C7D8E-0000-4000-8000-000000000001\n"
    )
    assert inventory.azure.client_id == "5b6c7d8e-0000-4000-8000-000000000001"  # type: ignore[attr-defined]
    assert load(tmp_path, "  credential: workload-identity\n").azure.credential == "workload-identity"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("azure", "message"),
    [
        ("  credential: access-token\n", "azure.token_env: missing required key"),
        (
            "  credential: cli\n  token_env: AZ_TOKEN\n",
            "token_env is used only with credential: access-token",
        ),
        (
            "  credential: cli\n  client_id: 5b6c7d8e-0000-4000-8000-000000000001\n",
            "credential: cli does not use one",
        ),
        ("  token: eyJabc\n", "a literal access token is not allowed"),
        (
            "  credential: browser\n",
            "expected one of default, cli, managed-identity, environment, workload-identity",
        ),
    ],
)
def test_bad_azure_settings_name_file_line_and_field(tmp_path: Path, azure: str, message: str) -> None:
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, azure)
    text = str(caught.value)
    assert message in text and "inventory.yaml:" in text
    assert "eyJabc" not in text


def test_fleet_spec_azure_keys_are_checked() -> None:
    with pytest.raises(FleetSpecError) as caught:
        parse_fleet(
            "azure: {page_size: 0}\nclusters:\n  - name: c\n    azure: {registered: maybe, resource_bridge: Up}\n"
            "    nodes: [n]\n    vms: [{name: v, node: n, azure: {power_state: Hibernated}}]\n",
            "spec.yaml",
        )
    text = str(caught.value)
    assert "azure.page_size: expected an integer 1-1000" in text
    assert "clusters[0].azure.registered: expected true, false or auto" in text
    assert "clusters[0].azure.resource_bridge: expected one of Running" in text
    assert "clusters[0].vms[0].azure.power_state: expected one of auto, Running" in text


def test_a_fleet_without_azure_keys_is_consistent_by_default() -> None:
    spec = parse_fleet(BASE.replace("nodes: [n1]", "version: 23H2\n    nodes: [n1]"), "spec.yaml")
    cluster = spec.clusters[0].azure
    assert cluster.registered is None and cluster.imds_attestation == "auto" and cluster.orphan_vms == []
    assert spec.azure.unmanaged_clusters == [] and spec.azure.denied_subscriptions == []
    assert default_fleet().azure.subscription == "00000000-0000-4000-8000-00000000c0de"
