"""`sweep --publish azure-monitor`: the rows, the shipped table and rule, and the lab's Logs Ingestion API."""

from __future__ import annotations

import json
import sqlite3
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.publish.rows import COLUMNS, run_rows
from hcibenefit.sweep.history import History
from tests.integration.conftest import LabClient
from tests.sweep.conftest import sweep, sweep_json

DATA = files("hcibenefit.publish").joinpath("azure-monitor")
KQL_TYPES = {"string", "datetime", "int", "long", "real", "boolean", "dynamic", "guid"}


def _json(name: str) -> Any:
    return json.loads(DATA.joinpath(name).read_text(encoding="utf-8"))


def test_rule_and_table_declare_exactly_the_published_columns() -> None:
    rule = _json("dcr.json")["resources"][0]["properties"]
    stream = rule["streamDeclarations"]["Custom-HcibenefitSweep"]["columns"]
    table = _json("table.json")["properties"]["schema"]["columns"]
    expected = [{"name": n, "type": t} for n, t in COLUMNS.items()]
    assert stream == expected
    assert table == expected
    assert {c["type"] for c in stream} <= KQL_TYPES
    assert rule["dataFlows"][0]["outputStream"] == "Custom-HcibenefitSweep_CL"
    assert _json("table.json")["properties"]["schema"]["name"] == "HcibenefitSweep_CL"


def test_workbook_runs_the_shipped_queries() -> None:
    workbook = _json("workbook.json")
    queries = [i["content"]["query"] for i in workbook["items"] if i["type"] == 3]
    assert len(queries) == 3
    for name in ("fleet-compliance", "changed-since-yesterday"):
        assert DATA.joinpath(f"{name}.kql").read_text(encoding="utf-8") in queries
    at_risk = DATA.joinpath("vms-at-risk.kql").read_text(encoding="utf-8")
    assert at_risk.replace("let days = 14;", "let days = {Days};") in queries
    for query in queries:
        assert "HcibenefitSweep_CL" in query


def test_rows_of_a_run() -> None:
    run = {
        "uid": "u1",
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:01:00+00:00",
        "exit_code": 1,
        "sites": {"c1": "seattle"},
        "horizon": [
            {"cluster": "c1", "node": "n1", "vm": "VM1", "benefits_expire": None, "verdict": "at-risk"}
        ],
    }
    records = [
        {"id": "a/c1/n1/-", "check": "a", "status": "FAIL", "cluster": "c1", "node": "n1", "waived": False},
        {"id": "b/c1/n1/-", "check": "b", "status": "ERROR", "cluster": "c1", "node": "n1", "waived": True},
    ]
    rows = run_rows(run, records)
    assert [r["RecordType"] for r in rows] == ["result", "result", "vm", "run"]
    assert all(list(r) == list(COLUMNS) for r in rows)
    assert rows[0]["Site"] == "seattle" and rows[0]["Status"] == "FAIL" and rows[0]["Waived"] is False
    assert rows[2]["VM"] == "VM1" and rows[2]["GuestVerdict"] == "at-risk" and rows[2]["RowId"] == "vm:c1/vm1"
    assert (
        rows[3]["Fail"] == 1 and rows[3]["Error"] == 0 and rows[3]["Waivers"] == 1 and rows[3]["Results"] == 2
    )
    assert len({r["RowId"] for r in rows}) == len(rows)
    assert {r["RunId"] for r in rows} == {"u1"}


def _history_rows(path: Path, run_id: int) -> list[dict[str, Any]]:
    with History(path) as history:
        info = history.run(run_id)
        return run_rows({**info.meta["run"], "id": info.id}, history.records(run_id))


def _publications(path: Path) -> list[tuple[int, str, int]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT run_id, state, attempts FROM publications ORDER BY run_id").fetchall()
    finally:
        db.close()


@pytest.mark.lab
def test_a_published_sweep_arrives_complete(lab: LabClient, tmp_path: Path) -> None:
    code, doc = sweep_json(lab, "--publish", "azure-monitor")
    assert code == 1
    ingestion = lab.lab.arm.ingestion  # type: ignore[union-attr]
    received = ingestion.received()
    expected = _history_rows(tmp_path / "history.sqlite", doc["run"]["id"])
    assert sorted(received, key=lambda r: r["RowId"]) == sorted(expected, key=lambda r: r["RowId"])
    assert len(received) == len(doc["findings"]) + len(doc["run"]["horizon"]) + 1
    assert ingestion.snapshot()["dropped_columns"] == {}
    assert {r["RunId"] for r in received} == {doc["run"]["uid"]}
    assert _publications(tmp_path / "history.sqlite") == [(doc["run"]["id"], "published", 1)]
    # The VMs the policy says need benefits, each with its host's attestation expiry.
    vms = {r["VM"]: r for r in received if r["RecordType"] == "vm"}
    assert "avd-ok-01" in vms and vms["avd-ok-01"]["BenefitsExpire"] is not None
    assert "sql-01" not in vms


@pytest.mark.lab
def test_a_failed_publication_waits_in_history_and_goes_with_the_next_run(
    lab: LabClient, tmp_path: Path
) -> None:
    history = tmp_path / "history.sqlite"
    ingestion = lab.lab.arm.ingestion  # type: ignore[union-attr]
    ingestion.control({"count": 1000, "status": 503, "retry_after": 0})
    first = sweep(lab, "-o", "json", "--publish", "azure-monitor")
    assert first.code == 5, "findings, and the publication asked for was not done"
    assert "not published" in first.err and "next sweep --publish azure-monitor" in first.err
    assert ingestion.received() == [] and ingestion.snapshot()["failed"] >= 2, "retried before giving up"
    first_id = json.loads(first.out)["run"]["id"]
    ((run_id, state, attempts),) = _publications(history)
    assert (run_id, state, attempts) == (first_id, "pending", 1)
    ingestion.control({"count": 0})

    code, doc = sweep_json(lab, "--publish", "azure-monitor")
    assert code == 1
    assert _publications(history) == [(first_id, "published", 2), (doc["run"]["id"], "published", 1)]
    received = ingestion.received()
    expected = _history_rows(history, first_id) + _history_rows(history, doc["run"]["id"])
    assert sorted(received, key=lambda r: (r["RunId"], r["RowId"])) == sorted(
        expected, key=lambda r: (r["RunId"], r["RowId"])
    )


@pytest.mark.lab
def test_publish_refuses_what_it_could_not_keep(lab: LabClient) -> None:
    result = sweep(lab, "--no-history", "--publish", "azure-monitor")
    assert result.code == 2 and "--publish needs the history" in result.err
    result = sweep(lab, "--publish", "splunk")
    assert result.code == 2 and "unknown destination" in result.err
    assert lab.lab.arm.ingestion.snapshot()["requests"] == 0  # type: ignore[union-attr]
    assert lab.lab.open_shells() == 0
