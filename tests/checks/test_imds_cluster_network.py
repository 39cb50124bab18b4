"""Issue 11: the host IMDS adapter is kept out of the cluster's networks. After a 22H2 to 23H2 upgrade it can
come back as a Partitioned cluster network (Azure Local supportability TSG); the host-facts script reads the
cluster's networks and this node's interfaces on them, and node.imds-cluster-network judges them."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from hcibenefit.checks.evaluate import ClusterEvidence, evaluate_cluster
from hcibenefit.checks.registry import all_checks
from hcibenefit.checks.results import Result, Status
from hcibenefit.facts.host import HostFacts, ScriptProblem, parse_host_facts
from hcibenefit.inventory.model import Policy
from hcibenefit.lab.powershell.cmdlets.base import REGISTRY
from hcibenefit.lab.spec import parse_fleet
from hcibenefit.remoting.catalog import HOST_FACTS
from tests.conftest import EngineDriver

CHECK = "node.imds-cluster-network"
NOW = dt.datetime.now(dt.timezone.utc)


def fleet(network: str) -> str:
    return f"""
clusters:
  - name: upgraded
    version: 23H2
    imds_cluster_network: {network}
    nodes:
      - n1
      - {{name: n2, host_vnic_alias: default}}
      - {{name: n3, switch: missing, attestation: Inactive}}
"""


def _hosts(network: str) -> tuple[HostFacts, ...]:
    driver = EngineDriver(parse_fleet(fleet(network), "upgraded.yaml"))
    return tuple(
        parse_host_facts(driver.document(n, HOST_FACTS, {"IncludeGuestOs": True}), node=n, cluster="upgraded")
        for n in ("n1", "n2", "n3")
    )


def _results(hosts: tuple[HostFacts, ...]) -> dict[str, Result]:
    evidence = ClusterEvidence("upgraded", ("n1", "n2", "n3"), hosts, {})
    return {r.id: r for r in evaluate_cluster(evidence, Policy(), NOW).results if r.check.id == CHECK}


def test_a_partitioned_imds_network_fails_on_every_node_with_its_exact_fix() -> None:
    hosts = _hosts("partitioned")
    network = next(n for n in hosts[0].cluster_networks or () if n.state == "Partitioned")
    assert (network.role, network.address, network.address_mask) == ("Cluster", "169.254.0.0", "255.255.0.0")
    results = _results(hosts)
    for node in ("n1", "n2"):
        result = results[f"{CHECK}/upgraded/{node}/-"]
        assert result.status is Status.FAIL
        assert "'Cluster Network 2' (Role Cluster, State Partitioned)" in (result.message or "")
        fix = result.remediation or ""
        # The TSG's fix, for this node's adapter: its InterfaceDescription appended to ClusSvc's exclusions,
        # then a drained restart.
        assert fix.startswith(
            f"on {node}: $p = 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\ClusSvc\\Parameters'"
        )
        assert "'Hyper-V Virtual Ethernet Adapter #2'" in fix and "-Name ExcludeAdaptersByDescription" in fix
        assert f"Suspend-ClusterNode -Name '{node}' -Drain" in fix and "Restart-Computer" in fix
    # n2's vNIC kept its default name: still matched (by its interface, whose Adapter is the description).
    assert "'vEthernet (AZSHCI_HOST-IMDS_DO_NOT_MODIFY)'" in (results[f"{CHECK}/upgraded/n2/-"].message or "")
    na = results[f"{CHECK}/upgraded/n3/-"]
    assert na.status is Status.NA and "no host IMDS adapter" in na.message


@pytest.mark.parametrize("network", ["excluded", "role-none"])
def test_an_excluded_adapter_or_a_network_the_cluster_does_not_use_passes(network: str) -> None:
    hosts = _hosts(network)
    names = [n.name for n in hosts[0].cluster_networks or ()]
    assert names == (
        ["Cluster Network 1"] if network == "excluded" else ["Cluster Network 1", "Cluster Network 2"]
    )
    results = _results(hosts)
    assert results[f"{CHECK}/upgraded/n1/-"].status is Status.PASS
    assert results[f"{CHECK}/upgraded/n2/-"].status is Status.PASS


def test_matched_by_subnet_when_the_interfaces_are_unknown() -> None:
    hosts = _hosts("partitioned")
    blind = tuple(dataclasses.replace(h, cluster_interfaces=None) for h in hosts)
    assert _results(blind)[f"{CHECK}/upgraded/n1/-"].status is Status.FAIL
    # Any address of the adapter in the network's subnet ties them.
    elsewhere = tuple(
        dataclasses.replace(h, cluster_interfaces=None, host_vnic_addresses=("169.254.1.1",)) for h in hosts
    )
    assert _results(elsewhere)[f"{CHECK}/upgraded/n1/-"].status is Status.FAIL
    # Neither the interface nor the subnet ties the adapter to a network: nothing to fail.
    moved = tuple(
        dataclasses.replace(h, cluster_interfaces=None, host_vnic_addresses=("10.9.9.9",)) for h in hosts
    )
    assert _results(moved)[f"{CHECK}/upgraded/n1/-"].status is Status.PASS


def test_a_node_without_failover_clustering_is_an_error_that_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No FailoverClusters module (or not clustered): the script still answers, records why, and the check
    is an ERROR naming it rather than a PASS by silence."""
    for name in ("get-clusternetwork", "get-clusternetworkinterface", "get-clustergroup"):
        monkeypatch.setattr(REGISTRY.cmdlets[name], "available", lambda machine: False)
    driver = EngineDriver(parse_fleet(fleet("partitioned"), "upgraded.yaml"))
    document = driver.document("n1", HOST_FACTS, {"IncludeGuestOs": True})
    facts = parse_host_facts(document, node="n1", cluster="upgraded")
    assert (
        facts.cluster_networks is None and facts.cluster_interfaces is None and facts.cluster_groups is None
    )
    assert facts.vms == () and facts.cluster_nodes  # the rest of the facts is there
    assert {p.source for p in facts.problems} == {
        "Get-ClusterNetwork",
        "Get-ClusterNetworkInterface",
        "Get-ClusterGroup",
    }
    result = _results((facts,))[f"{CHECK}/upgraded/n1/-"]
    assert result.status is Status.ERROR and result.message.startswith("Get-ClusterNetwork failed: ")


def test_an_older_script_s_document_is_an_error_not_a_pass() -> None:
    """host-facts/2 (scripts exported by an older hcibenefit, run offline) has no cluster networks."""
    hosts = _hosts("partitioned")
    old = tuple(
        dataclasses.replace(h, cluster_networks=None, problems=(ScriptProblem("Get-ClusterNode", "x", "y"),))
        for h in hosts
    )
    result = _results(old)[f"{CHECK}/upgraded/n1/-"]
    assert result.status is Status.ERROR and "Get-ClusterNetwork reported nothing" in result.message


def test_the_catalogue_lists_it_with_a_command_and_the_tsg() -> None:
    meta = next(m for m in all_checks() if m.id == CHECK)
    assert meta.scope == "node" and meta.doc_url.startswith(
        "https://github.com/Azure/AzureLocal-Supportability/"
    )
