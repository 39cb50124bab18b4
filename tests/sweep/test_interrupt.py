"""Ctrl-C during a sweep: exit 130, no remote shell left open, and no half run in history."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hcibenefit.lab.spec import generate_fleet
from tests.integration.conftest import start_lab

pytestmark = pytest.mark.lab


def test_ctrl_c_mid_sweep(tmp_path: Path) -> None:
    spec = generate_fleet(1, 4, 3, seed=7)
    for node in spec.clusters[0].nodes:
        node.faults.latency_ms = 400
    lab = start_lab(spec)
    history = tmp_path / "history.sqlite"
    try:
        inventory = lab.write_inventory(tmp_path / "inventory.yaml")
        env = {**os.environ, **lab.environment(), "HCIBENEFIT_HISTORY": str(history)}
        process = subprocess.Popen(
            [sys.executable, "-m", "hcibenefit", "-i", str(inventory), "sweep", "--parallel", "4"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Once every node has its shell (each is then deleted from outside in one round trip); a Create
        # still in flight at Ctrl-C may be answered after the grace on a loaded machine.
        nodes = len(spec.clusters[0].nodes)
        deadline = time.monotonic() + 20
        while lab.open_shells() < nodes and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lab.open_shells() == nodes, "the sweep never had every shell open"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "Traceback" not in err
        assert lab.open_shells() == 0, err
        if history.exists():
            with sqlite3.connect(history) as db:
                assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
                assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
    finally:
        lab.stop()
