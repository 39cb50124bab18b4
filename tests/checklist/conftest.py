"""A lab of healthy AVD session hosts, and helpers to plant one problem at a time and run the checklist."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.spec import parse_fleet
from tests.integration.conftest import CliResult, LabClient, client_for, start_lab

# One 23H2 cluster of two nodes with three session hosts of one pool: Windows 11 multi-session on V2 and
# Windows 10 multi-session on V1 (legacy OS support on every node). A fourth VM sits in a pool that also
# has an Azure VM, and the pool of a fifth has a session host whose Arc machine is gone.
HEALTHY_FLEET = """
azure:
  host_pools:
    pool-mixed: {azure_vms: [cloud-sh-01]}
    pool-stale: {stale_hosts: [gone-sh-01]}
clusters:
  - name: hci-avd
    version: 23H2
    nodes:
      - {name: avd-n1, expires_in_days: 25, legacy_os_support: true}
      - {name: avd-n2, expires_in_days: 25, legacy_os_support: true}
    vms:
      - {name: sh-w11-01, node: avd-n1, benefits: v2, azure: {host_pool: pool-01}}
      - {name: sh-w11-02, node: avd-n2, benefits: v2, azure: {host_pool: pool-01}}
      - {name: sh-w10-01, node: avd-n1, os: Windows 10 Enterprise multi-session, benefits: v1, azure: {host_pool: pool-01}}
      - {name: sh-mixed-01, node: avd-n2, benefits: v2, azure: {host_pool: pool-mixed}}
      - {name: sh-stale-pool-01, node: avd-n2, benefits: v2, azure: {host_pool: pool-stale}}
      - name: sql-01
        node: avd-n1
        edition: ServerDatacenter
        os: Windows Server 2022 Datacenter
"""
HEALTHY = ("sh-w11-01", "sh-w11-02", "sh-w10-01")


@pytest.fixture(scope="session")
def avd_lab() -> Iterator[Lab]:
    lab = start_lab(parse_fleet(HEALTHY_FLEET, "avd-fleet.yaml"))
    try:
        yield lab
    finally:
        lab.stop()


def settle(lab: Lab) -> None:
    """Every guest's LicenseImdsIntegration task ran last night and succeeded, as on a settled host."""
    with lab.state.lock:
        for vm in lab.state.vms.values():
            vm.guest.last_run = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(
                hours=6
            )
            vm.guest.last_result = 0


@pytest.fixture
def avd(
    avd_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    avd_lab.reset()
    settle(avd_lab)
    yield client_for(avd_lab, tmp_path, monkeypatch, capsys)
    assert avd_lab.open_shells() == 0, "a test left remote shells open"


@contextlib.contextmanager
def planted(lab: Lab, obj: Any, **changes: Any) -> Iterator[None]:
    """Change spec objects (what the lab's Azure is built from), reset the lab onto them, and put them back."""
    saved = {name: getattr(obj, name) for name in changes}
    for name, value in changes.items():
        setattr(obj, name, value)
    lab.reset()
    settle(lab)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(obj, name, value)
        lab.reset()
        settle(lab)


def checklist(client: LabClient, *args: str) -> tuple[int, dict[str, Any]]:
    result = client.cli("checklist", "avd", "-o", "json", *args)
    assert result.out, result.err
    return result.code, json.loads(result.out)


def statuses(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(vm["vm"], i["item"]): i["status"] for vm in document["vms"] for i in vm["items"]}


def run_cli(client: LabClient, *args: str) -> CliResult:
    return client.cli("checklist", "avd", *args)
