"""`inventory test` against the lab: reachability, TLS, logon and endpoint per node, one pool each."""

from __future__ import annotations

import pytest

from hcibenefit.exitcodes import ExitCode
from tests.integration.conftest import LabClient


def test_every_node_passes_and_nothing_runs(lab: LabClient) -> None:
    result = lab.cli("inventory", "test", "-o", "json")
    assert result.code == ExitCode.OK, result.out
    nodes = result.json()["nodes"]
    assert len(nodes) == len(lab.state()["nodes"])
    assert all((n["reachable"], n["tls"], n["logon"], n["endpoint"]) == ("ok",) * 4 for n in nodes)
    assert all(not n["invocations"] for n in lab.state()["nodes"])  # no script ran
    assert all(n["open_shells"] == 0 for n in lab.state()["nodes"])


def test_a_node_that_is_down_is_reported_alone(lab: LabClient) -> None:
    lab.lab.set_faults("lab01-n2", down=True)
    result = lab.cli("inventory", "test", "--cluster", "hci-lab-01", "-o", "json")
    assert result.code == ExitCode.INCOMPLETE
    by_node = {n["node"]: n for n in result.json()["nodes"]}
    assert by_node["lab01-n2"]["reachable"] == "failed" and by_node["lab01-n2"]["kind"] == "unreachable"
    assert by_node["lab01-n1"]["logon"] == "ok" and set(by_node) == {"lab01-n1", "lab01-n2", "lab01-n3"}


def test_a_wrong_password_is_tried_on_one_node_only(lab: LabClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCIBENEFIT_LAB_PASSWORD", "Wrong-Pa55word-456")
    before = sum(n["failed_logons"] for n in lab.state()["nodes"])
    result = lab.cli("inventory", "test")
    assert result.code == ExitCode.INCOMPLETE
    assert sum(n["failed_logons"] for n in lab.state()["nodes"]) - before == 1
    assert "Wrong-Pa55word-456" not in result.out + result.err
    assert result.out.split("What to do:")[1].count("not tried") == 1  # skipped nodes share one entry
    nodes = lab.cli("inventory", "test", "-o", "json").json()["nodes"]
    assert sorted(n["logon"] for n in nodes) == ["failed"] + ["skipped"] * (len(nodes) - 1)


def test_an_unset_password_variable_is_reported_per_node(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HCIBENEFIT_LAB_PASSWORD")
    result = lab.cli("inventory", "test", "--node", "lab02-n1", "-o", "json")
    assert result.code == ExitCode.INCOMPLETE
    (node,) = result.json()["nodes"]
    assert node["logon"] == "failed" and "HCIBENEFIT_LAB_PASSWORD" in node["error"]
    assert lab.invocations("host-facts") == 0
