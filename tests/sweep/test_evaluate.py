"""The evaluation layer, pure: host facts from the real host-facts script run by the lab engine, then a result
for every registered check and target."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterator

import pytest

from hcibenefit.checks import registry
from hcibenefit.checks.evaluate import ClusterEvidence, evaluate_cluster
from hcibenefit.checks.model import CheckMeta, Finding, Severity
from hcibenefit.checks.results import Result, Status, Target
from hcibenefit.facts.host import HostFacts, ScriptProblem, parse_host_facts
from hcibenefit.inventory.model import Policy
from hcibenefit.lab.spec import default_fleet
from hcibenefit.remoting.catalog import HOST_FACTS
from tests.conftest import EngineDriver

NOW = dt.datetime.now(dt.timezone.utc)


def _cluster(name: str = "hci-lab-02") -> tuple[list[str], tuple[HostFacts, ...]]:
    driver = EngineDriver(default_fleet())
    spec = next(c for c in default_fleet().clusters if c.name == name)
    hosts = tuple(
        parse_host_facts(
            driver.document(n.name, HOST_FACTS, {"IncludeGuestOs": True}), node=n.name, cluster=name
        )
        for n in spec.nodes
    )
    return [n.name for n in spec.nodes], hosts


def _results(evidence: ClusterEvidence) -> dict[str, Result]:
    return {r.id: r for r in evaluate_cluster(evidence, Policy(), NOW).results}


def test_every_check_gives_one_result_per_target() -> None:
    nodes, hosts = _cluster()
    results = evaluate_cluster(ClusterEvidence("hci-lab-02", tuple(nodes), hosts, {}), Policy(), NOW).results
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids))
    node_checks = [r.meta.id for r in registry.node_registrations()]
    vms = [vm.name for h in hosts for vm in h.vms]
    per_check = Counter(r.check.id for r in results)
    for check in node_checks:
        assert per_check[check] == len(nodes), check
    for reg in registry.vm_registrations():
        assert per_check[reg.meta.id] == len(vms)
    for reg in registry.guest_registrations():
        assert per_check[reg.meta.id] == len(vms)


def test_ids_are_check_cluster_node_vm() -> None:
    assert Target("C1", "N1", "Vm/1").key == "c1/n1/vm%2F1"
    assert Target("C1").key == "c1/-/-"


def test_pass_fail_na_and_error_for_guests_not_asked() -> None:
    nodes, hosts = _cluster()
    r = _results(ClusterEvidence("hci-lab-02", tuple(nodes), hosts, {}))
    assert r["node.switch-missing/hci-lab-02/lab02-n3/-"].status is Status.FAIL
    assert r["node.switch-missing/hci-lab-02/lab02-n1/-"].status is Status.PASS
    # A check that is not about the target is N/A with why: no switch, nothing to be altered.
    altered = r["node.switch-altered/hci-lab-02/lab02-n3/-"]
    assert altered.status is Status.NA and "no IMDS switch" in altered.message
    single = r["vm.benefits-missing/hci-lab-02/lab02-n2/w11-single-session"]
    assert single.status is Status.NA
    # A guest that needs benefits but was not asked is not assessed, never a PASS by silence.
    assert r["guest.activated/hci-lab-02/lab02-n1/w11ms-v2-ok"].status is Status.ERROR


def test_unreachable_node_is_an_error_for_every_node_check() -> None:
    nodes, hosts = _cluster()
    reached = tuple(h for h in hosts if h.node != "lab02-n2")
    r = _results(ClusterEvidence("hci-lab-02", tuple(nodes), reached, {"lab02-n2": "unreachable: refused"}))
    mine = [x for x in r.values() if x.target.node == "lab02-n2"]
    assert mine and all(x.status is Status.ERROR and "refused" in x.message for x in mine)
    assert all(x.remediation and "Test-WSMan lab02-n2" in x.remediation for x in mine)


def test_a_fact_that_could_not_be_read_is_an_error_not_a_pass() -> None:
    nodes, hosts = _cluster()
    broken = dataclasses.replace(
        hosts[0],
        attestation=None,
        problems=(ScriptProblem("Get-AzureStackHCIAttestation", "Access is denied", "x"),),
    )
    r = _results(ClusterEvidence("hci-lab-02", tuple(nodes), (broken, *hosts[1:]), {}))
    expired = r["node.attestation-expired/hci-lab-02/lab02-n1/-"]
    assert expired.status is Status.ERROR and "Access is denied" in expired.message


@pytest.fixture
def exploding_check() -> Iterator[CheckMeta]:
    meta = CheckMeta("node.test-explodes", "explodes", Severity.LOW, "node", "none")

    def explode(meta: CheckMeta, host: HostFacts, view: object) -> Iterator[Finding]:
        raise RuntimeError("boom")

    # The real checks first: registered before them, this one would stay behind once the first
    # assessment appended them, and popping the last would take a real check away instead.
    registry.load_checks()
    registration = registry.Registration(meta, explode)
    registry._node_checks.append(registration)
    try:
        yield meta
    finally:
        registry._node_checks.remove(registration)


def test_a_check_that_raises_is_an_error_for_it_alone(exploding_check: CheckMeta) -> None:
    nodes, hosts = _cluster()
    r = _results(ClusterEvidence("hci-lab-02", tuple(nodes), hosts, {}))
    boom = r["node.test-explodes/hci-lab-02/lab02-n1/-"]
    assert boom.status is Status.ERROR and "bug in hcibenefit" in boom.message
    assert r["node.switch-missing/hci-lab-02/lab02-n3/-"].status is Status.FAIL


def test_cluster_node_down_lands_on_the_down_node() -> None:
    driver = EngineDriver(default_fleet())
    with driver.state.lock:
        driver.state.node("lab01-n2").state = "Down"
    spec = default_fleet().clusters[0]
    hosts = tuple(
        parse_host_facts(
            driver.document(n.name, HOST_FACTS, {"IncludeGuestOs": True}), node=n.name, cluster=spec.name
        )
        for n in spec.nodes
        if n.name != "lab01-n2"
    )
    r = _results(
        ClusterEvidence(
            spec.name, tuple(n.name for n in spec.nodes), hosts, {"lab01-n2": "unreachable: down"}
        )
    )
    down = r["node.cluster-node-down/hci-lab-01/lab01-n2/-"]
    assert down.status is Status.FAIL and "Down" in down.message
    assert r["node.cluster-node-down/hci-lab-01/lab01-n1/-"].status is Status.PASS


def _evaluate_driver(driver: EngineDriver, cluster: str) -> dict[str, Result]:
    spec = next(c for c in driver.state.spec.clusters if c.name == cluster)
    hosts = tuple(
        parse_host_facts(
            driver.document(n.name, HOST_FACTS, {"IncludeGuestOs": True}), node=n.name, cluster=cluster
        )
        for n in spec.nodes
    )
    return _results(ClusterEvidence(cluster, tuple(n.name for n in spec.nodes), hosts, {}))


@pytest.mark.parametrize(
    ("days", "overdue", "near"), [(0.25, "PASS", "PASS"), (3, "FAIL", "PASS"), (27, "PASS", "FAIL")]
)
def test_the_30_day_sync(days: float, overdue: str, near: str) -> None:
    driver = EngineDriver(default_fleet())
    with driver.state.lock:
        driver.state.clusters["hci-lab-02"].last_sync = NOW - dt.timedelta(days=days)
    r = _evaluate_driver(driver, "hci-lab-02")
    assert r["node.sync-overdue/hci-lab-02/lab02-n1/-"].status.value == overdue
    assert r["node.sync-near-limit/hci-lab-02/lab02-n1/-"].status.value == near
    if near == "FAIL":
        assert "3 day(s) left" in r["node.sync-near-limit/hci-lab-02/lab02-n1/-"].message


def test_legacy_os_support_on_every_node_legacy_guests_can_run_on(make_driver) -> None:  # type: ignore[no-untyped-def]
    driver = make_driver(
        """
clusters:
  - name: c23
    version: 23H2
    nodes:
      - {name: n1, legacy_os_support: true}
      - {name: n2, legacy_os_support: false}
    vms:
      - {name: w10, node: n1, os: Windows 10 Enterprise multi-session, benefits: v1}
      - {name: w11, node: n2, os: Windows 11 Enterprise multi-session, benefits: v2}
"""
    )
    r = _evaluate_driver(driver, "c23")
    needed = r["node.legacy-os-support-needed/c23/n2/-"]
    assert needed.status is Status.FAIL and "w10" in needed.message and "w11" not in needed.message
    assert needed.remediation == (
        "hcibenefit host enable --cluster c23 --node n2  (Enable-AzStackHCIAttestation turns on legacy OS support, "
        "which Windows 10 multi-session and ESU guests need)"
    )
    assert r["node.legacy-os-support-needed/c23/n1/-"].status is Status.PASS


def test_a_v1_vm_that_can_fail_over_to_a_node_without_the_switch() -> None:
    r = _evaluate_driver(EngineDriver(default_fleet()), "hci-lab-02")
    risky = r["vm.failover-node-lacks-switch/hci-lab-02/lab02-n1/w10ms-legacy-ok"]
    assert risky.status is Status.FAIL and "lab02-n2, lab02-n3" in risky.message
    assert risky.remediation is not None and "--node lab02-n3" in risky.remediation
    assert r["vm.failover-node-lacks-switch/hci-lab-02/lab02-n1/w11ms-v2-ok"].status is Status.NA


@pytest.mark.parametrize("cluster", ["hci-lab-01", "hci-lab-02"])
def test_status_and_sweep_agree_on_every_finding(cluster: str) -> None:
    """`status` calls the checks without the evaluation layer: each finding it gets is a FAIL in the sweep."""
    from hcibenefit.checks.assess import ClusterFacts, assess_cluster

    driver = EngineDriver(default_fleet())
    spec = next(c for c in driver.state.spec.clusters if c.name == cluster)
    hosts = tuple(
        parse_host_facts(
            driver.document(n.name, HOST_FACTS, {"IncludeGuestOs": True}), node=n.name, cluster=cluster
        )
        for n in spec.nodes
    )
    names = [n.name for n in spec.nodes]
    status = assess_cluster(ClusterFacts(cluster, hosts, {}), names, Policy(), NOW)
    sweep = _results(ClusterEvidence(cluster, tuple(names), hosts, {}))
    fails = {
        (r.check.id, (r.target.vm or r.target.node or "").lower())
        for r in sweep.values()
        if r.status is Status.FAIL
    }
    for finding in status.findings:
        assert (finding.check.id, finding.target.lower()) in fails, finding
