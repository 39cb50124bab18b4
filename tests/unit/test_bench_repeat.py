"""bench/sweep_scale.py --repeat: N runs become one record with the median wall time and the least CPU."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sweep_scale.py"


@pytest.fixture(scope="module")
def sweep_scale() -> Any:
    spec = importlib.util.spec_from_file_location("sweep_scale_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _run(module: Any, wall: float, cpu: float, **extra: Any) -> Any:
    fields: dict[str, Any] = {
        "command": "status",
        "fleet": "1x4x25",
        "nodes": 4,
        "vms": 100,
        "latency_ms": 0,
        "parallel": None,
        "wall_s": wall,
        "exit_code": 0,
        "requests_per_node": 5.0,
        "max_requests_per_node": 5,
        "latency_bound_s": None,
        "ratio_to_bound": None,
        "ratio_to_gated_bound": None,
        "nodes_reported": 4,
        "nodes_lost": 0,
        "client_cpu_s": cpu,
        "client_cpu_ms_per_node": cpu * 1000 / 4,
        "client_cpu_ms_per_vm": cpu * 10,
        "peak_rss_mb": 50.0,
        "peak_tree_rss_mb": 50.0,
        "lab_cpu_s": 0.1,
    }
    fields.update(extra)
    return module.Run(**fields)


def test_repeats_keep_the_median_wall_the_least_cpu_and_every_worst_case(sweep_scale: Any) -> None:
    runs = [
        _run(sweep_scale, 1.5, 0.40, peak_rss_mb=55.0),
        _run(sweep_scale, 1.3, 0.45, nodes_lost=1, exit_code=4, stderr_tail="n07: unreachable"),
        _run(sweep_scale, 1.4, 0.33, requests_per_node=5.5, max_requests_per_node=7),
    ]
    combined = sweep_scale.combine(runs)
    assert combined.wall_s == 1.4  # the median run, not the fastest
    assert combined.client_cpu_s == 0.33 and combined.client_cpu_ms_per_node == pytest.approx(82.5)
    assert combined.peak_rss_mb == 55.0 and combined.nodes_lost == 1 and combined.exit_code == 4
    assert combined.stderr_tail == "n07: unreachable"  # what the run that lost a node said
    assert [(r["exit_code"], r["nodes_lost"]) for r in combined.repeats] == [(0, 0), (4, 1), (0, 0)]
    assert combined.requests_per_node == 5.5 and combined.max_requests_per_node == 7
    assert [r["client_cpu_s"] for r in combined.repeats] == [0.40, 0.45, 0.33]
    single = _run(sweep_scale, 1.0, 0.3)
    assert sweep_scale.combine([single]) is single and single.repeats == []


def test_every_command_at_10000_vms_gets_its_own_peak_memory_verdict(sweep_scale: Any) -> None:
    """The sweep holds the most; its peak at 10,000 VMs is the one the 150 MB target is about."""
    big = {"fleet": "100x4x25", "nodes": 400, "vms": 10000}
    runs = [
        _run(sweep_scale, 10.0, 5.0, **big, peak_rss_mb=88.0),
        _run(sweep_scale, 60.0, 30.0, **big, command="sweep", requests_per_node=9.0, peak_rss_mb=151.0),
    ]
    verdicts = {
        t["target"]: t["met"] for t in sweep_scale.summarise(runs)["targets"] if "peak MB" in t["target"]
    }
    assert verdicts == {
        "peak MB status 100x4x25 @0ms (largest process)": True,
        "peak MB sweep 100x4x25 @0ms (largest process)": False,
    }
