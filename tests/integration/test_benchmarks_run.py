"""The benchmarks under bench/ still run against today's code.

Nothing else calls them, so a change to what they reach into (a function's arguments, a field that is
no longer kept) broke `bench/verify_scale.py` without a test noticing: it unpacked the sweep's
conclusion with one argument too few, and counted verified documents from a field the sweep now lets
go of, so it printed 0. Each benchmark must at least start; the one that replays a sweep's answers runs
on a small fleet and must see what it measures.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
HELPERS = {"handwritten.py"}  # run by sweep_scale.py with positional arguments, not by a person


@pytest.mark.parametrize(
    "script", sorted(p.name for p in BENCH.glob("*.py") if p.name not in HELPERS), ids=str
)
def test_every_benchmark_starts(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower()


def test_verify_scale_replays_a_sweep_and_counts_what_it_verified() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "verify_scale.py"), "--fleet", "1x2x4", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    counts = re.search(r"(\d+) nodes, (\d+) VMs, (\d+) guests probed, (\d+) documents", done.stdout)
    assert counts, done.stdout
    nodes, vms, guests, documents = (int(g) for g in counts.groups())
    assert (nodes, vms) == (2, 8)
    assert 0 < documents <= guests <= vms
    for part in ("host facts parse", "guest answers parse", "checks and the run document", "in all"):
        assert re.search(rf"{part}.*ms per VM", done.stdout), (part, done.stdout)
