"""The built-in fleet read through the lab engine: every node and VM gets the verdict its spec implies."""

from __future__ import annotations

import datetime as dt

import pytest

from hcibenefit.checks.assess import ClusterFacts, assess_cluster
from hcibenefit.facts.host import parse_host_facts
from hcibenefit.inventory.model import Policy
from hcibenefit.remoting.catalog import HOST_FACTS

EXPECTED_VMS = {
    "avd-ok-01": "ok",
    "avd-missing-nic": "missing",
    "avd-gen1-running": "missing",
    "azedition-task-disabled": "ok",
    "avd-on-expired-node": "broken",
    "sql-01": "not-needed",
    "avd-chain-broken": "ok",
    "avd-twice": "ok",
    "avd-bad-guest-creds": "ok",
    "avd-tampered": "ok",
    "avd-wrong-nonce": "ok",
    "avd-imds-blocked": "ok",
    "avd-off": "unknown",  # guest OS unreadable while off: policy cannot decide (README)
    "avd-saved": "unknown",
    "w11ms-v2-ok": "ok",
    "w11ms-gsi-off": "missing",
    "w10ms-legacy-ok": "ok",
    "w10ms-no-switch": "broken",
    "azedition-kvp-off": "unknown",
    "w11ms-direct-fails": "ok",
    "w11ms-paused": "unknown",
    "w11-single-session": "not-needed",
    "w11ms-24h2-v2-ok": "ok",
    "w10ms-24h2-legacy-off": "broken",
    "w10ms-24h2-leftover": "broken",
    "w10ms-24h2-imds-500": "ok",
    "w11ms-24h2-no-clip-log": "ok",
    "w11ms-24h2-slow-task": "ok",
}
EXPECTED_NODES = {
    "lab01-n1": "ok",
    "lab01-n2": "warning",
    "lab01-n3": "expired",
    "lab02-n1": "ok",
    "lab02-n2": "broken",
    "lab02-n3": "inactive",
    # Legacy OS support off while the cluster runs V1 guests that could fail over to it.
    "lab04-n1": "warning",
    # The host vNIC kept "vEthernet (AZSHCI_HOST-IMDS_DO_NOT_MODIFY)" (the rename failed): still found by MAC.
    "lab04-n2": "ok",
}


@pytest.fixture
def assessments(default_driver):  # type: ignore[no-untyped-def]
    result = {}
    for cluster in default_driver.state.spec.clusters:
        hosts = tuple(
            parse_host_facts(default_driver.document(n.name, HOST_FACTS), node=n.name, cluster=cluster.name)
            for n in cluster.nodes
        )
        facts = ClusterFacts(cluster.name, hosts, {})
        result[cluster.name] = assess_cluster(
            facts, [n.name for n in cluster.nodes], Policy(), dt.datetime.now(dt.timezone.utc)
        )
    return result


def test_every_vm_gets_the_verdict_its_spec_implies(assessments) -> None:  # type: ignore[no-untyped-def]
    verdicts = {v.vm.name: v.verdict for a in assessments.values() for v in a.vms}
    assert verdicts == EXPECTED_VMS


def test_every_node_gets_the_verdict_its_spec_implies(assessments) -> None:  # type: ignore[no-untyped-def]
    verdicts = {n.name: n.verdict for a in assessments.values() for n in a.nodes}
    assert verdicts == EXPECTED_NODES


def test_reasons_name_the_cause(assessments) -> None:  # type: ignore[no-untyped-def]
    vms = {v.vm.name: v for a in assessments.values() for v in a.vms}
    gen1 = vms["avd-gen1-running"].findings[0]
    assert gen1.check.id == "vm.benefits-missing" and "| Stop-VM" in gen1.remediation
    assert f"Get-VM -Id {vms['avd-gen1-running'].vm.id} | Stop-VM" in gen1.remediation  # by id, never by name
    assert {f.check.id for f in vms["w10ms-no-switch"].findings} >= {
        "vm.guest-nic-disconnected",
        "vm.owner-node-not-active",
    }
    assert vms["w11ms-gsi-off"].requirement.transport == "V2"
    assert vms["avd-missing-nic"].requirement.transport == "V1"
    assert vms["w10ms-legacy-ok"].requirement.transport == "V1"  # Windows 10 multi-session on 23H2 stays V1
    assert [f.check.id for f in vms["w10ms-24h2-legacy-off"].findings] == ["vm.legacy-os-support-off"]
    leftover = vms["w10ms-24h2-leftover"].findings[0]
    assert leftover.check.id == "vm.guest-nic-disconnected" and "left over" in leftover.detail


def test_finding_ids_are_stable_and_unique(assessments) -> None:  # type: ignore[no-untyped-def]
    ids = [f.id for a in assessments.values() for f in a.findings]
    assert len(ids) == len(set(ids))
    assert "node.attestation-expired:hci-lab-01/lab01-n3" in ids
