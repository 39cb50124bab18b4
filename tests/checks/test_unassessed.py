"""checks.unassessed, pure: which VMs a reachable node names on a node that was not reached."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hcibenefit.checks.assess import ClusterFacts, assess_cluster
from hcibenefit.checks.unassessed import vm_name, vms_named_on_unreachable_nodes, vms_on_unreachable_nodes
from hcibenefit.facts.host import ClusterGroupFacts, HostFacts, parse_host_facts
from hcibenefit.inventory.model import Policy
from hcibenefit.lab.spec import parse_fleet
from hcibenefit.remoting.catalog import HOST_FACTS
from tests.conftest import EngineDriver

NOW = dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc)

FLEET = """
clusters:
  - name: c
    nodes: [n1, n2, n3]
    vms:
      - {name: a, node: n1}
      - {name: b, node: n2}
      - {name: c, node: n3}
"""


def _hosts() -> dict[str, HostFacts]:
    driver = EngineDriver(parse_fleet(FLEET, "c.yaml"))
    return {
        n: parse_host_facts(driver.document(n, HOST_FACTS), node=n, cluster="c") for n in ("n1", "n2", "n3")
    }


def test_each_role_of_an_unreachable_node_once_from_the_first_node_that_names_it() -> None:
    hosts = _hosts()
    # n1 and n2 answered; both list n3's role (and each other's): n3's VM is named once, by n1.
    found = vms_on_unreachable_nodes("c", [hosts["n1"], hosts["n2"]], {"n3": "unreachable: refused"})
    assert [(v.name, v.node, v.named_by, v.role_state) for v in found] == [("c", "n3", "n1", "Online")]
    assert (
        found[0].reason
        == "not assessed: its node n3 was not reached (unreachable: refused); n1 names it as a VM role of n3 (Online)"
    )


def test_inventory_fqdns_match_the_cluster_s_short_names() -> None:
    hosts = _hosts()
    found = vms_on_unreachable_nodes("c", [hosts["n1"]], {"N3.contoso.com": "timeout"})
    assert [(v.name, v.node) for v in found] == [("c", "N3.contoso.com")]


def test_a_vm_an_answering_node_reported_itself_is_never_named_again() -> None:
    """A VM moving between nodes: the cluster still says n3 owns it while n1 already runs it."""
    hosts = _hosts()
    moving = dataclasses.replace(
        hosts["n2"],
        cluster_groups=(*(hosts["n2"].cluster_groups or ()), ClusterGroupFacts("a", "N3", "Pending")),
    )
    found = vms_on_unreachable_nodes("c", [hosts["n1"], moving], {"n3": "down"})
    assert [v.name for v in found] == ["c"]


def test_nothing_when_no_node_could_read_the_roles() -> None:
    hosts = _hosts()
    blind = dataclasses.replace(hosts["n1"], cluster_groups=None)
    assert vms_on_unreachable_nodes("c", [blind], {"n3": "down"}) == []
    assert vms_on_unreachable_nodes("c", [], {"n1": "down", "n2": "down", "n3": "down"}) == []


def test_every_cluster_s_named_vms_are_the_candidates_every_command_adds() -> None:
    hosts = _hosts()
    gathered = [
        ClusterFacts("c", (hosts["n1"],), {"n2": "down", "n3": "down"}),
        ClusterFacts("dark", (), {"d1": "down"}),
    ]
    named = vms_named_on_unreachable_nodes(gathered)
    assert [(v.cluster, v.node, v.name) for v in named] == [("c", "n2", "b"), ("c", "n3", "c")]
    assert named[0].to_dict() == {
        "name": "b",
        "cluster": "c",
        "node": "n2",
        "reason": named[0].reason,
        "role_state": "Online",
        "named_by": "n1",
    }
    assessed = assess_cluster(gathered[0], ["n1", "n2", "n3"], Policy(), NOW).vms
    assert [vm_name(v) for v in [*assessed, *named]] == ["a", "b", "c"]
