"""Waivers (parsing, located errors, matching, expiry) and history (one transaction per run, two writers,
diff, prune), without a lab."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

import pytest

from hcibenefit.checks.model import CheckMeta, Severity
from hcibenefit.checks.results import Result, Status, Target
from hcibenefit.sweep.history import History
from hcibenefit.sweep.model import compare, inventory_hash
from hcibenefit.sweep.waivers import WaiverError, parse_waivers

KNOWN = ["node.attestation-expired", "node.switch-missing", "guest.activated"]
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
META = CheckMeta("node.attestation-expired", "expired", Severity.HIGH, "node", "sync")


def _result(node: str, status: Status = Status.FAIL, check: CheckMeta = META) -> Result:
    return Result(check, Target("hci-01", node), status, "expired")


def test_waiver_matches_exactly_its_target() -> None:
    waivers = parse_waivers(
        "waivers:\n  - {check: 'node.attestation-*', target: hci-01/n2, reason: rebuild, expires: 2026-06-02}\n",
        "w.yaml",
        KNOWN,
    )
    out, uses = waivers.apply([_result("n1"), _result("n2"), _result("n2", Status.PASS)], NOW)
    assert [r.waived for r in out] == [False, True, False]
    assert uses[0].matched == ("node.attestation-expired/hci-01/n2/-",)
    assert out[1].waiver is not None and out[1].waiver.where == "w.yaml:2"


def test_an_expired_waiver_stops_applying_and_says_so() -> None:
    waivers = parse_waivers(
        "waivers:\n  - check: node.attestation-expired\n    target: hci-01/*\n    reason: r\n"
        "    owner: bob\n    expires: 2026-06-01T12:00:00Z\n",
        "w.yaml",
        KNOWN,
    )
    out, uses = waivers.apply([_result("n1")], NOW)
    assert not out[0].waived and out[0].counts_as_failure and out[0].waiver and out[0].waiver.expired
    note = uses[0].note()
    assert note is not None and "expired 2026-06-01 12:00 UTC" in note and "bob" in note
    before, _ = waivers.apply([_result("n1")], NOW - dt.timedelta(seconds=1))
    assert before[0].waived


def test_a_target_with_fewer_parts_matches_everything_below() -> None:
    waivers = parse_waivers("waivers:\n  - {check: '*', target: hci-01, reason: r}\n", "w.yaml", KNOWN)
    vm = Result(META, Target("hci-01", "n1", "vm1"), Status.ERROR, "x")
    other = Result(META, Target("hci-02", "n1"), Status.FAIL, "x")
    out, _ = waivers.apply([vm, other], NOW)
    assert [r.waived for r in out] == [True, False]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "waivers:\n  - {check: node.switch-missing, target: a}\n",
            "w.yaml:2:5: waivers[0].reason: missing required key",
        ),
        (
            "waivers:\n  - {check: node.switch-mising, target: a, reason: r}\n",
            'w.yaml:2:13: waivers[0].check: no check matches "node.switch-mising"; did you mean "node.switch-missing"?',
        ),
        (
            "waivers:\n  - {check: guest.*, target: a, reason: r, expires: next week}\n",
            "w.yaml:2:53: waivers[0].expires: expected a date (2026-09-01) or a date and time",
        ),
        (
            "waivers:\n  - {check: guest.*, target: a/b/c/d, reason: r}\n",
            "w.yaml:2:30: waivers[0].target: expected cluster",
        ),
        (
            "waivers:\n  - {check: guest.*, target: a, reason: r, until: 2026-01-01}\n",
            'unknown key "until"; did you mean "expires"?',
        ),
        ("", "the waivers file is empty"),
    ],
)
def test_malformed_waivers_are_located(text: str, expected: str) -> None:
    with pytest.raises(WaiverError) as info:
        parse_waivers(text, "w.yaml", KNOWN)
    assert expected in str(info.value)


def _records(*statuses: tuple[str, str]) -> list[dict[str, object]]:
    return [
        {
            "id": rid,
            "status": status,
            "severity": "high",
            "cluster": "c",
            "scope": "node",
            "waived": False,
            "title": "t",
            "message": "m",
        }
        for rid, status in statuses
    ]


def test_compare_reports_new_resolved_and_changed_problems_only() -> None:
    before = _records(("a", "FAIL"), ("b", "FAIL"), ("c", "PASS"), ("d", "ERROR"), ("e", "PASS"))
    after = _records(("a", "FAIL"), ("b", "PASS"), ("c", "FAIL"), ("d", "FAIL"), ("e", "N/A"))
    changes = compare(before, after)
    assert [r["id"] for r in changes.new] == ["c"]
    assert [(r["id"], r["now"]) for r in changes.resolved] == [("b", "PASS")]
    assert [(a["id"], b["status"]) for a, b in changes.changed] == [("d", "FAIL")]


def test_fleet_identity_ignores_order_and_case() -> None:
    assert inventory_hash([("C1", ["N2", "n1"])]) == inventory_hash([("c1", ["n1", "n2"])])
    assert inventory_hash([("c1", ["n1"])]) != inventory_hash([("c1", ["n1", "n2"])])


def _run(started: str) -> dict[str, object]:
    return {"started": started, "finished": started, "inventory": "inv.yaml", "exit_code": 1}


def test_history_round_trip_previous_and_prune(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        first = h.record(
            _run("2026-01-01T00:00:00+00:00"), _records(("a", "FAIL")), inventory_hash="x", scope="s"
        )
        second = h.record(
            _run("2026-05-30T00:00:00+00:00"), _records(("a", "PASS")), inventory_hash="x", scope="s"
        )
        h.record(_run("2026-05-31T00:00:00+00:00"), _records(("a", "FAIL")), inventory_hash="y", scope="s")
        previous = h.previous(inventory_hash="x", scope="s")
        assert previous is not None and previous.id == second
        assert h.previous(inventory_hash="x", scope="s", before_id=second).id == first  # type: ignore[union-attr]
        assert h.records(first)[0]["status"] == "FAIL"
        assert [p.run for p in h.trend(inventory_hash="x", scope="s")] == [first, second]
        assert h.prune(30, now=NOW) == 1
        assert [r.id for r in h.runs()] == [3, second]
        assert h.records(first) == []


def test_a_run_is_stored_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        bad = _records(("a", "FAIL"), ("a", "FAIL"))  # a duplicate id breaks the insert half-way
        with pytest.raises(sqlite3.IntegrityError):
            h.record(_run("2026-01-01T00:00:00+00:00"), bad, inventory_hash="x", scope="s")
        assert h.runs() == []


def test_two_sweeps_writing_at_once_both_land(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    History(path).close()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with History(path) as h:
                for i in range(20):
                    h.record(
                        _run(f"2026-01-01T00:00:{i:02d}+00:00"),
                        _records(*[(f"r{j}", "FAIL") for j in range(200)]),
                        inventory_hash=f"w{n}",
                        scope="s",
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with History(path) as h:
        assert len(h.runs()) == 40
        assert all(r.total == 200 for r in h.runs())


def test_a_file_that_is_not_a_history_is_a_clear_error(tmp_path: Path) -> None:
    from hcibenefit.errors import UsageError

    path = tmp_path / "h.sqlite"
    path.write_text("not a database " * 100)
    with pytest.raises(UsageError, match="not a usable hcibenefit history"):
        History(path)


def test_compare_with_the_earlier_runs_problems_only_is_compare_with_all_of_it(tmp_path: Path) -> None:
    """The sweep reads only the FAIL and ERROR results of the run before (History.problems): every kind of
    change comes out as it does from the whole run, including a waived problem and one now resolved."""
    before = _records(
        ("a", "FAIL"),
        ("b", "FAIL"),
        ("c", "PASS"),
        ("d", "ERROR"),
        ("e", "PASS"),
        ("f", "N/A"),
        ("g", "FAIL"),
    )
    before[6]["waived"] = True
    after = _records(
        ("a", "FAIL"),
        ("b", "PASS"),
        ("c", "FAIL"),
        ("d", "FAIL"),
        ("e", "N/A"),
        ("f", "ERROR"),
        ("g", "FAIL"),
    )
    with History(tmp_path / "h.sqlite") as h:
        run_id = h.record(_run("2026-05-30T00:00:00+00:00"), before, inventory_hash="x", scope="s")
        problems = h.problems(run_id)
        whole = h.records(run_id)

    assert [r["id"] for r in problems] == ["a", "b", "d", "g"]
    assert problems == [r for r in whole if r["status"] in ("FAIL", "ERROR")]
    assert whole == sorted(before, key=lambda r: str(r["id"]))  # stored as given, read back whole
    assert compare(problems, after).to_dict(None) == compare(whole, after).to_dict(None)
    changes = compare(problems, after)
    assert [r["id"] for r in changes.new] == ["c", "f"]
    assert [(r["id"], r["now"]) for r in changes.resolved] == [("b", "PASS")]
    assert [(a["id"], b["status"]) for a, b in changes.changed] == [("d", "FAIL"), ("g", "FAIL")]
