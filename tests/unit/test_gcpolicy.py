"""The collector's setting for a command's run (hcibenefit/gcpolicy.py): young collections go on, full ones
wait, and `main()` sets it before the command starts."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from hcibenefit import gcpolicy


class _Node:
    """Stands in for what a run keeps: records that stay to the end."""

    def __init__(self, index: int) -> None:
        self.name = f"node{index}"
        self.vms = [{"name": f"vm{index}-{n}", "state": "Running"} for n in range(4)]


@pytest.fixture
def collections_by_generation() -> Iterator[list[int]]:
    """Collections per generation while the test runs; the process's thresholds are put back after."""
    thresholds = gc.get_threshold()
    counts = [0, 0, 0]

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            counts[info["generation"]] += 1

    gc.collect()
    gc.callbacks.append(count)
    try:
        yield counts
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)


def _keep_what_a_fleet_run_keeps(count: int = 60_000) -> list[_Node]:
    return [_Node(index) for index in range(count)]


DEFAULT_SETTING_PROBE = """
import gc
full = []
gc.callbacks.append(lambda phase, info: phase == "start" and info["generation"] == 2 and full.append(1))
gc.set_threshold(700, 10, 10)
kept = [[{"name": f"vm{i}-{n}"} for n in range(4)] for i in range(60_000)]
print(len(full))
"""


@pytest.mark.skipif(
    sys.version_info >= (3, 14), reason="3.14's incremental collector has no full collections"
)
def test_the_default_setting_scans_the_whole_heap_while_a_run_grows() -> None:
    # In a fresh interpreter: whether a full collection comes first depends on how much the process
    # held before (a quarter of it must be new), and a test worker may hold a lab's worth.
    done = subprocess.run([sys.executable, "-c", DEFAULT_SETTING_PROBE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 1  # what the setting is for: this workload draws full collections


def test_a_run_draws_no_full_collection_but_young_ones_still_free_cycles(
    collections_by_generation: list[int],
) -> None:
    gcpolicy.for_one_command()
    cycle: list[Any] = []
    cycle.append(cycle)
    holder = _Node(-1)
    holder.vms.append(cycle)  # type: ignore[arg-type]
    gone = weakref.ref(holder)
    del cycle, holder  # garbage now, but only a collection can find it
    # A long run: the kept heap grows through many collections of the middle generation (called here,
    # as a long run's allocations would draw them), which at any finite third threshold draws a full one.
    kept: list[_Node] = []
    for _ in range(30):
        kept += _keep_what_a_fleet_run_keeps(5_000)
        gc.collect(1)
    kept += _keep_what_a_fleet_run_keeps(2 * gcpolicy.YOUNG)
    assert collections_by_generation[2] == 0
    assert collections_by_generation[0] >= 1
    assert gone() is None  # a young collection freed the cycle without anyone calling gc.collect()


def test_main_sets_the_collector_before_the_command_runs() -> None:
    probe = (
        "import gc, sys\n"
        "from hcibenefit.cli import app\n"
        "app.run = lambda *args: print(gc.get_threshold()) or 0\n"
        "app.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected = (gcpolicy.YOUNG, gcpolicy.MIDDLE, gcpolicy.NO_FULL_COLLECTION)
    assert done.stdout.strip() == str(expected)
