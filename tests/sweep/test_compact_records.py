"""A sweep keeps its results as compact records (checks.results.ResultRecord) instead of one dict each, and
orders and counts them a cluster at a time: none of it may change a byte of any report or of the history.

The record behaves as the dict it replaces; the document is ordered and counted as one whole sort and one
count per cluster did; `compare` finds the same changes; and one real sweep of the lab, concluded twice from
the same collected answers (once with dicts, once with compact records), renders every format and stores
history byte for byte the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.checks.model import CheckMeta, Severity
from hcibenefit.checks.results import Result, ResultRecord, Status, Target, Waiver, plain
from hcibenefit.sweep.model import RECORD_FIELDS, RunDocument, compare, counts

META = CheckMeta(
    "node.attestation-expired", "expired", Severity.HIGH, "node", "sync {node}", doc_url="https://x/y"
)
NO_DOC = CheckMeta("vm.nic", "NIC", Severity.MEDIUM, "vm", "fix {vm}")
AT = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)


def _waiver(*, expired: bool = False, expires: dt.datetime | None = AT) -> Waiver:
    return Waiver("node.*", "hci-01/n1", "rebuild", "bob", expires, expired, "w.yaml:2")


VARIETY = [
    Result(META, Target("HCI-01", "N1"), Status.FAIL, "expired", "sync n1"),
    Result(META, Target("hci-01", "n1"), Status.FAIL, "expired", "sync n1", _waiver()),
    Result(META, Target("hci-01", "n1"), Status.ERROR, "no answer", None, _waiver(expired=True)),
    Result(META, Target("hci-01", "n1"), Status.FAIL, "x", "y", _waiver(expires=None)),
    Result(META, Target("hci-01", "n1"), Status.PASS, "ok", None, _waiver()),
    Result(NO_DOC, Target("hci-01", "n1", "vm/1%"), Status.NA, "off"),
    Result(NO_DOC, Target("hci-01"), Status.PASS, "ok"),
]


def _reference_record(result: Result) -> dict[str, Any]:
    """The record as Result.to_dict built it, a dict literal, before records became compact."""
    waiver = result.waiver
    return {
        "id": f"{result.check.id}/{result.target.key}",
        "check": result.check.id,
        "title": result.check.title,
        "scope": result.check.scope,
        "status": result.status.value,
        "severity": result.check.severity.name.lower(),
        "cluster": result.target.cluster,
        "node": result.target.node,
        "vm": result.target.vm,
        "message": result.message,
        "remediation": result.remediation,
        "waived": waiver is not None and not waiver.expired and result.status in (Status.FAIL, Status.ERROR),
        "waiver_reason": waiver.reason if waiver else None,
        "waiver_owner": waiver.owner if waiver else None,
        "waiver_expires": waiver.expires.isoformat() if waiver and waiver.expires else None,
        "waiver_expired": waiver.expired if waiver else None,
        "doc_url": result.check.doc_url or None,
    }


@pytest.mark.parametrize("result", VARIETY, ids=lambda r: f"{r.status.value}-{r.waiver is not None}")
def test_a_record_is_the_dict_it_replaces(result: Result) -> None:
    record = result.record()
    expected = _reference_record(result)
    assert result.to_dict() == expected
    assert list(expected) == list(RECORD_FIELDS)
    assert list(record) == list(RECORD_FIELDS) and len(record) == len(RECORD_FIELDS)
    assert dict(record) == expected and record == expected and expected == record
    assert list(dict(record).items()) == list(expected.items())
    assert record.to_dict() == expected and record["id"] == result.id
    assert {**record} == expected
    assert record.get("no-such-field") is None and "no-such-field" not in record
    with pytest.raises(KeyError):
        record["no-such-field"]
    with pytest.raises(TypeError):
        record["status"] = "PASS"  # type: ignore[index]
    # JSON needs plain() to see a dict; with it the bytes are those of the dict, also with sorted keys.
    with pytest.raises(TypeError):
        json.dumps(record)
    assert json.dumps(record, default=plain) == json.dumps(expected)
    assert json.dumps([record], default=plain, sort_keys=True) == json.dumps([expected], sort_keys=True)


def test_results_and_targets_hold_no_dict_and_share_constant_text() -> None:
    result = VARIETY[0]
    assert not hasattr(result, "__dict__") and not hasattr(result.target, "__dict__")
    assert not hasattr(result.record(), "__dict__")
    # The severity label is one string per severity, not a new one per record.
    assert result.record()["severity"] is VARIETY[1].record()["severity"] == "high"
    # The id part of a target is computed once, follows a replaced field and plays no part in equality.
    target = Target("HCI-01", "N1", "vm/1%")
    assert target.key == "hci-01/n1/vm%2F1%25" and target.key is target.key
    assert dataclasses.replace(target, vm=None).key == "hci-01/n1/-"
    assert target == Target("HCI-01", "N1", "vm/1%") and hash(target) == hash(Target("HCI-01", "N1", "vm/1%"))
    assert "key" not in repr(target)
    waived = result.with_waiver(_waiver())
    assert waived.waived and waived.record()["waiver_expires"] == AT.isoformat()


def _random_records(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        cluster = rng.choice(["hci-01", "HCI-01", "hci-02", "b", "A", "a"])
        records.append(
            {
                "id": f"{rng.choice(['c.a', 'c.a-b', 'c.b'])}/{cluster.lower()}/{rng.randint(0, 3)}/{i % 7}",
                "status": rng.choice(["FAIL", "ERROR", "N/A", "PASS", "WEIRD"]),
                "severity": rng.choice(["critical", "high", "medium", "low", "info", "odd"]),
                "scope": rng.choice(["cluster", "azure", "node", "vm", "guest", "other"]),
                "cluster": cluster,
                "waived": rng.random() < 0.2,
                "message": str(i),
            }
        )
    return records


def _whole_sort_key(record: Any) -> tuple[Any, ...]:
    """The order the document had when it sorted every record in one go (sweep.model before this change)."""
    statuses = ("FAIL", "ERROR", "N/A", "PASS")
    severities = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    scopes = {"cluster": 0, "azure": 1, "node": 2, "vm": 3, "guest": 4}
    return (
        str(record["cluster"]).lower(),
        bool(record.get("waived")),
        statuses.index(record["status"]) if record["status"] in statuses else 9,
        severities.get(record["severity"], 9),
        scopes.get(record.get("scope", ""), 9),
        record["id"],
    )


@pytest.mark.parametrize("seed", range(5))
def test_the_document_orders_and_counts_as_one_whole_sort_did(seed: int) -> None:
    records = _random_records(seed, 400)
    document = RunDocument({"id": None}, records).to_dict()
    ordered = sorted(records, key=_whole_sort_key)
    assert [id(r) for r in document["findings"]] == [id(r) for r in ordered]
    clusters: dict[str, dict[str, int]] = {}
    for r in ordered:
        clusters.setdefault(r["cluster"], {})
    for cluster in clusters:
        clusters[cluster] = counts(r for r in ordered if r["cluster"] == cluster)
    expected = {**counts(ordered), "clusters": clusters}
    assert document["summary"] == expected
    assert json.dumps(document["summary"]) == json.dumps(expected)


def _compare_with_a_full_index(before: list[Any], after: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """What `compare` found when it indexed every record of `after` (sweep.model before this change)."""

    def problem(r: Any) -> bool:
        return r is not None and r["status"] in ("FAIL", "ERROR")

    old = {r["id"]: r for r in before}
    new = {r["id"]: r for r in after}
    appeared, gone, changed = [], [], []
    for rid, rec in new.items():
        prev = old.get(rid)
        if problem(rec) and not problem(prev):
            appeared.append(rec)
        elif (
            problem(rec)
            and prev is not None
            and (prev["status"] != rec["status"] or bool(prev.get("waived")) != bool(rec.get("waived")))
        ):
            changed.append((prev, rec))
    for rid, prev in old.items():
        if problem(prev) and not problem(new.get(rid)):
            now = new.get(rid)
            gone.append({**prev, "now": now["status"] if now else None})
    return (
        sorted(appeared, key=_whole_sort_key),
        sorted(gone, key=_whole_sort_key),
        sorted(changed, key=lambda pair: _whole_sort_key(pair[1])),
    )


@pytest.mark.parametrize("seed", range(5))
def test_compare_finds_what_a_full_index_found(seed: int) -> None:
    def unique(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list({r["id"]: r for r in records}.values())  # ids are unique within a run

    before = unique(_random_records(seed, 300))
    after = unique(_random_records(seed + 100, 300))
    for old in (before, [r for r in before if r["status"] in ("FAIL", "ERROR")], []):
        changes = compare(old, after)
        new, resolved, changed = _compare_with_a_full_index(old, after)
        assert list(changes.new) == new
        assert list(changes.resolved) == resolved
        assert list(changes.changed) == changed


# --- one real sweep, concluded twice ----------------------------------------------------------------


@pytest.fixture(scope="module")
def collected_pair(
    sweep_lab: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, Any, Any, Any]]:
    """The lab's answers for two nights, each with another node down: the second resolves the first's
    problems of that node and raises new ones."""
    from hcibenefit.inventory import CredentialResolver, load_inventory
    from hcibenefit.operations.sweep.collect import Collected, Scope, collect

    tmp = tmp_path_factory.mktemp("compact")
    sweep_lab.reset()
    inventory = load_inventory(sweep_lab.write_inventory(tmp / "inventory.yaml"))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in sweep_lab.environment().items():
            patch.setenv(name, value)
        scope = Scope(tuple(inventory.clusters), exclusion=inventory.policy.exclusion)
        answered = collect(inventory, CredentialResolver(), scope, workers=8)
    assert sweep_lab.open_shells() == 0

    def night(down: int) -> Collected:
        evidence = answered.clusters[0]
        hosts = [h for i, h in enumerate(evidence.hosts) if i != down]
        unreachable = {evidence.hosts[down].node: "lab: switched off"}
        changed = dataclasses.replace(evidence, hosts=tuple(hosts), unreachable=unreachable)
        return Collected((changed, *answered.clusters[1:]), deadline_reached=False)

    yield inventory, scope, night(0), night(1)


def _conclude_twice(
    inventory: Any, scope: Any, first: Any, second: Any, history_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    import uuid

    from hcibenefit.checks.registry import all_checks
    from hcibenefit.cli.sweep_cmd import lab_waivers
    from hcibenefit.operations.sweep import run as sweep_run
    from hcibenefit.sweep.history import History
    from hcibenefit.sweep.waivers import load_waivers

    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=7))
    monkeypatch.setattr(sweep_run.socket, "gethostname", lambda: "collector")
    waivers = load_waivers(lab_waivers(), [m.id for m in all_checks()])
    request = sweep_run.SweepRequest(scope=scope, history_path=history_path)
    history = History(history_path)
    try:
        documents = []
        for night, collected in enumerate((first, second)):
            started = dt.datetime(2026, 11, 28 + night, 2, tzinfo=dt.timezone.utc)
            finished = started + dt.timedelta(seconds=42)
            clusters = list(collected.clusters)  # _conclude empties the list it is given, a cluster at a time
            outcome = sweep_run._conclude(
                inventory, request, clusters, collected.deadline_reached, waivers, history, started, finished
            )
            assert clusters == []
            documents.append(outcome.document)
        rows = history._db.execute(
            "SELECT r.run_id, r.id, r.status, r.record, runs.fail, runs.error, runs.waived, runs.total,"
            " runs.meta FROM results r JOIN runs ON runs.id = r.run_id ORDER BY r.run_id, r.id"
        ).fetchall()
    finally:
        history.close()
    return documents[1], rows


@pytest.mark.lab
def test_compact_records_change_no_report_and_no_history(
    collected_pair: tuple[Any, Any, Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hcibenefit.report.sweep import FORMATS, render

    inventory, scope, first, second = collected_pair
    compact, compact_rows = _conclude_twice(
        inventory, scope, first, second, tmp_path / "a.sqlite", monkeypatch
    )
    assert isinstance(compact["findings"][0], ResultRecord)
    with monkeypatch.context() as patch:
        patch.setattr(Result, "record", _reference_record)  # every record a dict, as before
        dicts, dict_rows = _conclude_twice(inventory, scope, first, second, tmp_path / "b.sqlite", patch)
    assert type(dicts["findings"][0]) is dict
    assert compact == dicts
    assert compact["changes"]["new"] and compact["changes"]["resolved"], "the two nights must differ"
    assert any(r["waived"] for r in dicts["findings"]), "the lab's waivers must apply"
    assert compact_rows == dict_rows and len(dict_rows) > 2 * len(dicts["findings"]) - 50
    for fmt in FORMATS:
        out_compact, out_dicts = io.StringIO(), io.StringIO()
        render(compact, fmt, out_compact, 100)
        render(dicts, fmt, out_dicts, 100)
        assert out_compact.getvalue() == out_dicts.getvalue(), fmt
    assert json.loads(_render(compact, "json")) == json.loads(json.dumps(dicts))


def _render(document: dict[str, Any], fmt: str) -> str:
    from hcibenefit.report.sweep import render

    out = io.StringIO()
    render(document, fmt, out, None)
    return out.getvalue()


def test_history_rows_of_a_record_are_those_of_its_dict(tmp_path: Path) -> None:
    from hcibenefit.sweep.history import History

    def rows(path: Path, records: list[Any]) -> list[tuple[Any, ...]]:
        history = History(path)
        try:
            history.record({"started": "s", "finished": "f"}, records, inventory_hash="h", scope="{}")
        finally:
            history.close()
        with sqlite3.connect(path) as db:
            return db.execute("SELECT id, status, record FROM results ORDER BY id").fetchall()

    unique = {r.id: r for r in VARIETY[1:]}.values()
    assert rows(tmp_path / "a", [r.record() for r in unique]) == rows(
        tmp_path / "b", [r.to_dict() for r in unique]
    )


@pytest.mark.lab
def test_each_cluster_is_let_go_once_judged(
    collected_pair: tuple[Any, Any, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """_conclude drops its reference to a cluster's evidence (and with it the facts, when nothing else holds
    them) before it judges the next one: the facts of 10,000 VMs make room for the results."""
    import gc
    import weakref

    from hcibenefit.operations.sweep import run as sweep_run
    from hcibenefit.sweep.waivers import Waivers

    inventory, scope, first, _ = collected_pair
    clusters = [dataclasses.replace(c) for c in first.clusters]  # held by nothing but the list
    assert len(clusters) >= 2
    judged: list[weakref.ref[Any]] = []
    alive_when_next_judged: list[bool] = []
    real = sweep_run.evaluate_cluster

    def watched(evidence: Any, *args: Any, **kwargs: Any) -> Any:
        gc.collect()
        alive_when_next_judged.extend(ref() is not None for ref in judged)
        judged.append(weakref.ref(evidence))
        return real(evidence, *args, **kwargs)

    monkeypatch.setattr(sweep_run, "evaluate_cluster", watched)
    request = sweep_run.SweepRequest(scope=scope, history_path=None)
    at = dt.datetime(2026, 11, 28, 2, tzinfo=dt.timezone.utc)
    outcome = sweep_run._conclude(inventory, request, clusters, False, Waivers(), None, at, at)
    del clusters
    assert len(judged) == len(first.clusters)
    assert alive_when_next_judged and not any(alive_when_next_judged)
    assert outcome.document["findings"]
